// SPDX-License-Identifier: MIT
#ifndef SPLICE_DRAIN_HPP_
#define SPLICE_DRAIN_HPP_

#include <atomic>
#include <chrono>
#include <mutex>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include "fd.hpp"

namespace splice_lib {

/// drain is a graceful stop: a request, from any thread, that the relays watching it finish what is
/// in flight and are cut at a deadline. proxy() watches it through proxy_options::drain (its fd()
/// is in proxy()'s poll), async_proxy the same way (it subscribes), and an event loop polls fd() and
/// calls duplex::drain() for each of its connections. A relay that ends by itself before the
/// deadline ends as it would have; one still running at the deadline ends with
/// std::errc::timed_out from "drain". A later request may bring the deadline nearer (a second
/// signal: now), never push it back; nearer_fd() wakes a poll loop for it. Thread-safe.
class drain {
 public:
  using clock = std::chrono::steady_clock;

  /// waiter is how an asynchronous operation learns of the request: fn(w) runs on the requesting
  /// thread, under the drain's lock, for each subscribed waiter; it must only hand the news on (post
  /// it to the operation's strand) and must not subscribe or unsubscribe.
  struct waiter {
    void (*fn)(waiter*) = nullptr;
    waiter* next = nullptr;
  };

  /// Makes a drain not yet requested. fd() and nearer_fd() are read ends of pipes of its own; if no
  /// pipe can be had, they are -1 and requested() and deadline() still work.
  drain() noexcept {
    open(r_, w_);
    open(nearer_r_, nearer_w_);
  }
  drain(const drain&) = delete;
  drain& operator=(const drain&) = delete;

  /// Asks the relays to finish by cut_at (any thread; a second call only brings it nearer).
  void request(clock::time_point cut_at) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    const auto was = deadline_.load();
    if (cut_at >= was) return;
    deadline_ = cut_at;
    // fd() readable from the first request on, nearer_fd() from the first that brought it nearer.
    if (was == clock::time_point::max()) wake(w_);
    else if (!std::exchange(nearer_, true)) wake(nearer_w_);
    for (waiter* w = waiters_; w; w = w->next) w->fn(w);
  }
  /// Returns whether a request came.
  bool requested() const noexcept { return deadline_.load() != clock::time_point::max(); }
  /// Returns the deadline, time_point::max() before any request.
  clock::time_point deadline() const noexcept { return deadline_.load(); }
  /// Returns an fd that is readable once a request has come, for a poll or epoll loop (-1: none).
  int fd() const noexcept { return r_.get(); }
  /// Returns an fd that is readable once a later request has brought the deadline nearer (-1:
  /// none): a loop that sleeps until the first deadline polls it, and reads deadline() again when
  /// it wakes. Later requests still change deadline(), without a wake-up of their own.
  int nearer_fd() const noexcept { return nearer_r_.get(); }

  /// subscribe has w's fn called on every request from now on (at once if one came).
  void subscribe(waiter& w) const noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    w.next = waiters_;
    waiters_ = &w;
    if (requested()) w.fn(&w);
  }
  /// unsubscribe: no call of w's fn runs or starts after it returns.
  void unsubscribe(waiter& w) const noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    for (waiter** p = &waiters_; *p; p = &(*p)->next)
      if (*p == &w) {
        *p = w.next;
        break;
      }
  }

 private:
  // open makes a non-blocking close-on-exec pipe into r and w, or leaves both empty.
  static void open(unique_fd& r, unique_fd& w) noexcept {
    int p[2];
    if (::pipe(p) != 0) return;
    r.reset(p[0]), w.reset(p[1]);
    for (int e : p) ::fcntl(e, F_SETFD, FD_CLOEXEC), ::fcntl(e, F_SETFL, O_NONBLOCK);
  }

  // wake makes the pipe behind w readable, for good.
  static void wake(const unique_fd& w) noexcept {
    const char one = 1;
    if (w) {
      [[maybe_unused]] const ssize_t n = ::write(w.get(), &one, 1);
    }
  }

  mutable std::mutex mu_;
  std::atomic<clock::time_point> deadline_{clock::time_point::max()};
  unique_fd r_, w_, nearer_r_, nearer_w_;
  bool nearer_ = false;  // nearer_fd() made readable (under mu_)
  mutable waiter* waiters_ = nullptr;  // subscribing is no change of the request: const
};

}  // namespace splice_lib

#endif  // SPLICE_DRAIN_HPP_
