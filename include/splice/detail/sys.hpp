// SPDX-License-Identifier: MIT
// The system-call seam: every system call the library makes on a copy's fds goes through a `Sys`
// object; and the time arithmetic of deadlines.
#ifndef SPLICE_DETAIL_SYS_HPP_
#define SPLICE_DETAIL_SYS_HPP_

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace splice_lib {

/// The POSIX system calls the library makes. Each member returns what the call returns and leaves
/// errno as the call left it. A test derives from the platform's `system_calls` and hides one
/// member to inject a fault exactly where it wants; the library calls members through its `Sys`
/// template parameter, so the override is seen without virtual dispatch.
struct posix_calls {
  ssize_t read(int fd, void* buf, std::size_t n) { return ::read(fd, buf, n); }
  ssize_t write(int fd, const void* buf, std::size_t n) { return ::write(fd, buf, n); }
  ssize_t send(int fd, const void* buf, std::size_t n, int flags) { return ::send(fd, buf, n, flags); }
  int poll(pollfd* fds, nfds_t n, int timeout_ms) { return ::poll(fds, n, timeout_ms); }
  int getsockopt(int fd, int level, int name, void* value, socklen_t* len) {
    return ::getsockopt(fd, level, name, value, len);
  }
  int setsockopt(int fd, int level, int name, const void* value, socklen_t len) {
    return ::setsockopt(fd, level, name, value, len);
  }
  /// 1 when the next byte to read from a TCP socket is its urgent mark, 0 when not, -1 on error.
  int sockatmark(int fd) { return ::sockatmark(fd); }
  int fstat(int fd, struct stat* st) { return ::fstat(fd, st); }
  int pipe(int fds[2]) { return ::pipe(fds); }
  int fcntl(int fd, int cmd, int arg) { return ::fcntl(fd, cmd, arg); }
  int shutdown(int fd, int how) { return ::shutdown(fd, how); }
  int close(int fd) { return ::close(fd); }
};

namespace detail {

/// last_error returns errno as an error_code: the one place where errno becomes a std::error_code.
inline std::error_code last_error() noexcept { return {errno, std::system_category()}; }

/// retry calls f until it fails with something other than EINTR. Every call the library makes goes
/// through here; retrying is safe for all of them: read, write, send, splice, sendfile and
/// copy_file_range fail with EINTR only when they moved nothing, and the others have no effect
/// when they fail. close is never routed here: Linux frees the descriptor even when close says EINTR.
template <class F>
auto retry(F f) noexcept {
  auto r = f();
  while (r < 0 && errno == EINTR) r = f();
  return r;
}

using clock_type = std::chrono::steady_clock;

/// no_deadline is the time point that never comes.
inline constexpr clock_type::time_point no_deadline = clock_type::time_point::max();

/// deadline_after returns now + t, or no_deadline when t is negative or longer than the clock can
/// add (milliseconds::max() and the like mean "no timeout", never "at once").
inline clock_type::time_point deadline_after(std::chrono::milliseconds t) noexcept {
  if (t.count() < 0) return no_deadline;
  const auto now = clock_type::now();
  if (t >= std::chrono::duration_cast<std::chrono::milliseconds>(no_deadline - now)) return no_deadline;
  return now + t;
}

/// ms_until returns a poll(2) or epoll_wait(2) timeout that ends at `until`: -1 for no_deadline,
/// rounded up to whole milliseconds, and clamped to INT_MAX (about 24.8 days): a caller that sees
/// it run out before `until` waits again.
inline int ms_until(clock_type::time_point until) noexcept {
  if (until == no_deadline) return -1;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - clock_type::now()).count();
  return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : int(left);
}

}  // namespace detail
}  // namespace splice_lib

#endif  // SPLICE_DETAIL_SYS_HPP_
