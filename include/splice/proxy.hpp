// SPDX-License-Identifier: MIT
#ifndef SPLICE_PROXY_HPP_
#define SPLICE_PROXY_HPP_

#include <chrono>
#include <system_error>
#include <utility>

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
  /// Negative: no timeout.
  std::chrono::milliseconds idle_timeout{-1};
};

/// proxy relays a and b in both directions on the calling thread until both directions have ended,
/// then returns. When one direction reaches end of file, the other side's write half is shut down
/// (shutdown(SHUT_WR)), so half-closed connections work; the other direction goes on. The first error
/// in either direction, or the idle timeout, ends both: the other direction is stopped with
/// std::errc::operation_canceled. Both fds are put in non-blocking mode. Closes neither fd.
template <class Sys = system_calls>
proxy_result proxy(int a, int b, const proxy_options& opt = {}, Sys sys = {}) noexcept {
  proxy_result out;
  for (int fd : {a, b}) {
    const int flags = detail::retry([&] { return sys.fcntl(fd, F_GETFL, 0); });
    if (flags < 0 || detail::retry([&] { return sys.fcntl(fd, F_SETFL, flags | O_NONBLOCK); }) < 0) {
      out.error = detail::last_error();
      out.op = "fcntl";
      out.a_to_b.error = out.b_to_a.error = out.error;
      out.a_to_b.op = out.b_to_a.op = out.op;
      return out;
    }
  }
  copier<Sys> ab(b, a, no_limit, opt.copy, sys), ba(a, b, no_limit, opt.copy, sys);
  sigpipe_scope scope;
  step sab = ab.advance(scope), sba = ba.advance(scope);
  bool ab_ended = false, ba_ended = false;
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
  for (;;) {
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
    pollfd fds[2] = {{a, 0, 0}, {b, 0, 0}};
    if (sab == step::read) fds[0].events |= POLLIN;
    if (sab == step::write) fds[1].events |= POLLOUT;
    if (sba == step::read) fds[1].events |= POLLIN;
    if (sba == step::write) fds[0].events |= POLLOUT;
    for (auto& p : fds)
      if (!p.events) p.fd = -1;
    const int n = detail::retry([&] { return sys.poll(fds, 2, detail::poll_ms(opt.idle_timeout)); });
    if (n <= 0) {
      out.error = n == 0 ? std::make_error_code(std::errc::timed_out) : detail::last_error();
      out.op = "poll";
      ab.stop(out.error, out.op);
      ba.stop(out.error, out.op);
      break;
    }
    if (sab != step::done && fds[sab == step::read ? 0 : 1].revents) sab = ab.advance(scope);
    if (sba != step::done && fds[sba == step::read ? 1 : 0].revents) sba = ba.advance(scope);
  }
  out.a_to_b = ab.result();
  out.b_to_a = ba.result();
  return out;
}

}  // namespace splice_lib

#endif  // SPLICE_PROXY_HPP_
