// SPDX-License-Identifier: MIT
#ifndef SPLICE_DETAIL_FD_HPP_
#define SPLICE_DETAIL_FD_HPP_

#include <cstddef>
#include <utility>

#include <unistd.h>

namespace splice_lib::detail {

/// unique_fd owns a file descriptor and closes it in its destructor. Move-only.
class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    reset(std::exchange(o.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  /// Gives up ownership without closing.
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// pipe is both ends of a kernel pipe, owned, and how many bytes it can hold.
struct pipe {
  unique_fd r, w;
  std::size_t capacity = 0;

  explicit operator bool() const noexcept { return bool(r); }
};

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_FD_HPP_
