// SPDX-License-Identifier: MIT
// What every system call the library makes goes through: EINTR retried, errno turned into a
// std::error_code in one place; and the time arithmetic of deadlines.
#ifndef SPLICE_DETAIL_SYS_HPP_
#define SPLICE_DETAIL_SYS_HPP_

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <system_error>

namespace splice_lib::detail {

/// last_error returns errno as an error_code: the one place where errno becomes a std::error_code.
inline std::error_code last_error() noexcept { return {errno, std::system_category()}; }

/// retry calls f until it fails with something other than EINTR. Every call the library makes goes
/// through here; retrying is safe for all of them: read, write, send, splice, tee, sendfile and
/// copy_file_range fail with EINTR only when they moved nothing, and the others have no effect
/// when they fail. close is never routed here: Linux frees the descriptor even when close says EINTR.
template <class F>
auto retry(F f) noexcept {
  auto r = f();
  while (r < 0 && errno == EINTR) r = f();
  return r;
}

inline bool would_block(int err) noexcept { return err == EAGAIN || err == EWOULDBLOCK; }

/// The most bytes one read, write or splice moves on Linux (MAX_RW_COUNT); asking for more is
/// pointless, and some kernels refuse huge splice lengths with EINVAL.
inline constexpr std::size_t max_call = 0x7ffff000;

using clock_type = std::chrono::steady_clock;

/// no_deadline is the time point that never comes.
inline constexpr clock_type::time_point no_deadline = clock_type::time_point::max();

/// deadline_after returns now + t, or no_deadline when t is negative or longer than the clock can
/// add (milliseconds::max() and the like mean "no timeout", never "at once").
inline clock_type::time_point deadline_after(std::chrono::milliseconds t, clock_type::time_point now) noexcept {
  if (t.count() < 0) return no_deadline;
  if (t >= std::chrono::duration_cast<std::chrono::milliseconds>(no_deadline - now)) return no_deadline;
  return now + t;
}
inline clock_type::time_point deadline_after(std::chrono::milliseconds t) noexcept {
  return deadline_after(t, clock_type::now());
}

/// ms_until returns a poll(2) or epoll_wait(2) timeout that ends at `until`: -1 for no_deadline,
/// rounded up to whole milliseconds, and clamped to INT_MAX (about 24.8 days): a caller that sees
/// it run out before `until` waits again.
inline int ms_until(clock_type::time_point until, clock_type::time_point now) noexcept {
  if (until == no_deadline) return -1;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
  return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : int(left);
}
inline int ms_until(clock_type::time_point until) noexcept { return ms_until(until, clock_type::now()); }

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_SYS_HPP_
