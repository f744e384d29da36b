// SPDX-License-Identifier: MIT
// The portable stand-in for splice_linux.hpp: every copy takes the user-space route.
#ifndef SPLICE_DETAIL_SPLICE_PORTABLE_HPP_
#define SPLICE_DETAIL_SPLICE_PORTABLE_HPP_

#include <cstddef>
#include <system_error>

#include "fd.hpp"
#include "sys.hpp"

namespace splice_lib {

using system_calls = posix_calls;

namespace detail {

inline constexpr bool can_splice = false;

enum class route { user, via_pipe, from_pipe, to_pipe };

/// plan checks that both fds are open, so that a bad dst fails before a byte is read from src.
template <class Sys>
std::error_code plan(Sys& sys, int dst, int src, bool, route& r, const char*& op) noexcept {
  r = route::user;
  if (retry([&] { return sys.fcntl(src, F_GETFD, 0); }) < 0 || retry([&] { return sys.fcntl(dst, F_GETFD, 0); }) < 0) return op = "fcntl", last_error();
  return {};
}

// The rest is never reached, since plan only answers route::user; it exists so that the copier
// compiles unchanged.
template <class Sys>
ssize_t splice_move(Sys&, int, int, std::size_t) noexcept {
  errno = ENOSYS;
  return -1;
}

template <class Sys>
std::error_code make_pipe(Sys&, std::size_t, pipe&, const char*& op) noexcept {
  op = "pipe";
  return std::make_error_code(std::errc::function_not_supported);
}

template <class Sys>
bool pipe_end_ready(Sys&, int, short) noexcept {
  return true;
}

}  // namespace detail
}  // namespace splice_lib

#endif  // SPLICE_DETAIL_SPLICE_PORTABLE_HPP_
