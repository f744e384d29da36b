// SPDX-License-Identifier: MIT
#ifndef SPLICE_POLLER_HPP_
#define SPLICE_POLLER_HPP_

#include <algorithm>
#include <chrono>
#include <system_error>
#include <type_traits>
#include <utility>

#include <poll.h>

#include "detail/sys.hpp"

namespace splice_lib {

// A poller waits until a file descriptor is ready. A type P is a poller when, for a P& p and an
// int fd:
//   p.wait_readable(fd) returns std::error_code: falsy once fd is readable, at end of file, or
//                        has an error pending (the next system call on fd will tell which);
//   p.wait_writable(fd) the same for writing;
// and neither throws. A spurious falsy return is allowed. A deadline is reported as
// std::errc::timed_out. Two more members are optional, found at compile time:
//   p.wait_either(r, w)  the same, once r is readable or w writable: copy() waits with it when a
//                        copier cannot tell which end said EAGAIN (step::either), and otherwise
//                        calls advance() again, which then names one fd;
//   p.wait_until(t)      returns once the steady_clock reaches t (or the poller's deadline does,
//                        with timed_out): copy() sleeps with it, and otherwise in the calling thread.
// A poller for a fiber scheduler suspends the calling fiber here; a C++20 coroutine cannot (a wait
// must return synchronously): drive a copier from the coroutine instead.

/// is_poller_v<P> is true when P meets the poller requirements above.
template <class P, class = void>
inline constexpr bool is_poller_v = false;
template <class P>
inline constexpr bool is_poller_v<
    P, std::enable_if_t<std::is_same_v<decltype(std::declval<P&>().wait_readable(0)), std::error_code> &&
                        std::is_same_v<decltype(std::declval<P&>().wait_writable(0)), std::error_code>>> =
    true;

namespace detail {
template <class P, class = void>
inline constexpr bool has_wait_either = false;
template <class P>
inline constexpr bool has_wait_either<P, std::void_t<decltype(std::declval<P&>().wait_either(0, 0))>> = true;
template <class P, class = void>
inline constexpr bool has_wait_until = false;
template <class P>
inline constexpr bool has_wait_until<
    P, std::void_t<decltype(std::declval<P&>().wait_until(std::declval<std::chrono::steady_clock::time_point>()))>> =
    true;

/// sleep_until sleeps the calling thread until t (EINTR sleeps again for what is left).
inline std::error_code sleep_until(std::chrono::steady_clock::time_point t) noexcept {
  while (detail::clock_type::now() < t)
    if (::poll(nullptr, 0, detail::ms_until(t)) < 0 && errno != EINTR) return detail::last_error();
  return {};
}
}  // namespace detail

#if defined(__cpp_concepts)
/// The poller requirements as a C++20 concept.
template <class P>
concept poller = is_poller_v<P>;
#endif

/// poll_poller waits with poll(2), one fd at a time. A timeout applies to each wait: a wait that
/// sees no readiness for that long returns std::errc::timed_out. A deadline applies to all waits: a
/// wait still waiting then returns std::errc::timed_out, and every later wait at once. EINTR is
/// retried with the time that is left. Stateless apart from those; one object may serve any number
/// of threads.
class poll_poller {
 public:
  /// Waits without a deadline.
  poll_poller() noexcept = default;
  /// Gives up on a wait after timeout; a negative timeout, or one too long to add to the clock,
  /// means none.
  explicit poll_poller(std::chrono::milliseconds timeout) noexcept : timeout_(timeout) {}
  /// Gives up on every wait at deadline, as Go's SetDeadline does.
  explicit poll_poller(std::chrono::steady_clock::time_point deadline) noexcept : deadline_(deadline) {}

  /// Waits until fd is readable.
  std::error_code wait_readable(int fd) noexcept { return wait(fd, POLLIN, -1, 0); }
  /// Waits until fd is writable.
  std::error_code wait_writable(int fd) noexcept { return wait(fd, POLLOUT, -1, 0); }
  /// Waits until r is readable or w writable.
  std::error_code wait_either(int r, int w) noexcept { return wait(r, POLLIN, w, POLLOUT); }
  /// Sleeps until t, or until the deadline with timed_out.
  std::error_code wait_until(std::chrono::steady_clock::time_point t) noexcept {
    return t >= deadline_ ? wait(-1, 0, -1, 0) : detail::sleep_until(t);
  }

 private:
  // wait polls fd for events and fd2 for events2 (-1: none) until one is ready or the time is up.
  std::error_code wait(int fd, short events, int fd2, short events2) const noexcept {
    const auto until = std::min(deadline_, detail::deadline_after(timeout_));
    for (;;) {
      pollfd p[2] = {{fd, events, 0}, {fd2, events2, 0}};
      const int n = ::poll(p, fd2 < 0 ? 1 : 2, detail::ms_until(until));
      if (n > 0) return ((p[0].revents | p[1].revents) & POLLNVAL) ? std::make_error_code(std::errc::bad_file_descriptor)
                                                                   : std::error_code{};
      if (n == 0 && detail::clock_type::now() >= until) return std::make_error_code(std::errc::timed_out);
      if (n < 0 && errno != EINTR) return detail::last_error();
    }
  }

  std::chrono::milliseconds timeout_{-1};
  std::chrono::steady_clock::time_point deadline_ = detail::no_deadline;
};

static_assert(is_poller_v<poll_poller> && detail::has_wait_either<poll_poller> && detail::has_wait_until<poll_poller>);

}  // namespace splice_lib

#endif  // SPLICE_POLLER_HPP_
