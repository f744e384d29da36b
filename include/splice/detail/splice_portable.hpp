// SPDX-License-Identifier: MIT
// The portable stand-in for splice_linux.hpp: every copy takes the user-space route.
#ifndef SPLICE_DETAIL_SPLICE_PORTABLE_HPP_
#define SPLICE_DETAIL_SPLICE_PORTABLE_HPP_

#include <cstddef>
#include <cerrno>
#include <cstdint>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>

#include "plan.hpp"
#include "sys.hpp"

namespace splice_lib::detail {

inline constexpr bool can_splice = false;

/// What splice_linux.hpp calls into: here every call fails with ENOSYS, and is never made.
struct kernel {
  static ssize_t splice(int, int, std::size_t, unsigned) noexcept { return errno = ENOSYS, -1; }
  static ssize_t tee(int, int, std::size_t, unsigned) noexcept { return errno = ENOSYS, -1; }
  static ssize_t sendfile(int, int, std::size_t) noexcept { return errno = ENOSYS, -1; }
  static ssize_t copy_file_range(int, int, std::size_t) noexcept { return errno = ENOSYS, -1; }
  static int pipe2(int*, int) noexcept { return errno = ENOSYS, -1; }
  static int sockatmark(int) noexcept { return errno = ENOSYS, -1; }
};

/// inspect reads fd's flags and whether it is a regular file or a socket.
template <class Sys>
std::error_code inspect(Sys& sys, int fd, end& e, const char*& op) noexcept {
  const int flags = retry([&] { return sys.fcntl(fd, F_GETFL, 0); });
  if (flags < 0) return op = "fcntl", last_error();
  struct stat st {};
  if (retry([&] { return sys.fstat(fd, &st); }) != 0) return op = "fstat", last_error();
  e.flags = flags;
  e.nonblocking = (flags & O_NONBLOCK) != 0;
  e.append = (flags & O_APPEND) != 0;
  e.always_ready = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
  e.socket = S_ISSOCK(st.st_mode);
  return {};
}

// The rest is never reached, since plan_for answers route::user without can_splice; it exists so
// that the copier compiles unchanged.
template <class Sys>
ssize_t splice_move(Sys&, int, int, std::size_t) noexcept {
  return errno = ENOSYS, -1;
}
template <class Sys>
ssize_t tee_copy(Sys&, int, int, std::size_t) noexcept {
  return errno = ENOSYS, -1;
}
template <class Sys>
ssize_t send_file(Sys&, int, int, std::size_t) noexcept {
  return errno = ENOSYS, -1;
}
template <class Sys>
ssize_t copy_range(Sys&, int, int, std::size_t) noexcept {
  return errno = ENOSYS, -1;
}
template <class Sys>
std::error_code make_pipe(Sys&, std::size_t, int (&)[2], std::size_t&, const char*& op) noexcept {
  op = "pipe";
  return std::make_error_code(std::errc::function_not_supported);
}
inline std::size_t pipe_budget() noexcept { return SIZE_MAX; }
template <class Sys>
std::size_t pipe_bytes(Sys&, int) noexcept {
  return 0;
}
template <class Sys>
int pipe_end_ready(Sys&, int, short) noexcept {
  return 1;
}

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_SPLICE_PORTABLE_HPP_
