// SPDX-License-Identifier: MIT
// File helpers shared by the tests of the file routes: named files on tmpfs and on the disk's
// filesystem, offsets and contents, and the socket or pipe at the other end of a copy.
#ifndef SPLICE_TESTS_FILES_SUPPORT_HPP_
#define SPLICE_TESTS_FILES_SUPPORT_HPP_

#include <cstdint>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.hpp"

namespace test {

/// Where a test file lives: tmpfs, or the disk's filesystem (ext4 or similar).
enum class where { tmpfs, disk };
inline const char* dir_of(where w) { return w == where::tmpfs ? "/dev/shm" : "/var/tmp"; }
inline const char* name_of(where w) { return w == where::tmpfs ? "tmpfs" : "disk"; }

/// A file made in dir, removed when it goes out of scope; `fd` is open for reading and writing.
struct named_file {
  std::string path;
  test::fd fd;

  explicit named_file(const std::string& dir, const std::string& content = {}) : path(dir + "/splice-files-XXXXXX") {
    fd.reset(::mkostemp(&path[0], O_CLOEXEC));
    check(bool(fd), "mkostemp");
    check(write_all(fd.get(), content), "write");
  }
  named_file(where w, const std::string& content = {}) : named_file(std::string(dir_of(w)), content) {}
  named_file(const named_file&) = delete;
  named_file& operator=(const named_file&) = delete;
  ~named_file() { ::unlink(path.c_str()); }

  /// Opens the same file again with flags (O_RDONLY, O_WRONLY | O_APPEND, ...).
  test::fd reopen(int flags) const {
    test::fd f(::open(path.c_str(), flags | O_CLOEXEC));
    check(bool(f), "open");
    return f;
  }
};

/// Returns fd's file offset.
inline std::uint64_t offset(int fd) { return std::uint64_t(::lseek(fd, 0, SEEK_CUR)); }

/// Returns the whole content of the file fd refers to, read with pread (its offset stays).
inline std::string contents(int fd) {
  std::string out;
  char buf[1 << 16];
  off_t at = 0;
  for (ssize_t n; (n = ::pread(fd, buf, sizeof buf, at)) > 0; at += n) out.append(buf, std::size_t(n));
  return out;
}

inline std::uint64_t file_size(int fd) {
  struct stat st {};
  ::fstat(fd, &st);
  return std::uint64_t(st.st_size);
}

/// The end of a copy that is not a file, and the far end that a test thread feeds or drains.
enum class peer { tcp, unix_socket, pipe };
inline const char* name_of(peer p) { return p == peer::tcp ? "tcp" : p == peer::unix_socket ? "unix" : "pipe"; }

struct channel {
  test::fd mine, theirs;  // mine: the copy's end; theirs: the far end
};

/// Makes a channel; for a pipe, the copy gets the read end when it reads from the channel.
inline channel make_channel(peer p, bool copy_reads) {
  switch (p) {
    case peer::tcp: {
      auto t = make_tcp();
      return {std::move(t.a), std::move(t.b)};
    }
    case peer::unix_socket: {
      auto [a, b] = make_unix();
      return {std::move(a), std::move(b)};
    }
    default: {
      auto [r, w] = make_pipe();
      return copy_reads ? channel{std::move(r), std::move(w)} : channel{std::move(w), std::move(r)};
    }
  }
}

}  // namespace test

#endif  // SPLICE_TESTS_FILES_SUPPORT_HPP_
