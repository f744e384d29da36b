// SPDX-License-Identifier: MIT
// The system-call seam: every system call the library makes goes through a `Sys` object.
#ifndef SPLICE_DETAIL_SYS_HPP_
#define SPLICE_DETAIL_SYS_HPP_

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
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
/// through here; retrying is safe for all of them: read, write, send and splice fail with EINTR only
/// when they moved nothing, and the others have no effect when they fail.
/// close is never routed here: Linux frees the descriptor even when close says EINTR.
template <class F>
auto retry(F f) noexcept {
  auto r = f();
  while (r < 0 && errno == EINTR) r = f();
  return r;
}

/// poll_ms turns a timeout into poll(2)'s milliseconds: negative means none (-1), and a timeout
/// longer than an int holds is clamped rather than wrapped.
inline int poll_ms(std::chrono::milliseconds t) noexcept {
  return t.count() < 0 ? -1 : t.count() > INT_MAX ? INT_MAX : int(t.count());
}

}  // namespace detail
}  // namespace splice_lib

#endif  // SPLICE_DETAIL_SYS_HPP_
