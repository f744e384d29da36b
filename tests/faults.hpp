// SPDX-License-Identifier: MIT
// Faults injected through the system-call seam, shared by the fault tests: a script says, for the
// nth call of a system call, which errno it fails with, and the seam below obeys it.
#ifndef SPLICE_TESTS_FAULTS_HPP_
#define SPLICE_TESTS_FAULTS_HPP_

#include <cerrno>
#include <functional>
#include <map>
#include <string>

#include <sys/stat.h>

#include "splice/system_calls.hpp"

namespace test {

/// Returned by a script's fault to make the call return 0 without running it, as copy_file_range
/// does on procfs and other files that report no size.
constexpr int zero = -1;

inline bool regular(int fd) {
  struct stat st {};
  return fd >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/// A script of faults: for the nth call (from 1) of a system call, which errno to fail with, zero
/// to return 0, or 0 to make the real call; and an optional cap on the length of each write,
/// splice, sendfile and copy_file_range (and of reads, with cap_reads). With spare_files, calls
/// that write to a regular file run unharmed and uncounted: EAGAIN, say, is something a file never
/// returns.
struct script {
  std::function<int(const std::string& op, int nth)> fault = [](const std::string&, int) { return 0; };
  std::size_t max_len = 0;
  bool cap_reads = false, spare_files = false;
  /// When set, only calls that write into this fd are counted and faulted (a mirror's, say).
  int only_out = -1;
  std::map<std::string, int> calls;

  int hit(const std::string& op, int out = -1) {
    if (only_out >= 0 && out != only_out) return 0;
    return spare_files && regular(out) ? 0 : fault(op, ++calls[op]);
  }
  std::size_t cap(std::size_t n) const { return max_len && n > max_len ? max_len : n; }
};

/// The real system calls, with faults from a script.
struct faulty : splice_lib::system_calls {
  using base = splice_lib::system_calls;
  script* s;
  explicit faulty(script& sc) : s(&sc) {}

#define SPLICE_TEST_FAULT(op, out)     \
  if (const int e = s->hit(op, out)) { \
    if (e == zero) return 0;           \
    errno = e;                         \
    return -1;                         \
  }
  ssize_t read(int fd, void* buf, std::size_t n) {
    SPLICE_TEST_FAULT("read", -1)
    return base::read(fd, buf, s->cap_reads ? s->cap(n) : n);
  }
  ssize_t write(int fd, const void* buf, std::size_t n) {
    SPLICE_TEST_FAULT("write", fd)
    return base::write(fd, buf, s->cap(n));
  }
  ssize_t send(int fd, const void* buf, std::size_t n, int flags) {
    SPLICE_TEST_FAULT("send", fd)
    return base::send(fd, buf, s->cap(n), flags);
  }
  ssize_t splice(int in, int out, std::size_t n, unsigned flags) {
    SPLICE_TEST_FAULT("splice", out)
    return base::splice(in, out, s->cap(n), flags);
  }
  ssize_t sendfile(int out, int in, std::size_t n) {
    SPLICE_TEST_FAULT("sendfile", out)
    return base::sendfile(out, in, s->cap(n));
  }
  ssize_t copy_file_range(int in, int out, std::size_t n) {
    SPLICE_TEST_FAULT("copy_file_range", out)
    return base::copy_file_range(in, out, s->cap(n));
  }
  int pipe2(int fds[2], int flags) {
    SPLICE_TEST_FAULT("pipe2", -1)
    return base::pipe2(fds, flags);
  }
  int pipe(int fds[2]) {
    SPLICE_TEST_FAULT("pipe", -1)
    return base::pipe(fds);
  }
  int getsockopt(int fd, int level, int name, void* value, socklen_t* len) {
    SPLICE_TEST_FAULT("getsockopt", -1)
    return base::getsockopt(fd, level, name, value, len);
  }
  int poll(pollfd* fds, nfds_t n, int timeout_ms) {
    SPLICE_TEST_FAULT("poll", -1)
    return base::poll(fds, n, timeout_ms);
  }
#undef SPLICE_TEST_FAULT
};

}  // namespace test

#endif  // SPLICE_TESTS_FAULTS_HPP_
