// SPDX-License-Identifier: MIT
#ifndef SPLICE_DETAIL_BUFFER_HPP_
#define SPLICE_DETAIL_BUFFER_HPP_

#include <cstddef>
#include <memory>
#include <new>

namespace splice_lib::detail {

/// buffer is the user-space route's memory, allocated on first use: bytes [begin, end) were taken
/// from src and are not yet in dst.
class buffer {
 public:
  /// reserve makes room for at least n bytes; false if memory ran out. Invariant: empty.
  bool reserve(std::size_t n) noexcept {
    if (cap_ >= n) return true;
    data_.reset(new (std::nothrow) char[n]);
    cap_ = data_ ? n : 0;
    return data_ != nullptr;
  }
  char* room() noexcept { return data_.get(); }
  std::size_t capacity() const noexcept { return cap_; }
  /// Records n bytes put into room().
  void filled(std::size_t n) noexcept { begin_ = 0, end_ = n; }
  const char* data() const noexcept { return data_.get() + begin_; }
  std::size_t size() const noexcept { return end_ - begin_; }
  /// Records n bytes written out of data().
  void consumed(std::size_t n) noexcept { begin_ += n; }
  void clear() noexcept { begin_ = end_ = 0; }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t cap_ = 0, begin_ = 0, end_ = 0;
};

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_BUFFER_HPP_
