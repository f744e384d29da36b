// SPDX-License-Identifier: MIT
#ifndef SPLICE_RATE_LIMIT_HPP_
#define SPLICE_RATE_LIMIT_HPP_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace splice_lib {

/// rate_limit is a token bucket of bytes: it fills at `rate` bytes per second up to `burst`, and a
/// copy that has it in options::rate asks it how much it may move before each chunk. The chunk is
/// then sized by the tokens (a spliced chunk stays spliced), and a copy that finds none says
/// step::later: come back at copier::wake_at(), never a busy wait (as nginx's limit_rate arms a
/// timer for when the rest may go).
///
/// One bucket may serve one direction of one copy, or any number of copies on any number of
/// threads: a short lock guards it. Shared, it divides what it has fairly: while n copies have data
/// waiting (they join() when they first ask and leave() when src runs dry or they end), none is
/// granted more than the burst divided by n at once, so every one of them gets a turn at each
/// refill. The time is the caller's (the copier reads it through its system-call seam, so a test
/// drives the clock). Thread-safe.
class rate_limit {
 public:
  using clock = std::chrono::steady_clock;

  /// What take() grants: bytes that may move now, or, when none, the time to ask again.
  struct grant {
    std::size_t bytes = 0;
    clock::time_point retry_at{};
  };

  /// Fills at bytes_per_second up to burst bytes (at least 1 each); full at first. A copy that uses
  /// it also draws on `outer` (a bucket shared by many copies, say), if given: it gets what both
  /// grant.
  rate_limit(std::uint64_t bytes_per_second, std::uint64_t burst, rate_limit* outer = nullptr) noexcept
      : rate_(std::max<std::uint64_t>(bytes_per_second, 1)), burst_(std::max<std::uint64_t>(burst, 1)),
        outer_(outer), tokens_(double(burst_)) {}
  rate_limit(const rate_limit&) = delete;
  rate_limit& operator=(const rate_limit&) = delete;

  std::uint64_t rate() const noexcept { return rate_; }
  std::uint64_t burst() const noexcept { return burst_; }
  rate_limit* outer() const noexcept { return outer_; }

  /// take grants at most want bytes at `now`: what the bucket holds, up to the fair share. With
  /// nothing to grant it says when quantum() bytes (or want, if fewer) will be there.
  grant take(std::size_t want, clock::time_point now) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    refill(now);
    const std::uint64_t share = std::max<std::uint64_t>(burst_ / std::max<unsigned>(waiting_, 1), quantum_floor);
    const std::uint64_t have = std::uint64_t(tokens_), enough = std::min<std::uint64_t>({want, quantum(), share});
    if (have >= enough && have > 0) {
      const std::size_t n = std::size_t(std::min<std::uint64_t>({want, have, share}));
      tokens_ -= double(n);
      return {n, {}};
    }
    ++waits_;
    const double missing = double(enough) - tokens_;
    return {0, now + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(missing / double(rate_)))};
  }

  /// give_back returns tokens a copy was granted and did not use (a splice moved fewer bytes).
  void give_back(std::size_t n) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    tokens_ = std::min(tokens_ + double(n), double(burst_));
  }

  /// join and leave count the copies that have data waiting, for the fair share.
  void join() noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    ++waiting_;
  }
  void leave() noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    if (waiting_ > 0) --waiting_;
  }

  /// Returns how many copies have data waiting (join() less leave()).
  unsigned waiting() const noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_;
  }

  /// Returns how many times take() had nothing to grant.
  std::uint64_t waits() const noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    return waits_;
  }

  /// quantum is the least a waiting copy is woken for: a hundredth of a second's bytes, at least
  /// 16 KiB and at most the burst, so a limited copy wakes at most about 100 times a second.
  std::uint64_t quantum() const noexcept { return std::min(std::max(rate_ / 100, quantum_floor), burst_); }

 private:
  static constexpr std::uint64_t quantum_floor = 16 << 10;

  void refill(clock::time_point now) noexcept {
    if (last_ == clock::time_point{}) last_ = now;
    if (now <= last_) return;
    const double add = std::chrono::duration<double>(now - last_).count() * double(rate_);
    tokens_ = std::min(tokens_ + add, double(burst_));
    last_ = now;
  }

  const std::uint64_t rate_, burst_;
  mutable std::mutex mu_;
  rate_limit* const outer_;
  double tokens_;
  clock::time_point last_{};
  unsigned waiting_ = 0;
  std::uint64_t waits_ = 0;
};

namespace detail {
/// metered is one copy's use of a rate_limit (none: every call allows all): what it was granted for
/// the chunk under way, and when to ask again. Drawing on a shared outer bucket, it paces itself at
/// its fair share: after a grant of n bytes while w copies have data waiting, it asks again no
/// sooner than n * w / rate seconds after it was granted (n: the bytes the chunk took). Without that, the copy that was just granted asks first
/// again (its retry time is the earliest), and at a low rate a few copies take every refill while
/// the rest starve (measured: 43 of 50 connections got nothing at 1 MB/s in all).
class metered {
 public:
  explicit metered(rate_limit* limit) noexcept : limit_(limit), outer_(limit ? limit->outer() : nullptr) {}

  /// allow returns how many of want bytes may move now (what the bucket and its outer one both
  /// grant); 0: none until wake_at().
  template <class Sys>
  std::uint64_t allow(std::uint64_t want, Sys& sys) noexcept {
    if (!limit_) return want;
    if (!joined_) limit_->join(), outer_ ? outer_->join() : void(), joined_ = true;
    const auto now = sys.now();
    if (now < not_before_) return granted_ = outer_granted_ = 0, wake_at_ = not_before_, 0;  // its turn has not come
    const auto g = limit_->take(std::size_t(std::min<std::uint64_t>(want, SIZE_MAX)), now);
    granted_ = g.bytes, wake_at_ = g.retry_at, outer_granted_ = 0;
    if (g.bytes == 0 || !outer_) return g.bytes;
    const auto o = outer_->take(g.bytes, now);
    if (o.bytes < g.bytes) limit_->give_back(g.bytes - o.bytes);
    granted_ = outer_granted_ = o.bytes, wake_at_ = o.retry_at, asked_at_ = now;
    return o.bytes;
  }
  /// used gives back what the chunk did not take (n: bytes taken, or none), and leaves the fair
  /// share while src has nothing.
  void used(long long n, bool src_empty) noexcept {
    if (!limit_) return;
    const std::size_t took = n > 0 ? std::size_t(n) : 0;
    if (granted_ > took) limit_->give_back(granted_ - took);
    if (outer_granted_ > took) outer_->give_back(outer_granted_ - took);
    if (const unsigned w = outer_granted_ && took ? outer_->waiting() : 0; w > 1) {  // the fair share's pace
      const auto turn = std::chrono::duration_cast<rate_limit::clock::duration>(
          std::chrono::duration<double>(double(took) * double(w) / double(outer_->rate())));
      // From the turn before, when it came on time; a copy that asked late (a loop's wake-up
      // rounded to a millisecond) makes up at most one turn, so the total keeps the rate.
      not_before_ = std::max(not_before_, asked_at_ - turn) + turn;
    }
    granted_ = outer_granted_ = 0;
    if (src_empty) end();
  }
  void end() noexcept {
    if (limit_ && joined_) limit_->leave(), outer_ ? outer_->leave() : void(), joined_ = false;
  }
  rate_limit::clock::time_point wake_at() const noexcept { return wake_at_; }

 private:
  rate_limit *limit_, *outer_;
  std::size_t granted_ = 0, outer_granted_ = 0;
  rate_limit::clock::time_point wake_at_{};
  rate_limit::clock::time_point not_before_{};  // its fair share's pace on a shared outer bucket
  rate_limit::clock::time_point asked_at_{};    // when the chunk under way was granted
  bool joined_ = false;
};
}  // namespace detail

}  // namespace splice_lib

#endif  // SPLICE_RATE_LIMIT_HPP_
