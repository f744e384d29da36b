// SPDX-License-Identifier: MIT
// The portable stand-in for splice_linux.hpp: every copy takes the user-space route.
#ifndef SPLICE_DETAIL_SPLICE_PORTABLE_HPP_
#define SPLICE_DETAIL_SPLICE_PORTABLE_HPP_

#include <cstddef>
#include <cstdint>
#include <system_error>

#include "fd.hpp"
#include "plan.hpp"
#include "sys.hpp"

namespace splice_lib {

using system_calls = posix_calls;

namespace detail {

inline constexpr bool can_splice = false;

/// make_plan checks each fd's access mode (EBADF from "fcntl" for a src not open for reading or a
/// dst not open for writing) and whether it is a regular file, before a byte is read from src.
template <class Sys>
std::error_code make_plan(Sys& sys, int dst, int src, bool, plan& p, const char*& op) noexcept {
  for (const bool is_src : {true, false}) {
    const int fd = is_src ? src : dst;
    const int flags = retry([&] { return sys.fcntl(fd, F_GETFL, 0); });
    if (flags < 0) return op = "fcntl", last_error();
    if (!access_ok(flags, is_src)) return op = "fcntl", std::make_error_code(std::errc::bad_file_descriptor);
    struct stat st {};
    if (retry([&] { return sys.fstat(fd, &st); }) != 0) return op = "fstat", last_error();
    (is_src ? p.src_always_ready : p.dst_always_ready) = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
    (is_src ? p.src_nonblocking : p.dst_nonblocking) = (flags & O_NONBLOCK) != 0;
    if (!is_src) p.dst_socket = S_ISSOCK(st.st_mode);
  }
  p.how = route::user;
  return {};
}

// The rest is never reached, since make_plan only answers route::user; it exists so that the
// copier compiles unchanged.
template <class Sys>
ssize_t splice_move(Sys&, int, int, std::size_t) noexcept {
  errno = ENOSYS;
  return -1;
}
template <class Sys>
ssize_t send_file(Sys&, int, int, std::size_t) noexcept {
  errno = ENOSYS;
  return -1;
}
template <class Sys>
ssize_t copy_range(Sys&, int, int, std::size_t) noexcept {
  errno = ENOSYS;
  return -1;
}

template <class Sys>
std::error_code make_pipe(Sys&, std::size_t, pipe&, const char*& op) noexcept {
  op = "pipe";
  return std::make_error_code(std::errc::function_not_supported);
}

inline std::size_t pipe_budget() noexcept { return SIZE_MAX; }

template <class Sys>
int pipe_end_ready(Sys&, int, short) noexcept {
  return 1;
}

}  // namespace detail
}  // namespace splice_lib

#endif  // SPLICE_DETAIL_SPLICE_PORTABLE_HPP_
