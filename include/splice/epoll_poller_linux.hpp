// SPDX-License-Identifier: MIT
#ifndef SPLICE_EPOLL_POLLER_LINUX_HPP_
#define SPLICE_EPOLL_POLLER_LINUX_HPP_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <system_error>
#include <vector>

#include <sys/epoll.h>

#include "fd.hpp"
#include "detail/sys.hpp"

namespace splice_lib {

/// epoll_poller waits with one epoll instance for any number of fds, one system call per wait once
/// an fd is known. Each fd is registered on its first wait, edge-triggered for both directions, and
/// stays registered; readiness that arrives for an fd other than the one waited on is remembered for
/// that fd's next wait. Edge triggering is sound because a copier waits only after the fd said
/// EAGAIN, so every later change of readiness is an edge.
///
/// Call forget(fd) before closing a registered fd: its number may come back for another file.
/// A timeout applies to each wait and a deadline to all of them, as with poll_poller.
/// Not thread-safe: one thread at a time.
class epoll_poller {
 public:
  /// Waits without a deadline; a negative timeout, or one too long to add to the clock, means the same.
  explicit epoll_poller(std::chrono::milliseconds timeout = std::chrono::milliseconds(-1)) noexcept
      : ep_(::epoll_create1(EPOLL_CLOEXEC)), timeout_(timeout) {}
  /// Gives up on every wait at deadline.
  explicit epoll_poller(std::chrono::steady_clock::time_point deadline) noexcept
      : ep_(::epoll_create1(EPOLL_CLOEXEC)), deadline_(deadline) {}

  /// Returns the error of epoll_create1, if it failed; every wait then fails with it too.
  std::error_code status() const noexcept { return ep_ ? std::error_code{} : create_error_; }

  /// Waits until fd is readable.
  std::error_code wait_readable(int fd) noexcept { return fd < 0 ? bad_fd() : wait(fd, EPOLLIN, -1, 0); }
  /// Waits until fd is writable.
  std::error_code wait_writable(int fd) noexcept { return fd < 0 ? bad_fd() : wait(fd, EPOLLOUT, -1, 0); }
  /// Waits until r is readable or w writable.
  std::error_code wait_either(int r, int w) noexcept { return r < 0 || w < 0 ? bad_fd() : wait(r, EPOLLIN, w, EPOLLOUT); }
  /// Sleeps until t (remembering readiness that comes meanwhile), or until the deadline.
  std::error_code wait_until(std::chrono::steady_clock::time_point t) noexcept {
    if (!ep_) return create_error_;
    if (t >= deadline_) return wait(-1, 0, -1, 0);
    int n = 0;
    while (detail::clock_type::now() < t)
      if (auto ec = collect(detail::ms_until(t), n)) return ec;
    return {};
  }

  /// Removes fd from the epoll set; call it before closing fd.
  void forget(int fd) noexcept {
    if (fd >= 0 && std::size_t(fd) < state_.size() && (state_[std::size_t(fd)] & registered)) {
      ::epoll_ctl(ep_.get(), EPOLL_CTL_DEL, fd, nullptr);
      state_[std::size_t(fd)] = 0;
    }
  }

 private:
  static constexpr std::uint32_t registered = 1u << 31;
  static constexpr std::uint32_t hangup = EPOLLERR | EPOLLHUP;  // ready for both directions

  // wait waits until fd has want, or fd2 has want2 (fd2 -1: none; both -1: until the deadline).
  std::error_code wait(int fd, std::uint32_t want, int fd2, std::uint32_t want2) noexcept {
    if (!ep_) return create_error_;
    for (int f : {fd, fd2})
      if (f >= 0)
        if (auto ec = enroll(f)) return ec;
    const auto until = std::min(deadline_, detail::deadline_after(timeout_));
    for (;;) {
      if (consume(fd, want) || consume(fd2, want2)) return {};
      int n = 0;
      if (auto ec = collect(detail::ms_until(until), n)) return ec;
      if (n == 0 && detail::clock_type::now() >= until) return std::make_error_code(std::errc::timed_out);
    }
  }

  static std::error_code bad_fd() noexcept { return std::make_error_code(std::errc::bad_file_descriptor); }

  // consume takes fd's readiness for want, if it has come: the next wait for it needs a new edge.
  bool consume(int fd, std::uint32_t want) noexcept {
    if (fd < 0) return false;
    std::uint32_t& s = state_[std::size_t(fd)];
    if (!(s & (want | hangup))) return false;
    s &= ~want;
    return true;
  }

  // collect waits up to ms for events and records them per fd; n is how many came.
  std::error_code collect(int ms, int& n) noexcept {
    epoll_event ev[64];
    n = ::epoll_wait(ep_.get(), ev, 64, ms);
    if (n < 0 && errno != EINTR) return detail::last_error();
    for (int i = 0; i < n; ++i) {
      const int other = ev[i].data.fd;
      if (other >= 0 && std::size_t(other) < state_.size()) state_[std::size_t(other)] |= ev[i].events;
    }
    return {};
  }

  // enroll registers fd once, for both directions, edge-triggered.
  std::error_code enroll(int fd) noexcept {
    if (std::size_t(fd) >= state_.size()) {
      try {
        state_.resize(std::size_t(fd) + 1);
      } catch (...) {
        return std::make_error_code(std::errc::not_enough_memory);
      }
    }
    if (state_[std::size_t(fd)] & registered) return {};
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    if (::epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return detail::last_error();
    // EPOLL_CTL_ADD queues the readiness the fd has now, so no edge before this point is lost.
    state_[std::size_t(fd)] = registered;
    return {};
  }

  unique_fd ep_;
  std::error_code create_error_ = ep_ ? std::error_code{} : detail::last_error();
  std::chrono::milliseconds timeout_{-1};
  std::chrono::steady_clock::time_point deadline_ = detail::no_deadline;
  std::vector<std::uint32_t> state_;  // per fd: registered, and readiness not yet consumed
};

}  // namespace splice_lib

#endif  // SPLICE_EPOLL_POLLER_LINUX_HPP_
