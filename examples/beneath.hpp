// SPDX-License-Identifier: MIT
// Opening a path beneath a root directory without ever leaving it: no "..", no symlink anywhere.
#ifndef SPLICE_EXAMPLES_BENEATH_HPP_
#define SPLICE_EXAMPLES_BENEATH_HPP_

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(SYS_openat2)
#include <linux/openat2.h>
#endif

namespace example {

/// split_path turns a decoded URL path into its components. Empty and "." components are dropped;
/// returns false for a ".." component or a NUL byte, which a request has no business sending.
inline bool split_path(const std::string& path, std::vector<std::string>& out) {
  out.clear();
  std::size_t i = 0;
  while (i <= path.size()) {
    const std::size_t j = std::min(path.find('/', i), path.size());
    const std::string c = path.substr(i, j - i);
    if (c == ".." || c.find('\0') != std::string::npos) return false;
    if (!c.empty() && c != ".") out.push_back(c);
    i = j + 1;
  }
  return true;
}

/// beneath opens paths relative to a root directory fd and refuses any path that would resolve
/// outside it or through a symlink (ELOOP or EXDEV). With openat2(2) (Linux 5.6) the kernel
/// enforces it: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, which also refuses /proc magic links. Where
/// openat2 is missing (ENOSYS: an older kernel, or a seccomp filter that hides it) it walks the
/// components itself, one openat(O_NOFOLLOW) per component; the components never hold ".." (see
/// split_path), so that walk cannot climb. Thread-safe.
class beneath {
 public:
  beneath(int root, bool use_openat2) noexcept : root_(root), openat2_(use_openat2) {}

  int root() const noexcept { return root_; }
  /// Returns "openat2" or "openat walk": the resolver in use now.
  const char* resolver() const noexcept { return openat2_.load() ? "openat2" : "openat walk"; }

  /// Opens the path made of parts (at least one) with flags; -1 and errno on failure.
  int open(const std::vector<std::string>& parts, int flags, mode_t mode = 0) const noexcept {
    return open_range(parts, parts.size(), flags, mode);
  }
  /// Opens the directory that holds the last of parts (the root itself for a single part).
  int open_parent(const std::vector<std::string>& parts) const noexcept {
    if (parts.size() <= 1) return ::fcntl(root_, F_DUPFD_CLOEXEC, 0);
    return open_range(parts, parts.size() - 1, O_RDONLY | O_DIRECTORY, 0);
  }

 private:
  int open_range(const std::vector<std::string>& parts, std::size_t n, int flags, mode_t mode) const noexcept {
    if (n == 0) return errno = EINVAL, -1;
#if defined(SYS_openat2)
    if (openat2_.load(std::memory_order_relaxed)) {
      std::string rel;
      for (std::size_t i = 0; i < n; ++i) rel += (i ? "/" : "") + parts[i];
      open_how how{};
      how.flags = std::uint64_t(flags | O_CLOEXEC);
      how.mode = (flags & O_CREAT) ? mode : 0;
      how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
      const int fd = int(::syscall(SYS_openat2, root_, rel.c_str(), &how, sizeof how));
      if (fd >= 0 || errno != ENOSYS) return fd;
      openat2_.store(false);  // the kernel has none: walk from now on
    }
#endif
    return walk(parts, n, flags, mode);
  }

  // walk opens each directory on the way with O_NOFOLLOW, so a symlink anywhere fails with ELOOP.
  int walk(const std::vector<std::string>& parts, std::size_t n, int flags, mode_t mode) const noexcept {
    int dir = root_;
    for (std::size_t i = 0; i + 1 < n; ++i) {
      const int next = ::openat(dir, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      const int err = next < 0 ? symlink_errno(dir, parts[i]) : 0;
      if (dir != root_) ::close(dir);
      if (next < 0) return errno = err, -1;
      dir = next;
    }
    const int fd = ::openat(dir, parts[n - 1].c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
    const int err = fd < 0 ? symlink_errno(dir, parts[n - 1]) : 0;
    if (dir != root_) ::close(dir);
    errno = err;
    return fd;
  }

  // symlink_errno returns errno after a failed openat of name in dir, with ENOTDIR turned into
  // ELOOP when name is a symlink (met where O_DIRECTORY wanted a directory), as openat2 says it.
  static int symlink_errno(int dir, const std::string& name) noexcept {
    const int err = errno;
    struct stat st {};
    if (err == ENOTDIR && ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
      return ELOOP;
    return err;
  }

  int root_;
  mutable std::atomic<bool> openat2_;
};

}  // namespace example

#endif  // SPLICE_EXAMPLES_BENEATH_HPP_
