// SPDX-License-Identifier: MIT
// Socket, pipe and file helpers shared by the tests: real fds on 127.0.0.1, nothing mocked.
#ifndef SPLICE_TESTS_SUPPORT_HPP_
#define SPLICE_TESTS_SUPPORT_HPP_

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include "splice/fd.hpp"
#include "splice/poller.hpp"

namespace test {

using fd = splice_lib::unique_fd;

/// A poller that counts its waits and forwards them to poll_poller.
struct counting_poller {
  splice_lib::poll_poller inner;
  int reads = 0, writes = 0;
  std::error_code wait_readable(int fd) { return ++reads, inner.wait_readable(fd); }
  std::error_code wait_writable(int fd) { return ++writes, inner.wait_writable(fd); }
  int waits() const { return reads + writes; }
};

inline void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string(what) + ": " + std::to_string(errno));
}

/// Two ends of a fresh TCP connection on 127.0.0.1: `a` connected, `b` accepted.
struct tcp_pair {
  fd a, b;
};

inline tcp_pair make_tcp() {
  fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  check(bool(listener), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  check(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0, "bind");
  check(::listen(listener.get(), 1) == 0, "listen");
  check(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0, "getsockname");
  tcp_pair p;
  p.a.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  check(::connect(p.a.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0, "connect");
  p.b.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  check(bool(p.b), "accept");
  return p;
}

inline std::pair<fd, fd> make_unix() {
  int s[2];
  check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) == 0, "socketpair");
  return {fd(s[0]), fd(s[1])};
}

/// A pipe: first is the read end, second the write end.
inline std::pair<fd, fd> make_pipe() {
  int p[2];
  check(::pipe2(p, O_CLOEXEC) == 0, "pipe2");
  return {fd(p[0]), fd(p[1])};
}

/// An unlinked temporary file, open for reading and writing.
inline fd make_file() {
  char name[] = "/tmp/splice-test-XXXXXX";
  fd f(::mkostemp(name, O_CLOEXEC));
  check(bool(f), "mkostemp");
  ::unlink(name);
  return f;
}

inline void set_nonblocking(int f) { check(::fcntl(f, F_SETFL, ::fcntl(f, F_GETFL) | O_NONBLOCK) == 0, "fcntl"); }

inline void set_buffers(int f, int bytes) {
  ::setsockopt(f, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  ::setsockopt(f, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

/// Closes f with an RST instead of a FIN.
inline void reset(fd& f) {
  linger l{1, 0};
  ::setsockopt(f.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  f.reset();
}

/// Returns n bytes that differ with seed and position, so that a lost or repeated chunk shows.
inline std::string payload(std::size_t n, std::uint32_t seed = 1) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    c = char(x);
  }
  return s;
}

/// Writes all of data to f, waiting as needed. Returns false on an error.
inline bool write_all(int f, const std::string& data, std::size_t chunk = 1 << 16) {
  for (std::size_t off = 0; off < data.size();) {
    ssize_t n = ::send(f, data.data() + off, std::min(chunk, data.size() - off), MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::write(f, data.data() + off, std::min(chunk, data.size() - off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      std::this_thread::yield();
      continue;
    }
    if (n <= 0) return false;
    off += std::size_t(n);
  }
  return true;
}

/// Reads f until end of file or an error, at most max bytes.
inline std::string read_all(int f, std::size_t max = SIZE_MAX) {
  std::string out;
  char buf[1 << 16];
  while (out.size() < max) {
    ssize_t n = ::read(f, buf, std::min(sizeof buf, max - out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      std::this_thread::yield();
      continue;
    }
    if (n <= 0) break;
    out.append(buf, std::size_t(n));
  }
  return out;
}

/// Reads what f (non-blocking) has now, without waiting.
inline std::string read_available(int f) {
  std::string out;
  char buf[1 << 16];
  for (ssize_t n; (n = ::read(f, buf, sizeof buf)) > 0;) out.append(buf, std::size_t(n));
  return out;
}

/// Returns the kernel's id of the calling thread.
inline pid_t thread_id() { return pid_t(::syscall(SYS_gettid)); }

/// Returns whether thread tid of this process sleeps in the kernel now (state S: in poll,
/// epoll_wait, a blocking read...). A test uses it to send a signal while a wait is under way.
inline bool sleeping(pid_t tid) {
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  char buf[512];
  const ssize_t n = f ? ::read(f.get(), buf, sizeof buf - 1) : -1;
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* close_paren = std::strrchr(buf, ')');  // the name may hold spaces and parentheses
  return close_paren && close_paren[1] == ' ' && close_paren[2] == 'S';
}

/// Sends signal sig to thread `target` (kernel id tid) count times, each while it sleeps in the
/// kernel, so that each lands inside a wait.
inline void interrupt_waits(pthread_t target, pid_t tid, int sig, int count) {
  for (int i = 0; i < count; ++i) {
    while (!sleeping(tid)) std::this_thread::yield();
    ::pthread_kill(target, sig);
  }
}

/// Waits until the peer has acknowledged every byte sent on the TCP socket f: then every byte is
/// queued at the receiver, and a test that reads it sees all of it, whatever the scheduler does.
inline void wait_acked(int f) {
  for (int unacked = 1; unacked > 0;) {
    check(::ioctl(f, TIOCOUTQ, &unacked) == 0, "SIOCOUTQ");
    if (unacked > 0) std::this_thread::yield();
  }
}

/// Returns the number of open fds of this process.
inline int open_fds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d)) ++n;
    ::closedir(d);
  }
  return n - 3;  // ".", ".." and the directory's own fd
}

/// A relay: a writer sends into `in.a`, the copy under test moves `in.b` -> `out.a`, a reader
/// drains `out.b`.
struct relay {
  tcp_pair in = make_tcp(), out = make_tcp();
  int src() const { return in.b.get(); }
  int dst() const { return out.a.get(); }
};

/// Runs copy_fn on relay r while one thread writes data (then closes the write side) and another
/// reads everything that arrives. Returns what the reader got.
template <class F>
std::string through(relay& r, const std::string& data, F copy_fn, std::size_t chunk = 1 << 16) {
  std::thread writer([&] {
    write_all(r.in.a.get(), data, chunk);
    ::shutdown(r.in.a.get(), SHUT_WR);
  });
  std::string got;
  std::thread reader([&] { got = read_all(r.out.b.get()); });
  copy_fn();
  ::shutdown(r.out.a.get(), SHUT_WR);
  writer.join();
  reader.join();
  return got;
}

}  // namespace test

#endif  // SPLICE_TESTS_SUPPORT_HPP_
