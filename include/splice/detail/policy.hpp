// SPDX-License-Identifier: MIT
// The copier's rules of thumb and their numbers, in one place: when a relay splices and when it
// goes through user space, when a failed kernel move may fall back, and how much one advance()
// may do.
#ifndef SPLICE_DETAIL_POLICY_HPP_
#define SPLICE_DETAIL_POLICY_HPP_

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "plan.hpp"

namespace splice_lib::detail {

/// policy decides, between chunks, which route a copy takes, from what its moves did. Its numbers
/// come from options (defaults in options.hpp) and from the constant below. Where each was
/// measured (README, Benchmarks; bench/results/streams.json unless named):
/// - options::max_splice, 1 MiB: copier CPU 0.181-0.197 s/GiB per 1 MiB call against 0.308-0.381
///   per 64 KiB call; through epoll_proxy capped, 3,400-4,600 MB/s per core against 1,700-1,960.
/// - options::max_advance, 1 MiB: bounds of 256 KiB to 16 MiB moved the same per core (no order);
///   1 MiB keeps a small exchange's p99 under bulk at 0.34x HAProxy's (latency.json).
/// - options::small_splice, 64 KiB, and slow_run: a relay copy of 1 KiB chunks stays within 0.97x
///   of user space, and spliced from 2 KiB chunks up.
/// - options::splice_after, 2: a stream that slowed and sped up again is back on a pipe after two
///   full 64 KiB reads (tests/adaptive_linux_test.cpp pins the behaviour; the number itself has not
///   been swept against others: issue 18's defaults audit).
/// - No rule sends a socket -> file copy to user space (README, Benchmarks > Files): per MiB into
///   tmpfs it made 9.4 splices against 32 reads and writes, into ext4 13.1, with one copy per byte
///   instead of two and, on ext4, a seventh of the page-cache insertions (larger folios). The
///   wall-clock losses seen (0.86x tmpfs, 0.96x ext4) swung both ways on a shared machine; a rule
///   by file system (fstatfs f_type, once per copy) would need a quiet-machine loss to cite.
class policy {
 public:
  /// slow_run: a relay moves to user space after this many splices in a row that each took less
  /// than small_splice: a slow stream (a trickle of small messages), where each chunk costs two
  /// splices and a pipe instead of one read and one send. 8 keeps a bulk stream that dips for a
  /// moment on its pipe; like splice_after it has not been swept against other values yet.
  static constexpr unsigned slow_run = 8;

  policy(std::size_t max_advance, unsigned splice_after, std::size_t small_splice) noexcept
      : max_advance_(max_advance), splice_after_(splice_after), small_splice_(small_splice) {}

  /// yields says whether an advance() that has delivered `delivered` bytes stops with step::again.
  bool yields(std::uint64_t delivered) const noexcept { return delivered >= max_advance_; }

  /// spliced records a drain of n bytes into a pipe of capacity `capacity`, asked for `asked`.
  /// A chunk cut short by the caller (a limit, a rate) says nothing of the stream: it is not small.
  void spliced(std::size_t n, std::size_t capacity, std::size_t asked) noexcept {
    const std::size_t small = std::min({small_splice_, capacity, asked});
    small_splices_ = n < small ? small_splices_ + 1 : 0;
  }
  /// read records a read of n bytes into a buffer that could take `asked`.
  void read(std::size_t n, std::size_t asked) noexcept { full_reads_ = n == asked ? full_reads_ + 1 : 0; }

  /// next says which route an adaptive (relay) copy takes for its next chunk, taken while nothing
  /// is held, so no byte is in flight across a switch: a slow stream leaves the pipe; a stream
  /// whose last splice_after reads filled the buffer comes back to it.
  route next(route now) noexcept {
    if (now == route::relay && splice_after_ > 0 && small_splices_ >= slow_run) return reset(route::user);
    if (now == route::user && full_reads_ >= std::max(1u, splice_after_)) return reset(route::relay);
    return now;
  }
  /// refused: no pipe could be had (the pool at its limit, EMFILE); the copy runs in user space
  /// meanwhile and tries again as next() says.
  route refused() noexcept { return reset(route::user); }

  /// falls_back says whether a kernel move that failed with err, having moved nothing, may hand the
  /// copy to user space: EINVAL or ENOSYS (the kernel cannot move this pair: an old kernel, a kTLS
  /// record that is not data, a file system without splice), and copy_file_range before its first
  /// byte also EXDEV, EOPNOTSUPP, EPERM and EIO (other file systems, procfs), as Go does.
  static bool falls_back(route r, int err, bool moved_any) noexcept {
    if (r == route::user) return false;
    if (err == EINVAL || err == ENOSYS) return true;
    return r == route::copy_range && !moved_any && (err == EXDEV || err == EOPNOTSUPP || err == EPERM || err == EIO);
  }

 private:
  route reset(route r) noexcept {
    full_reads_ = small_splices_ = 0;
    return r;
  }

  std::size_t max_advance_;
  unsigned splice_after_;
  std::size_t small_splice_;
  unsigned full_reads_ = 0;     // reads in a row that filled the buffer
  unsigned small_splices_ = 0;  // splices into the pipe in a row that took less than small
};

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_POLICY_HPP_
