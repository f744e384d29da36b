// SPDX-License-Identifier: MIT
#ifndef SPLICE_COPY_HPP_
#define SPLICE_COPY_HPP_

#include <cstdint>
#include <utility>

#include "copier.hpp"
#include "poller.hpp"
#include "result.hpp"
#include "sigpipe.hpp"

namespace splice_lib {

/// copy moves at most limit bytes from src to dst, until src ends, the limit is reached, or an
/// error; it returns when done. It drives a copier, waiting on poller whenever a non-blocking fd
/// says EAGAIN. On Linux, socket to socket, and a pipe to or from a socket or another pipe, splice
/// in the kernel; a socket here is TCP, or a unix stream socket as dst (as src too with
/// splice_from_unix). Every other pair, and every fd pair on other systems, goes through a
/// user-space buffer. If no pipe can be had, or the kernel refuses the first splice, the
/// user-space path takes over without losing a byte. SIGPIPE never reaches the process (see
/// sigpipe_scope).
template <class Poller, class Sys>
result copy(int dst, int src, std::uint64_t limit, Poller& poller, const options& opt, Sys sys) noexcept {
  static_assert(is_poller_v<Poller>,
                "a poller needs std::error_code wait_readable(int) and wait_writable(int)");
  copier<Sys> c(detail::blocking_allowed{}, dst, src, limit, opt, std::move(sys));
  sigpipe_scope scope;
  for (step s; (s = c.advance(scope)) != step::done;) {
    const std::error_code ec = s == step::read ? poller.wait_readable(src) : poller.wait_writable(dst);
    if (ec) c.stop(ec, "poll");
  }
  return c.result();
}

/// The same, through the real system calls.
template <class Poller>
result copy(int dst, int src, std::uint64_t limit, Poller& poller, const options& opt = {}) noexcept {
  return copy(dst, src, limit, poller, opt, system_calls{});
}

/// The same, waiting with poll(2) and no deadline.
inline result copy(int dst, int src, std::uint64_t limit = no_limit) noexcept {
  poll_poller poller;
  return copy(dst, src, limit, poller);
}

}  // namespace splice_lib

#endif  // SPLICE_COPY_HPP_
