// SPDX-License-Identifier: MIT
// The system-call seam: every system call the library makes on a copy's fds, and the clock it
// reads, go through a `Sys` object.
#ifndef SPLICE_SYSTEM_CALLS_HPP_
#define SPLICE_SYSTEM_CALLS_HPP_

#include <chrono>
#include <cstddef>
#include <type_traits>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "detail/platform.hpp"

namespace splice_lib {

/// The POSIX system calls the library makes. Each member returns what the call returns and leaves
/// errno as the call left it. A test derives from `system_calls` and hides one member to inject a fault exactly where it wants; the library calls members
/// through its `Sys` template parameter, so the override is seen without virtual dispatch.
struct posix_calls {
  ssize_t read(int fd, void* buf, std::size_t n) { return ::read(fd, buf, n); }
  ssize_t write(int fd, const void* buf, std::size_t n) { return ::write(fd, buf, n); }
  ssize_t send(int fd, const void* buf, std::size_t n, int flags) { return ::send(fd, buf, n, flags); }
  ssize_t recv(int fd, void* buf, std::size_t n, int flags) { return ::recv(fd, buf, n, flags); }
  int poll(pollfd* fds, nfds_t n, int timeout_ms) { return ::poll(fds, n, timeout_ms); }
  int getsockopt(int fd, int level, int name, void* value, socklen_t* len) {
    return ::getsockopt(fd, level, name, value, len);
  }
  int setsockopt(int fd, int level, int name, const void* value, socklen_t len) {
    return ::setsockopt(fd, level, name, value, len);
  }
  /// 1 when the next byte to read from a TCP socket is its urgent mark, 0 when not, -1 on error.
  int sockatmark(int fd) { return ::sockatmark(fd); }
  int ioctl(int fd, unsigned long request, int* arg) { return ::ioctl(fd, request, arg); }
  int fstat(int fd, struct stat* st) { return ::fstat(fd, st); }
  int pipe(int fds[2]) { return ::pipe(fds); }
  int fcntl(int fd, int cmd, int arg) { return ::fcntl(fd, cmd, arg); }
  int shutdown(int fd, int how) { return ::shutdown(fd, how); }
  int close(int fd) { return ::close(fd); }
  /// The time that deadlines and rate limits are measured in; a test drives it instead of sleeping.
  std::chrono::steady_clock::time_point now() { return std::chrono::steady_clock::now(); }
};

/// The Linux system calls: the POSIX ones plus splice, tee, pipe2, sendfile and copy_file_range.
/// The ones that move bytes pass no offsets: they read and write at the fds' file offsets and
/// advance them, as read(2) and write(2) do. Elsewhere (or with SPLICE_NO_SPLICE) they fail with
/// ENOSYS, and no copy calls them.
struct linux_calls : posix_calls {
  ssize_t splice(int in, int out, std::size_t n, unsigned flags) { return detail::kernel::splice(in, out, n, flags); }
  ssize_t tee(int in, int out, std::size_t n, unsigned flags) { return detail::kernel::tee(in, out, n, flags); }
  ssize_t sendfile(int out, int in, std::size_t n) { return detail::kernel::sendfile(out, in, n); }
  ssize_t copy_file_range(int in, int out, std::size_t n) { return detail::kernel::copy_file_range(in, out, n); }
  int pipe2(int fds[2], int flags) { return detail::kernel::pipe2(fds, flags); }
  /// sockatmark(3) with its answer initialised (glibc's leaves it to the kernel, which valgrind
  /// reports as a read of uninitialised memory).
  int sockatmark(int fd) { return detail::kernel::sockatmark(fd); }
};

/// The system calls of this platform: linux_calls on Linux, posix_calls elsewhere.
using system_calls = std::conditional_t<detail::can_splice, linux_calls, posix_calls>;

}  // namespace splice_lib

#endif  // SPLICE_SYSTEM_CALLS_HPP_
