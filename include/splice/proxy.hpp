// SPDX-License-Identifier: MIT
#ifndef SPLICE_PROXY_HPP_
#define SPLICE_PROXY_HPP_

#include <algorithm>
#include <chrono>
#include <system_error>
#include <utility>

#include <poll.h>

#include "drain.hpp"
#include "duplex.hpp"
#include "options.hpp"
#include "system_calls.hpp"

namespace splice_lib {

namespace detail {
/// drain_fd is the fd of d that proxy() polls, given the deadline it has applied (`seen`): fd()
/// until it has applied a request, then nearer_fd() until that has been seen readable (both stay
/// readable), then none (-1). A request that comes after `seen` was read makes the fd polled
/// readable, so it is never slept through.
inline int drain_fd(const splice_lib::drain* d, std::chrono::steady_clock::time_point seen, bool nearer_seen) noexcept {
  if (!d) return -1;
  if (seen == std::chrono::steady_clock::time_point::max()) return d->fd();
  return nearer_seen ? -1 : d->nearer_fd();
}
}  // namespace detail

/// proxy relays a and b in both directions on the calling thread until both directions have ended,
/// then returns: a duplex (see duplex.hpp for its rules: half-close, first error wins, TCP_NODELAY,
/// non-blocking fds) driven by poll(2) on both fds. When neither fd becomes ready for
/// opt.idle_timeout, it ends with std::errc::timed_out from "idle"; a failed poll ends it with
/// poll's error. A direction with a rate_limit (proxy_options::copy.rate) waits for its tokens in the
/// same poll, by its timeout. With proxy_options::drain it watches the drain's fd too: once a drain
/// is requested, the relay goes on until it ends or the drain's deadline cuts it, and a second
/// request that brings the deadline nearer wakes it at once. It polls the mirrors' fds
/// (proxy_options::mirror_a_to_b, mirror_b_to_a) for what they wait for. Closes neither fd.
template <class Sys = system_calls>
proxy_result proxy(int a, int b, const proxy_options& opt = {}, Sys sys = {}) noexcept {
  proxy_options level = opt;
  level.copy.short_read_drains = true;  // poll(2) is level-triggered: a short read cannot hide bytes
  duplex<Sys> d(a, b, level, sys);
  auto idle_until = detail::deadline_after(opt.idle_timeout, sys.now());
  bool nearer_seen = false;  // the drain's nearer_fd() was readable: it stays so, poll it no more
  auto seen = std::chrono::steady_clock::time_point::max();  // the drain's deadline, as applied
  for (unsigned came = ready::all;;) {
    if (opt.drain) d.drain(seen = opt.drain->deadline());
    const unsigned want = d.advance(came);
    if (d.done()) break;
    // One poll over both fds for what the directions wait for; an fd nobody waits on is left out
    // (fd -1), so that an error pending on it cannot wake the loop for nothing.
    // The drain's fd, until it has been requested, wakes the poll when it is; then its nearer_fd()
    // does, when a second request brings the deadline nearer (read again at the top). Then the
    // mirrors' fds, for their ready bits.
    pollfd fds[5] = {{a, 0, 0}, {b, 0, 0}, {detail::drain_fd(opt.drain, seen, nearer_seen), POLLIN, 0},
                     {d.mirror_fd(true), 0, 0}, {d.mirror_fd(false), 0, 0}};
    for (int i : {0, 1, 3, 4}) {
      const unsigned in = i < 2 ? (i == 0 ? ready::a_in : ready::b_in) : (i == 3 ? ready::ab_mirror_in : ready::ba_mirror_in);
      fds[i].events = short(((want & in) ? POLLIN : 0) | ((want & (in << 1)) ? POLLOUT : 0));
      if (!fds[i].events) fds[i].fd = -1;
    }
    const bool busy = d.busy();  // look, but do not wait
    const auto until = std::min(idle_until, d.wake_at());  // the idle timeout, a rate limit's or drain's time
    const int n = detail::retry([&] { return sys.poll(fds, 5, busy ? 0 : detail::ms_until(until, sys.now())); });
    const auto now = sys.now();
    if (n < 0) {
      d.stop(detail::last_error(), "poll");
    } else if (n > 0 || busy || now >= d.wake_at()) {
      idle_until = detail::deadline_after(opt.idle_timeout, now);
    } else if (now >= idle_until) {
      d.expire();
    }
    came = ready::of(true, unsigned(fds[0].revents)) | ready::of(false, unsigned(fds[1].revents)) |
           ready::of_mirror(true, unsigned(fds[3].revents)) | ready::of_mirror(false, unsigned(fds[4].revents));
    if (fds[2].revents && fds[2].fd == opt.drain->nearer_fd()) nearer_seen = true;
  }
  return d.result();
}

}  // namespace splice_lib

#endif  // SPLICE_PROXY_HPP_
