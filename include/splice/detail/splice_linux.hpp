// SPDX-License-Identifier: MIT
// The Linux kernel paths: what kind of fd each end is, pipe creation, and the calls that move bytes
// inside the kernel (splice, tee, sendfile, copy_file_range), each through the `Sys` seam.
#ifndef SPLICE_DETAIL_SPLICE_LINUX_HPP_
#define SPLICE_DETAIL_SPLICE_LINUX_HPP_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <system_error>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan.hpp"
#include "sys.hpp"

namespace splice_lib::detail {

inline constexpr bool can_splice = true;

/// The Linux calls that system_calls (system_calls.hpp) adds to the POSIX ones. Those that move
/// bytes pass no offsets: they read and write at the fds' file offsets and advance them, as
/// read(2) and write(2) do.
struct kernel {
  static ssize_t splice(int in, int out, std::size_t n, unsigned flags) noexcept {
    return ::splice(in, nullptr, out, nullptr, n, flags);
  }
  static ssize_t tee(int in, int out, std::size_t n, unsigned flags) noexcept { return ::tee(in, out, n, flags); }
  static ssize_t sendfile(int out, int in, std::size_t n) noexcept { return ::sendfile(out, in, nullptr, n); }
  static ssize_t copy_file_range(int in, int out, std::size_t n) noexcept {
    return ::copy_file_range(in, nullptr, out, nullptr, n, 0);
  }
  static int pipe2(int fds[2], int flags) noexcept { return ::pipe2(fds, flags); }
  // sockatmark(3), with the answer initialised: glibc's leaves it to the kernel, which valgrind
  // reports as a read of uninitialised memory.
  static int sockatmark(int fd) noexcept {
    int at = 0;
    return ::ioctl(fd, SIOCATMARK, &at) < 0 ? -1 : at;
  }
};

/// inspect reads fd's flags (one fcntl) and kind: one getsockopt for a TCP socket, up to three for
/// another socket, an fstat for the rest.
template <class Sys>
std::error_code inspect(Sys& sys, int fd, end& e, const char*& op) noexcept {
  const int flags = retry([&] { return sys.fcntl(fd, F_GETFL, 0); });
  if (flags < 0) return op = "fcntl", last_error();
  e.flags = flags;
  e.nonblocking = (flags & O_NONBLOCK) != 0;
  e.append = (flags & O_APPEND) != 0;
  // The value of a SOL_SOCKET option, or -1 if it cannot be had.
  const auto option = [&](int name) {
    int value = -1;
    socklen_t len = sizeof value;
    return retry([&] { return sys.getsockopt(fd, SOL_SOCKET, name, &value, &len); }) == 0 ? value : -1;
  };
  int proto = 0;
  socklen_t len = sizeof proto;
  if (retry([&] { return sys.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len); }) == 0) {
    e.socket = true;
    if (proto == IPPROTO_TCP) e.kind = end_kind::tcp;
    else if (proto == 0 && option(SO_DOMAIN) == AF_UNIX && option(SO_TYPE) == SOCK_STREAM) e.kind = end_kind::unix_stream;
    return {};
  }
  if (errno != ENOTSOCK) return op = "getsockopt", last_error();
  struct stat st {};
  if (retry([&] { return sys.fstat(fd, &st); }) != 0) return op = "fstat", last_error();
  if (S_ISFIFO(st.st_mode)) e.kind = end_kind::pipe;
  else if (S_ISREG(st.st_mode)) e.kind = end_kind::file;
  e.always_ready = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
  return {};
}

/// splice_move moves at most n bytes from in to out; one of them is a pipe. SPLICE_F_NONBLOCK
/// makes the pipe side non-blocking; the other side follows its own O_NONBLOCK. No SPLICE_F_MORE:
/// it corks the socket and stalls small request/response traffic.
template <class Sys>
ssize_t splice_move(Sys& sys, int in, int out, std::size_t n) noexcept {
  return retry([&] { return sys.splice(in, out, n, SPLICE_F_NONBLOCK); });
}

/// tee_copy duplicates at most n bytes from the pipe in into the pipe out, leaving in as it was.
template <class Sys>
ssize_t tee_copy(Sys& sys, int in, int out, std::size_t n) noexcept {
  return retry([&] { return sys.tee(in, out, n, SPLICE_F_NONBLOCK); });
}

/// send_file moves at most n bytes from the regular file in to the socket out.
template <class Sys>
ssize_t send_file(Sys& sys, int out, int in, std::size_t n) noexcept {
  return retry([&] { return sys.sendfile(out, in, n); });
}

/// copy_range moves at most n bytes from the regular file in to the regular file out.
template <class Sys>
ssize_t copy_range(Sys& sys, int in, int out, std::size_t n) noexcept {
  return retry([&] { return sys.copy_file_range(in, out, n); });
}

/// pipe_bytes returns how many bytes the pipe end fd holds (FIONREAD), or 0 if it cannot tell.
template <class Sys>
std::size_t pipe_bytes(Sys& sys, int fd) noexcept {
  int n = 0;
  return retry([&] { return sys.ioctl(fd, FIONREAD, &n); }) == 0 && n > 0 ? std::size_t(n) : 0;
}

/// make_pipe makes a non-blocking, close-on-exec pipe, fds[0] its read end, and asks for size bytes
/// of capacity, which it sets to what the kernel granted. F_SETPIPE_SZ fails with EPERM once the
/// user holds more than pipe-user-pages-soft pages; the pipe still works at the size it has, which
/// F_GETPIPE_SZ reports. On failure no fd is left open.
template <class Sys>
std::error_code make_pipe(Sys& sys, std::size_t size, int (&fds)[2], std::size_t& capacity, const char*& op) noexcept {
  if (retry([&] { return sys.pipe2(fds, O_CLOEXEC | O_NONBLOCK); }) != 0) {
    if (errno != ENOSYS) return op = "pipe2", last_error();
    // Kernels before 2.6.27 lack pipe2. Here a fork+exec in another thread can inherit the fds
    // for an instant; nothing better exists on such kernels.
    if (retry([&] { return sys.pipe(fds); }) != 0) return op = "pipe", last_error();
    for (int fd : fds) {
      if (retry([&] { return sys.fcntl(fd, F_SETFD, FD_CLOEXEC); }) != 0 ||
          retry([&] { return sys.fcntl(fd, F_SETFL, O_NONBLOCK); }) != 0) {
        const std::error_code ec = last_error();
        sys.close(fds[0]);
        sys.close(fds[1]);
        return op = "fcntl", ec;
      }
    }
  }
  int got = size > 0 ? retry([&] { return sys.fcntl(fds[1], F_SETPIPE_SZ, int(size)); }) : -1;
  if (got <= 0) got = retry([&] { return sys.fcntl(fds[1], F_GETPIPE_SZ, 0); });
  capacity = got > 0 ? std::size_t(got) : 4096;
  return {};
}

/// pipe_budget returns the pipe capacity an unprivileged process may hold (fs.pipe-user-pages-soft
/// pages, for all of its user's processes), or SIZE_MAX for a privileged one (CAP_SYS_RESOURCE or
/// CAP_SYS_ADMIN in effect), which the kernel exempts, and where the limit is 0 or unreadable.
inline std::size_t pipe_budget() noexcept {
  constexpr std::size_t none = SIZE_MAX;
  unsigned long long pages = 0, caps = 0;
  if (FILE* f = std::fopen("/proc/sys/fs/pipe-user-pages-soft", "re")) {
    if (std::fscanf(f, "%llu", &pages) != 1) pages = 0;
    (void)std::fclose(f);
  }
  if (FILE* f = std::fopen("/proc/self/status", "re")) {
    char line[256];
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "CapEff: %llx", &caps) == 1) break;
    (void)std::fclose(f);
  }
  constexpr unsigned long long exempt = (1ull << 24) | (1ull << 21);  // CAP_SYS_RESOURCE, CAP_SYS_ADMIN
  if (pages == 0 || (caps & exempt)) return none;
  return std::size_t(pages) * std::size_t(::sysconf(_SC_PAGESIZE));
}

/// pipe_end_ready polls a pipe end without waiting: 1 ready, 0 not, -1 if poll failed.
template <class Sys>
int pipe_end_ready(Sys& sys, int fd, short events) noexcept {
  pollfd p{fd, events, 0};
  const int n = retry([&] { return sys.poll(&p, 1, 0); });
  return n < 0 ? -1 : n > 0;
}

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_SPLICE_LINUX_HPP_
