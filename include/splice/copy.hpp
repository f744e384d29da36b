// SPDX-License-Identifier: MIT
#ifndef SPLICE_COPY_HPP_
#define SPLICE_COPY_HPP_

#include <cstdint>
#include <utility>

#include "copier.hpp"
#include "options.hpp"
#include "poller.hpp"
#include "result.hpp"
#include "system_calls.hpp"

namespace splice_lib {

/// copy moves at most limit bytes from src to dst, until src ends, the limit is reached, or an
/// error; it returns when done. It drives a copier (which picks the route: splice, sendfile,
/// copy_file_range, or user space; see copier), waiting on poller whenever a non-blocking socket
/// or pipe says EAGAIN. If the kernel refuses a pair, or no pipe can be had, user space takes over
/// without losing a byte. SIGPIPE never reaches the process: it is blocked around each step of the
/// copy, never across a wait (see sigpipe_scope). A failed wait ends the copy with its error from
/// "poll"; nothing is retried without a wait in between, so a copy never spins. A copy with a
/// rate_limit (options::rate) sleeps until it may go on, with the poller's wait_until if it has one:
/// the poller's deadline still applies. A mirror (options::mirror) gets what it is still owed
/// after the copy, waiting with poll(2) for at most its linger.
///
/// Over blocking fds the copy waits inside read, splice or sendfile, where no poller and no
/// timeout applies: a copy that must end by a deadline needs non-blocking fds and a poller with
/// that deadline.
template <class Poller, class Sys>
result copy(int dst, int src, std::uint64_t limit, Poller& poller, const options& opt, Sys sys) noexcept {
  static_assert(is_poller_v<Poller>,
                "a poller needs std::error_code wait_readable(int) and wait_writable(int)");
  copier<Sys> c(allow_blocking, dst, src, limit, opt, sys);
  for (;;) {
    std::error_code ec;
    switch (c.advance()) {
      case step::done:
        if (opt.mirror) opt.mirror->finish_blocking(sys);  // what it is owed, within its linger
        return c.result();
      case step::again: continue;  // nothing else to run on this thread
      case step::either:
        if constexpr (detail::has_wait_either<Poller>) ec = poller.wait_either(src, dst);
        break;  // without it, the next advance() names one fd
      case step::later:  // the rate limit has no bytes for it yet
        if constexpr (detail::has_wait_until<Poller>) ec = poller.wait_until(c.wake_at());
        else ec = detail::sleep_until(c.wake_at());
        break;
      case step::read: ec = poller.wait_readable(src); break;
      case step::write: ec = poller.wait_writable(dst); break;
    }
    if (ec) c.stop(ec, "poll");
  }
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
