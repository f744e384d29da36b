// SPDX-License-Identifier: MIT
// The Linux kernel path: which fd pairs splice, pipe creation, and the splice call itself.
#ifndef SPLICE_DETAIL_SPLICE_LINUX_HPP_
#define SPLICE_DETAIL_SPLICE_LINUX_HPP_

#include <cstddef>
#include <system_error>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fd.hpp"
#include "sys.hpp"

namespace splice_lib {

/// The Linux system calls: the POSIX ones plus splice and pipe2.
struct linux_calls : posix_calls {
  ssize_t splice(int in, int out, std::size_t n, unsigned flags) {
    return ::splice(in, nullptr, out, nullptr, n, flags);
  }
  int pipe2(int fds[2], int flags) { return ::pipe2(fds, flags); }
};

using system_calls = linux_calls;

namespace detail {

inline constexpr bool can_splice = true;

/// route is how a copier moves bytes between its two ends.
enum class route {
  user,       // read(2) into a buffer, write(2) or send(2) out of it
  via_pipe,   // socket -> temporary pipe -> socket, two splices per chunk
  from_pipe,  // src is a pipe: one splice per chunk, straight into dst
  to_pipe,    // dst is a pipe: one splice per chunk, straight out of src
};

enum class end_kind { tcp, unix_stream, pipe, other };

/// classify tells a TCP socket from a unix stream socket from a pipe from anything else, with one
/// system call for a TCP socket and at most three for anything else. An invalid fd fails here,
/// before a byte moves.
template <class Sys>
std::error_code classify(Sys& sys, int fd, end_kind& kind, const char*& op) noexcept {
  // The value of a SOL_SOCKET option, or -1 if it cannot be had.
  const auto option = [&](int name) {
    int value = -1;
    socklen_t len = sizeof value;
    return retry([&] { return sys.getsockopt(fd, SOL_SOCKET, name, &value, &len); }) == 0 ? value : -1;
  };
  int proto = 0;
  socklen_t len = sizeof proto;
  if (retry([&] { return sys.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len); }) == 0) {
    kind = end_kind::other;
    if (proto == IPPROTO_TCP) kind = end_kind::tcp;
    else if (proto == 0 && option(SO_DOMAIN) == AF_UNIX && option(SO_TYPE) == SOCK_STREAM) kind = end_kind::unix_stream;
    return {};
  }
  if (errno != ENOTSOCK) return op = "getsockopt", last_error();
  struct stat st {};
  if (retry([&] { return sys.fstat(fd, &st); }) != 0) return op = "fstat", last_error();
  kind = S_ISFIFO(st.st_mode) ? end_kind::pipe : end_kind::other;
  return {};
}

/// plan picks the route for dst <- src. Two sockets (TCP, or a unix stream socket) go through a
/// temporary pipe; a pipe end paired with a socket or another pipe is spliced directly. A unix
/// socket is spliced into but, unless splice_from_unix, not out of: the benchmark measured splicing
/// out of one no faster than read(2), as Go found. Files and the rest take the user-space path:
/// splice either does not support them or has not been measured to win.
template <class Sys>
std::error_code plan(Sys& sys, int dst, int src, bool splice_from_unix, route& r, const char*& op) noexcept {
  end_kind d{}, s{};
  if (auto ec = classify(sys, src, s, op)) return ec;
  if (auto ec = classify(sys, dst, d, op)) return ec;
  if (s == end_kind::unix_stream && !splice_from_unix) s = end_kind::other;
  const auto socket = [](end_kind k) { return k == end_kind::tcp || k == end_kind::unix_stream; };
  if (socket(s) && socket(d)) r = route::via_pipe;
  else if (s == end_kind::pipe && d != end_kind::other) r = route::from_pipe;
  else if (d == end_kind::pipe && socket(s)) r = route::to_pipe;
  else r = route::user;
  return {};
}

/// splice_move moves at most n bytes from in to out; one of them is a pipe. SPLICE_F_NONBLOCK
/// makes the pipe side non-blocking; the socket side follows its own O_NONBLOCK. No SPLICE_F_MORE:
/// it corks the socket and stalls small request/response traffic.
template <class Sys>
ssize_t splice_move(Sys& sys, int in, int out, std::size_t n) noexcept {
  return retry([&] { return sys.splice(in, out, n, SPLICE_F_NONBLOCK); });
}

/// make_pipe makes a non-blocking, close-on-exec pipe and asks for size bytes of capacity.
/// F_SETPIPE_SZ fails with EPERM once the user holds more than pipe-user-pages-soft pages; the
/// pipe still works at the size it has, which F_GETPIPE_SZ reports.
template <class Sys>
std::error_code make_pipe(Sys& sys, std::size_t size, pipe& p, const char*& op) noexcept {
  int fds[2];
  if (retry([&] { return sys.pipe2(fds, O_CLOEXEC | O_NONBLOCK); }) != 0) {
    if (errno != ENOSYS) return op = "pipe2", last_error();
    // Kernels before 2.6.27 lack pipe2. Here a fork+exec in another thread can inherit the fds
    // for an instant; nothing better exists on such kernels.
    if (retry([&] { return sys.pipe(fds); }) != 0) return op = "pipe", last_error();
    pipe owner{unique_fd(fds[0]), unique_fd(fds[1]), 0};
    for (int fd : fds) {
      if (retry([&] { return sys.fcntl(fd, F_SETFD, FD_CLOEXEC); }) != 0 ||
          retry([&] { return sys.fcntl(fd, F_SETFL, O_NONBLOCK); }) != 0)
        return op = "fcntl", last_error();
    }
    p = std::move(owner);
  } else {
    p = pipe{unique_fd(fds[0]), unique_fd(fds[1]), 0};
  }
  int got = size > 0 ? retry([&] { return sys.fcntl(fds[1], F_SETPIPE_SZ, int(size)); }) : -1;
  if (got <= 0) got = retry([&] { return sys.fcntl(fds[1], F_GETPIPE_SZ, 0); });
  p.capacity = got > 0 ? std::size_t(got) : 4096;
  return {};
}

/// pipe_end_ready polls a pipe end without waiting. A direct splice that says EAGAIN leaves open
/// which end is not ready; the pipe end's state answers it, and the other end is then the one.
template <class Sys>
bool pipe_end_ready(Sys& sys, int fd, short events) noexcept {
  pollfd p{fd, events, 0};
  return retry([&] { return sys.poll(&p, 1, 0); }) != 0;
}

}  // namespace detail
}  // namespace splice_lib

#endif  // SPLICE_DETAIL_SPLICE_LINUX_HPP_
