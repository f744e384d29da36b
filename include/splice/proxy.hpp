// SPDX-License-Identifier: MIT
#ifndef SPLICE_PROXY_HPP_
#define SPLICE_PROXY_HPP_

#include <chrono>
#include <system_error>
#include <utility>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "copier.hpp"
#include "result.hpp"
#include "sigpipe.hpp"

namespace splice_lib {

/// What a proxy did: each direction's copy, and the first error of either.
struct proxy_result {
  result a_to_b, b_to_a;
  /// The first error in either direction; falsy when both ended with end of file.
  std::error_code error;
  /// The system call behind error, or "".
  const char* op = "";
};

struct proxy_options {
  /// How each direction copies.
  options copy;
  /// When neither fd becomes ready for this long, the proxy ends with std::errc::timed_out.
  /// Negative: no timeout. Signals do not restart it.
  std::chrono::milliseconds idle_timeout{-1};
  /// Sets TCP_NODELAY on both fds (where they are TCP sockets), as HAProxy and nginx do: without
  /// it, a response that reaches the proxy in two pieces waits for Nagle's algorithm.
  bool nodelay = true;
};

/// proxy relays a and b in both directions on the calling thread until both directions have ended,
/// then returns. When one direction reaches end of file, the other side's write half is shut down
/// (shutdown(SHUT_WR)), so half-closed connections work; the other direction goes on. The first error
/// in either direction, or the idle timeout, ends both: the other direction is stopped with
/// std::errc::operation_canceled. Both fds are put in non-blocking mode. Closes neither fd.
template <class Sys = system_calls>
proxy_result proxy(int a, int b, const proxy_options& opt = {}, Sys sys = {}) noexcept {
  proxy_result out;
  const auto refuse = [&](std::error_code ec, const char* op) {
    out.error = out.a_to_b.error = out.b_to_a.error = ec;
    out.op = out.a_to_b.op = out.b_to_a.op = op;
    return out;
  };
  if (!detail::valid(opt.copy)) return refuse(std::make_error_code(std::errc::invalid_argument), "options");
  for (int fd : {a, b}) {
    const int flags = detail::retry([&] { return sys.fcntl(fd, F_GETFL, 0); });
    if (flags < 0 || detail::retry([&] { return sys.fcntl(fd, F_SETFL, flags | O_NONBLOCK); }) < 0)
      return refuse(detail::last_error(), "fcntl");
    const int one = 1;
    if (opt.nodelay) sys.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly off TCP
  }
  const bool mask = !(opt.copy.sigpipe_ignored && sigpipe_scope::ignored_by_host());
  copier<Sys> ab(b, a, no_limit, opt.copy, sys), ba(a, b, no_limit, opt.copy, sys);
  step sab = step::again, sba = step::again;  // what each direction waits for; again: nothing
  bool run_ab = true, run_ba = true, ab_ended = false, ba_ended = false;
  const auto end = [&](const copier<Sys>& c, bool& ended, int peer_of_dst) {
    if (ended) return;
    ended = true;
    if (!c.result().error) {
      sys.shutdown(peer_of_dst, SHUT_WR);  // pass the end of file on
    } else if (!out.error) {
      out.error = c.result().error;
      out.op = c.result().op;
    }
  };
  auto idle_until = detail::deadline_after(opt.idle_timeout);
  for (;;) {
    {
      sigpipe_scope scope(mask);  // around this batch of advances, never across the poll below
      if (run_ab) sab = ab.advance(scope);
      if (run_ba) sba = ba.advance(scope);
    }
    if (sab == step::done) end(ab, ab_ended, b);
    if (sba == step::done) end(ba, ba_ended, a);
    if (out.error) {
      ab.stop(std::make_error_code(std::errc::operation_canceled), "proxy");
      ba.stop(std::make_error_code(std::errc::operation_canceled), "proxy");
      break;
    }
    if (ab_ended && ba_ended) break;
    // One poll over both fds, for what each unfinished direction waits for. An fd nobody waits on
    // is left out (fd -1), so that an error pending on it cannot wake the loop for nothing.
    constexpr short readable = POLLIN | POLLHUP | POLLERR, writable = POLLOUT | POLLHUP | POLLERR;
    pollfd fds[2] = {{a, 0, 0}, {b, 0, 0}};
    const auto want = [&](step s, pollfd& src, pollfd& dst) {
      if (s == step::read || s == step::either) src.events |= POLLIN;
      if (s == step::write || s == step::either) dst.events |= POLLOUT;
    };
    const auto ready = [&](step s, const pollfd& src, const pollfd& dst) {
      return s == step::again || ((s == step::read || s == step::either) && (src.revents & readable)) ||
             ((s == step::write || s == step::either) && (dst.revents & writable));
    };
    want(sab, fds[0], fds[1]);
    want(sba, fds[1], fds[0]);
    for (auto& p : fds)
      if (!p.events) p.fd = -1;
    const bool busy = sab == step::again || sba == step::again;  // look, but do not wait
    const int n = detail::retry([&] { return sys.poll(fds, 2, busy ? 0 : detail::ms_until(idle_until)); });
    if (n < 0 || (n == 0 && !busy && detail::clock_type::now() >= idle_until)) {
      out.error = n < 0 ? detail::last_error() : std::make_error_code(std::errc::timed_out);
      out.op = "poll";
      ab.stop(out.error, out.op);
      ba.stop(out.error, out.op);
      break;
    }
    if (n > 0 || busy) idle_until = detail::deadline_after(opt.idle_timeout);
    run_ab = !ab_ended && ready(sab, fds[0], fds[1]);
    run_ba = !ba_ended && ready(sba, fds[1], fds[0]);
  }
  out.a_to_b = ab.result();
  out.b_to_a = ba.result();
  return out;
}

}  // namespace splice_lib

#endif  // SPLICE_PROXY_HPP_
