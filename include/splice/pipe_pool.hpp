// SPDX-License-Identifier: MIT
#ifndef SPLICE_PIPE_POOL_HPP_
#define SPLICE_PIPE_POOL_HPP_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <system_error>
#include <utility>

#include "error.hpp"
#include "fd.hpp"
#include "system_calls.hpp"

namespace splice_lib {

/// pipe is both ends of a kernel pipe, owned, and how many bytes it can hold.
struct pipe {
  unique_fd r, w;
  std::size_t capacity = 0;

  explicit operator bool() const noexcept { return bool(r); }
};

class pipe_pool;

/// pipe_lease is a pipe lent by a pipe_pool, with the count of the bytes it holds: bytes taken from
/// a copy's src and not yet written to its dst. Destroying or resetting the lease gives the pipe
/// back: an empty one for reuse, one that still holds bytes to be closed, since they belong to a
/// stream that has ended. Move-only; not thread-safe.
class pipe_lease {
 public:
  pipe_lease() noexcept = default;
  pipe_lease(pipe_lease&& o) noexcept
      : pool_(std::exchange(o.pool_, nullptr)), p_(std::move(o.p_)), held_(std::exchange(o.held_, 0)) {}
  pipe_lease& operator=(pipe_lease&& o) noexcept {
    if (this != &o) {
      reset();
      pool_ = std::exchange(o.pool_, nullptr);
      p_ = std::move(o.p_);
      held_ = std::exchange(o.held_, 0);
    }
    return *this;
  }
  ~pipe_lease() { reset(); }

  explicit operator bool() const noexcept { return bool(p_); }
  int read_end() const noexcept { return p_.r.get(); }
  int write_end() const noexcept { return p_.w.get(); }
  /// Returns how many bytes the pipe can hold, as the kernel granted it.
  std::size_t capacity() const noexcept { return p_.capacity; }
  /// Returns the bytes in the pipe.
  std::size_t held() const noexcept { return held_; }
  /// Records n bytes spliced into the pipe.
  void filled(std::size_t n) noexcept { held_ += n; }
  /// Records n bytes spliced or read out of it.
  void emptied(std::size_t n) noexcept { held_ -= n; }
  /// Gives the pipe back to its pool (see the class comment); the lease is then empty.
  inline void reset() noexcept;

 private:
  friend class pipe_pool;
  pipe_lease(pipe_pool* pool, pipe p) noexcept : pool_(pool), p_(std::move(p)) {}
  pipe_pool* pool_ = nullptr;
  pipe p_;
  std::size_t held_ = 0;
};

/// pipe_pool keeps empty pipes for reuse, so that a copy does not pay for pipe2, F_SETPIPE_SZ and
/// two closes. Thread-safe. Bounded: at most `max_pipes` pipes exist at once, in use or idle, at
/// most `max_idle` wait idle, and their capacity stays within `max_bytes`; a copy that finds the
/// pool exhausted takes the user-space path and asks again later. Only empty pipes come back: a
/// pipe that still holds bytes is closed, since they belong to a stream that has ended.
///
/// The per-user pipe budget: an unprivileged user's pipes may hold fs.pipe-user-pages-soft pages in
/// all (64 MiB by default), counted by capacity, idle pipes included; past it the kernel makes new
/// pipes of two pages and refuses F_SETPIPE_SZ with EPERM. So an unprivileged process's pool keeps
/// within that budget on its own, asking for smaller pipes as it fills up (a new pipe takes at most
/// a 32nd of what is left), and a pipe the kernel
/// grants below `min_pipe_size` (the user's other processes have spent the budget) is closed: the
/// copy runs in user space, which costs less CPU than a two-page pipe, and the pool makes no new
/// pipe for a second.
class pipe_pool {
 public:
  using lease = pipe_lease;
  struct config {
    /// Capacity asked of each new pipe with F_SETPIPE_SZ; the kernel may grant less.
    std::size_t pipe_size = std::size_t(1) << 20;
    /// Idle pipes kept for reuse; 0 makes every copy use a fresh pipe.
    std::size_t max_idle = 16;
    /// Pipes in existence at once, in use plus idle.
    std::size_t max_pipes = 1024;
    /// Capacity the pool's pipes may hold at once, in use plus idle; 0: the per-user pipe budget
    /// for an unprivileged process (fs.pipe-user-pages-soft), no bound for a privileged one (root,
    /// CAP_SYS_RESOURCE), which the kernel exempts. Under any bound, a new pipe gets at most a 32nd
    /// of what is left of it (halving pipe_size, down to min_pipe_size), so that many copies fit.
    std::size_t max_bytes = 0;
    /// The smallest pipe worth splicing through (see the class comment).
    std::size_t min_pipe_size = std::size_t(64) << 10;
  };

  /// What the pool has done so far.
  struct counters {
    std::size_t in_use = 0;     ///< pipes held by copies now
    std::size_t idle = 0;       ///< pipes waiting for reuse now
    std::uint64_t created = 0;  ///< pipes made
    std::uint64_t reused = 0;   ///< acquires served by an idle pipe
    std::uint64_t discarded = 0;   ///< pipes closed because they still held bytes
    std::uint64_t exhausted = 0;   ///< acquires refused: max_pipes in existence, or max_bytes held
    std::uint64_t shrunk = 0;      ///< pipes made smaller than pipe_size to stay within max_bytes
    std::uint64_t undersized = 0;  ///< pipes closed at once: the kernel granted less than min_pipe_size
    std::size_t bytes_held = 0;    ///< capacity of the pipes in existence now
    std::uint64_t spliced_bytes = 0;  ///< bytes that copies using this pool moved with splice
    std::uint64_t copied_bytes = 0;   ///< bytes that they moved through user space
  };

  pipe_pool() noexcept : pipe_pool(config{}) {}
  /// Makes an empty pool. The idle slots are allocated here, so that release() never allocates;
  /// if even that fails, the pool keeps no idle pipes.
  explicit pipe_pool(const config& c) noexcept
      : config_(c), idle_(new (std::nothrow) pipe[c.max_idle]), idle_cap_(idle_ ? c.max_idle : 0),
        max_bytes_(c.max_bytes ? c.max_bytes : detail::pipe_budget()) {}
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
  /// Returns the capacity the pool's pipes may hold at once (SIZE_MAX: no bound).
  std::size_t max_bytes() const noexcept { return max_bytes_; }

  /// Returns a snapshot of the counters.
  counters stats() const noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    counters c = counters_;
    c.idle = idle_count_;
    c.bytes_held = held_;
    return c;
  }

  /// acquire lends an empty pipe: an idle one, or a new one when fewer than max_pipes exist and
  /// the budget has room. Fails with errc::pool_exhausted (op "pool") when the pool is exhausted,
  /// or with the error of pipe creation (op "pipe2", "pipe" or "fcntl"); `out` is then empty.
  template <class Sys>
  std::error_code acquire(Sys& sys, pipe_lease& out, const char*& op) noexcept {
    out.reset();
    pipe p;
    const auto refuse = [&] {
      ++counters_.exhausted;
      op = "pool";
      return make_error_code(errc::pool_exhausted);
    };
    std::size_t size = config_.pipe_size;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (idle_count_ > 0) {
        out = pipe_lease(this, std::move(idle_[--idle_count_]));
        ++counters_.in_use;
        ++counters_.reused;
        return {};
      }
      if (counters_.in_use >= config_.max_pipes) return refuse();
      if (detail::clock_type::now() < retry_after_) return refuse();
      // A new pipe takes at most a 32nd of the capacity left, so that pipes get smaller as the pool
      // fills up and more copies splice: in a 64 MiB budget, 33 pipes of 1 MiB, 31 each of 512,
      // 256 and 128 KiB, then 62 of 64 KiB, 188 in all, where pipes of 1 MiB would stop at 64.
      // Never below min_pipe_size (nor a page).
      const std::size_t left = held_ < max_bytes_ ? max_bytes_ - held_ : 0;
      const std::size_t smallest = std::max<std::size_t>(config_.min_pipe_size, 4096);
      while (size / 2 >= smallest && size > left / budget_share) size /= 2;
      if (size > left) return refuse();
      ++counters_.in_use;  // reserve the slot and the bytes; the pipe is made without the lock
      held_ += size;
    }
    int fds[2];
    auto ec = detail::make_pipe(sys, size, fds, p.capacity, op);
    if (!ec) p.r.reset(fds[0]), p.w.reset(fds[1]);
    std::lock_guard<std::mutex> lock(mu_);
    held_ -= size;
    if (!ec && p.capacity < std::min(size, config_.min_pipe_size)) {
      ++counters_.undersized;
      retry_after_ = detail::clock_type::now() + std::chrono::seconds(1);
      p = pipe{};
      --counters_.in_use;
      return refuse();
    }
    if (ec) {
      --counters_.in_use;
      return ec;
    }
    if (held_ + p.capacity > max_bytes_) {  // the kernel rounds up to a power of two pages
      p = pipe{};
      --counters_.in_use;
      return refuse();
    }
    held_ += p.capacity;
    ++counters_.created;
    if (size < config_.pipe_size) ++counters_.shrunk;
    out = pipe_lease(this, std::move(p));
    return {};
  }

  /// clear closes the idle pipes (to give back their fds and pipe pages, or before a fork).
  /// Pipes in use are not affected.
  void clear() noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    while (idle_count_ > 0) {
      held_ -= idle_[--idle_count_].capacity;
      idle_[idle_count_] = pipe{};
    }
  }

  /// record adds what a finished copy moved to the byte counters.
  void record(std::uint64_t spliced, std::uint64_t copied) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    counters_.spliced_bytes += spliced;
    counters_.copied_bytes += copied;
  }

 private:
  friend class pipe_lease;
  // release takes back a leased pipe. `empty` says whether it holds no bytes; only an empty pipe is
  // kept for reuse.
  void release(pipe p, bool empty) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    --counters_.in_use;
    if (!empty) {
      ++counters_.discarded;
    } else if (idle_count_ < idle_cap_) {
      idle_[idle_count_++] = std::move(p);
      return;
    }
    held_ -= p.capacity;
    // p, if not kept, closes here; close is cheap and never blocks for a pipe.
  }

  static constexpr std::size_t budget_share = 32;
  const config config_;
  mutable std::mutex mu_;
  std::unique_ptr<pipe[]> idle_;  // idle_[0, idle_count_) are empty pipes ready for reuse
  const std::size_t idle_cap_;
  const std::size_t max_bytes_;
  std::size_t idle_count_ = 0;
  std::size_t held_ = 0;  // capacity of the pipes in existence
  detail::clock_type::time_point retry_after_{};  // no new pipe before then (after an undersized one)
  counters counters_;
};

inline void pipe_lease::reset() noexcept {
  if (pool_) pool_->release(std::move(p_), held_ == 0);
  pool_ = nullptr;
  p_ = pipe{};
  held_ = 0;
}

}  // namespace splice_lib

#endif  // SPLICE_PIPE_POOL_HPP_
