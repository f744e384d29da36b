// SPDX-License-Identifier: MIT
#ifndef SPLICE_PIPE_POOL_HPP_
#define SPLICE_PIPE_POOL_HPP_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <system_error>
#include <utility>

#include "detail/platform.hpp"

namespace splice_lib {

/// pipe_pool keeps empty pipes for reuse, so that a copy does not pay for pipe2, F_SETPIPE_SZ and
/// two closes. Thread-safe. Bounded: at most `max_pipes` pipes exist at once, in use or idle, and at
/// most `max_idle` wait idle; a copy that finds the pool exhausted takes the user-space path. Only
/// empty pipes come back: a pipe that still holds bytes is closed, since they belong to a stream
/// that has ended.
class pipe_pool {
 public:
  struct config {
    /// Capacity asked of each new pipe with F_SETPIPE_SZ; the kernel may grant less.
    std::size_t pipe_size = std::size_t(1) << 20;
    /// Idle pipes kept for reuse; 0 makes every copy use a fresh pipe.
    std::size_t max_idle = 16;
    /// Pipes in existence at once, in use plus idle.
    std::size_t max_pipes = 1024;
  };

  /// What the pool has done so far.
  struct counters {
    std::size_t in_use = 0;     ///< pipes held by copies now
    std::size_t idle = 0;       ///< pipes waiting for reuse now
    std::uint64_t created = 0;  ///< pipes made
    std::uint64_t reused = 0;   ///< acquires served by an idle pipe
    std::uint64_t discarded = 0;   ///< pipes closed because they still held bytes
    std::uint64_t exhausted = 0;   ///< acquires refused because max_pipes were in existence
    std::uint64_t spliced_bytes = 0;  ///< bytes that copies using this pool moved with splice
    std::uint64_t copied_bytes = 0;   ///< bytes that they moved through user space
  };

  pipe_pool() noexcept : pipe_pool(config{}) {}
  /// Makes an empty pool. The idle slots are allocated here, so that release() never allocates;
  /// if even that fails, the pool keeps no idle pipes.
  explicit pipe_pool(const config& c) noexcept
      : config_(c), idle_(new (std::nothrow) detail::pipe[c.max_idle]), idle_cap_(idle_ ? c.max_idle : 0) {}
  pipe_pool(const pipe_pool&) = delete;
  pipe_pool& operator=(const pipe_pool&) = delete;

  /// Returns the process-wide pool that copies use unless told otherwise. It is never destroyed,
  /// so copies still running during exit stay safe; its pipes close with the process.
  static pipe_pool& shared() noexcept {
    alignas(pipe_pool) static unsigned char storage[sizeof(pipe_pool)];
    static pipe_pool* pool = new (storage) pipe_pool();
    return *pool;
  }

  /// Returns the configuration the pool was made with.
  const config& settings() const noexcept { return config_; }

  /// Returns a snapshot of the counters.
  counters stats() const noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    counters c = counters_;
    c.idle = idle_count_;
    return c;
  }

  /// acquire hands out an empty pipe: an idle one, or a new one when fewer than max_pipes exist.
  /// Fails with EMFILE when the pool is exhausted, or with the error of pipe creation.
  template <class Sys>
  std::error_code acquire(Sys& sys, detail::pipe& p, const char*& op) noexcept {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (idle_count_ > 0) {
        p = std::move(idle_[--idle_count_]);
        ++counters_.in_use;
        ++counters_.reused;
        return {};
      }
      if (counters_.in_use >= config_.max_pipes) {
        ++counters_.exhausted;
        op = "pipe2";
        return std::make_error_code(std::errc::too_many_files_open);
      }
      ++counters_.in_use;  // reserve the slot; the pipe is made without the lock
    }
    auto ec = detail::make_pipe(sys, config_.pipe_size, p, op);
    std::lock_guard<std::mutex> lock(mu_);
    if (ec) {
      --counters_.in_use;
    } else {
      ++counters_.created;
    }
    return ec;
  }

  /// clear closes the idle pipes (to give back their fds and pipe pages, or before a fork).
  /// Pipes in use are not affected.
  void clear() noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    while (idle_count_ > 0) idle_[--idle_count_] = detail::pipe{};
  }

  /// record adds what a finished copy moved to the byte counters.
  void record(std::uint64_t spliced, std::uint64_t copied) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    counters_.spliced_bytes += spliced;
    counters_.copied_bytes += copied;
  }

  /// release takes back a pipe from acquire. `empty` says whether it holds no bytes; only an empty
  /// pipe is kept for reuse.
  void release(detail::pipe p, bool empty) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    --counters_.in_use;
    if (!empty) {
      ++counters_.discarded;
    } else if (idle_count_ < idle_cap_) {
      idle_[idle_count_++] = std::move(p);
    }
    // p, if not kept, closes here; close is cheap and never blocks for a pipe.
  }

 private:
  const config config_;
  mutable std::mutex mu_;
  std::unique_ptr<detail::pipe[]> idle_;  // idle_[0, idle_count_) are empty pipes ready for reuse
  const std::size_t idle_cap_;
  std::size_t idle_count_ = 0;
  counters counters_;
};

}  // namespace splice_lib

#endif  // SPLICE_PIPE_POOL_HPP_
