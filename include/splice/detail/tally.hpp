// SPDX-License-Identifier: MIT
// The process-wide counters behind metrics.hpp: one shard of counters per thread, which only that
// thread writes, and a list of the shards, which a reader sums. A thread that exits folds its shard
// into the list's sum of retired shards, so no count is lost with it.
#ifndef SPLICE_DETAIL_TALLY_HPP_
#define SPLICE_DETAIL_TALLY_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>

namespace splice_lib::detail {

/// The words of result::fallback (README's list), in slot order; the last one takes any other word.
inline constexpr const char* fallback_words[] = {"option",         "fd pair",     "small writes", "pool",
                                                 "kernel refused", "urgent data", "size 0 file",  "other"};
/// The calls (and words) a copy or a relay ends its error with (result::op), in slot order; the
/// last one takes any other op. "proxy" is absent: that is a direction cut by its sibling's error.
inline constexpr const char* error_ops[] = {
    "splice", "read",  "send", "write", "sendfile", "copy_file_range", "poll",  "fcntl", "fstat",
    "getsockopt", "pipe2", "pipe", "pool", "buffer", "options", "fd", "idle", "drain",
    "cancel", "close", "async_wait", "other"};
inline constexpr std::size_t fallback_count = sizeof fallback_words / sizeof *fallback_words;
inline constexpr std::size_t error_op_count = sizeof error_ops / sizeof *error_ops;

/// The slots of a shard. user_bytes + i counts fallback_words[i], errors + i counts error_ops[i].
enum slot : std::size_t {
  opened,         // relays (two-way duplexes) made
  closed,         // relays ended or destroyed
  up_bytes,       // bytes into dst of a copy a to b, or of a one-way copy
  down_bytes,     // bytes into dst of a copy b to a
  spliced_bytes,  // of those, bytes a kernel route moved
  rate_waits,     // advance() calls that returned step::later
  mirrors_cut,    // mirrors cut off (the mirror code calls metrics::mirror_cut)
  user_bytes,
  errors = user_bytes + fallback_count,
  slot_count = errors + error_op_count
};

/// word_slot returns the index of word in words[0, n), or n - 1 ("other") when it is none of them.
inline std::size_t word_slot(const char* word, const char* const* words, std::size_t n) noexcept {
  for (std::size_t i = 0; i + 1 < n; ++i)
    if (std::strcmp(word, words[i]) == 0) return i;
  return n - 1;
}

/// shard is one thread's counters. Invariant: only its thread writes them, so an add is a relaxed
/// load and store (no locked instruction), and a reader on another thread sees each value whole.
/// Aligned to a cache line, so that two threads' shards never share one.
struct alignas(64) shard {
  std::atomic<std::uint64_t> v[slot_count] = {};
  shard* next = nullptr;
  shard* prev = nullptr;

  /// add adds n to slot i. Only the owning thread may call it.
  void add(std::size_t i, std::uint64_t n) noexcept {
    v[i].store(v[i].load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

/// tallies is the process-wide list of live shards and the sums of the retired ones. Thread-safe:
/// a mutex guards the list, taken when a thread makes or retires its shard and by each read, never
/// by a count. Never destroyed, so threads that exit during the process's exit stay safe.
class tallies {
 public:
  /// Returns the process's list.
  static tallies& process() noexcept {
    alignas(tallies) static unsigned char storage[sizeof(tallies)];
    static tallies* t = new (storage) tallies();
    return *t;
  }

  /// join puts a thread's new shard on the list.
  void join(shard* s) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    s->next = head_;
    if (head_) head_->prev = s;
    head_ = s;
  }

  /// leave takes a shard off the list and keeps its counts in the retired sums: under the lock, so
  /// a reader sees them in exactly one of the two.
  void leave(shard* s) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::size_t i = 0; i < slot_count; ++i) retired_[i] += s->v[i].load(std::memory_order_relaxed);
    (s->prev ? s->prev->next : head_) = s->next;
    if (s->next) s->next->prev = s->prev;
  }

  /// add_retired counts for a thread whose shard is already gone (a count made by a thread_local
  /// destructor that ran after the shard's own).
  void add_retired(std::size_t i, std::uint64_t n) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    retired_[i] += n;
  }

  /// sum writes the process's total of every slot into out[slot_count].
  void sum(std::uint64_t* out) const noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::size_t i = 0; i < slot_count; ++i) out[i] = retired_[i];
    for (const shard* s = head_; s; s = s->next)
      for (std::size_t i = 0; i < slot_count; ++i) out[i] += s->v[i].load(std::memory_order_relaxed);
  }

 private:
  tallies() noexcept = default;
  mutable std::mutex mu_;
  shard* head_ = nullptr;
  std::uint64_t retired_[slot_count] = {};
};

/// Set once this thread's shard has been retired (trivially destructible, so valid to the end).
inline thread_local bool shard_retired = false;

/// shard_owner makes a thread's shard on its first count and retires it when the thread exits.
struct shard_owner {
  shard s;
  shard_owner() noexcept { tallies::process().join(&s); }
  ~shard_owner() {
    tallies::process().leave(&s);
    shard_retired = true;
  }
  shard_owner(const shard_owner&) = delete;
  shard_owner& operator=(const shard_owner&) = delete;
};

/// this_shard returns the calling thread's shard, made on first use; nullptr once it is retired.
inline shard* this_shard() noexcept {
  if (shard_retired) return nullptr;
  thread_local shard_owner mine;
  return &mine.s;
}

/// add_count adds n to slot i of shard s (this_shard()), or to the retired sums when s is nullptr.
inline void add_count(shard* s, std::size_t i, std::uint64_t n) noexcept {
  if (s) s->add(i, n);
  else tallies::process().add_retired(i, n);
}

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_TALLY_HPP_
