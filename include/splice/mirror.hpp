// SPDX-License-Identifier: MIT
#ifndef SPLICE_MIRROR_HPP_
#define SPLICE_MIRROR_HPP_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include "detail/platform.hpp"
#include "detail/sys.hpp"
#include "detail/tally.hpp"
#include "error.hpp"
#include "fd.hpp"
#include "pipe_pool.hpp"

namespace splice_lib {

/// mirror duplicates one direction of a copy into a second fd (a socket, a pipe, or a file for a
/// capture): attach it with options::mirror (a copier, copy()) or proxy_options::mirror_a_to_b and
/// mirror_b_to_a (a duplex, proxy(), async_proxy). It owns that fd and closes it.
///
/// Per route: on the pipe route (relay) each chunk the copy drains into its pipe is tee(2)d into
/// the mirror's own pipe (leased from the pool, SPLICE_F_NONBLOCK) and spliced from there into the
/// mirror fd, so neither copy leaves the kernel. On the user-space route the mirror is written from
/// the copy's buffer. Routes with no pipe or buffer of the copy's own (sendfile, a caller's pipe
/// end, copy_file_range) take the relay when mirrored (plan_for's through_pipe), so every byte
/// the copy takes from src is offered to the mirror, in order.
///
/// It never slows the primary: every call into the mirror fd is non-blocking. What it cannot take
/// at once waits: first in its pipe (at most the pipe's capacity), then, when a tee comes up short
/// or the pipe is already behind, in a user-space backlog of at most config::lag bytes (a chunk the
/// tee could not take reaches dst through the copy's buffer). The bound counts bytes taken from
/// src and not yet written to the mirror fd that are not in its pipe: when one more chunk would
/// take the backlog past lag, the mirror is cut (why() "lag") and closed, so it holds an exact
/// prefix of the stream and it falls at most its pipe's capacity plus lag bytes behind src. Any
/// error on the mirror fd (a refused connection, EPIPE, ECONNRESET, ENOSPC) cuts it the same way
/// and is never the copy's error; SIGPIPE from it is consumed like the copy's own.
///
/// When its direction ends cleanly it is "finishing": it gets what it is owed as its fd takes it,
/// for at most config::linger, then a half-close (SHUT_WR on a socket; a file or pipe is closed);
/// past linger it is cut ("linger"). A direction that fails cuts it ("copy failed"). Bytes its peer
/// sends back are read and discarded until that peer's end of file.
///
/// Drivers: a duplex services its mirrors on each advance() and asks for their fds by ready bits
/// (ready::ab_mirror_in, ab_mirror_out, ba_mirror_in, ba_mirror_out; duplex::mirror_fd()); a
/// mirror waits only after its fd said EAGAIN, so edge-triggered readiness is sound, and it never
/// waits on a file. done() waits for a finishing mirror, wake_at() for its linger. copy() finishes
/// it with poll(2). A bare copier only writes it (pump on each chunk); call service() to read.
/// Not thread-safe: one mirror per direction of one connection, used by that direction's thread.
class mirror {
 public:
  struct config {
    /// Bytes it may owe beyond what its pipe holds before it is cut (see the class comment).
    std::size_t lag = std::size_t(1) << 20;
    /// How long a finishing mirror may take to receive what it is owed.
    std::chrono::milliseconds linger{1000};
    /// Where its pipe comes from; nullptr: pipe_pool::shared().
    pipe_pool* pool = nullptr;
  };
  enum class state { running, finishing, finished, cut };

  /// Mirrors into fd, which it owns from now on.
  explicit mirror(int fd) noexcept : fd_(fd) {}
  mirror(int fd, const config& c) noexcept : fd_(fd), cfg_(c) {}
  mirror(const mirror&) = delete;
  mirror& operator=(const mirror&) = delete;

  /// Returns the mirror fd, or -1 once it is closed.
  int fd() const noexcept { return fd_.get(); }
  /// Returns the bytes written into the mirror fd.
  std::uint64_t bytes() const noexcept { return bytes_; }
  /// Returns the bytes its peer sent back, read and thrown away.
  std::uint64_t discarded() const noexcept { return discarded_; }
  /// Returns the bytes taken from src that the mirror fd has not yet received.
  std::size_t owed() const noexcept { return pipe_.held() + size_; }
  state status() const noexcept { return state_; }
  bool cut() const noexcept { return state_ == state::cut; }
  /// Returns why it was cut: "lag", "linger", "copy failed", "stopped", "memory", or the failing
  /// call ("send", "splice", "recv", ...) with error(); "" if it was not.
  const char* why() const noexcept { return why_; }
  std::error_code error() const noexcept { return error_; }
  /// Returns what it waits for: 1 its fd readable (replies to discard), 2 writable (bytes owed).
  unsigned waits() const noexcept {
    if (state_ == state::cut || !fd_ || always_ready_) return 0;
    return (socket_ && !peer_done_ && read_blocked_ ? 1u : 0u) | (owed() > 0 && write_blocked_ ? 2u : 0u);
  }
  /// Returns when a finishing mirror is cut if it has not received all (no_deadline otherwise).
  std::chrono::steady_clock::time_point wake_at() const noexcept {
    return state_ == state::finishing ? linger_until_ : detail::no_deadline;
  }
  /// Cuts it now ("stopped") unless it has already finished or been cut.
  void stop() noexcept { cut_off("stopped", {}); }

  /// teeable says whether the next chunk may be tee(2)d from the copy's pipe: it runs, its fd takes
  /// splice, nothing waits in the backlog (bytes must arrive in order), and it has a pipe.
  template <class Sys>
  bool teeable(Sys& sys) noexcept {
    start(sys);
    if (state_ != state::running || !splices_ || size_ > 0) return false;
    const char* op = "";
    return pipe_ || !cfg_.pool->acquire(sys, pipe_, op);
  }

  /// tee duplicates the n bytes of the pipe end `from` (the copy's pipe, which holds exactly them)
  /// into its own pipe and returns how many it took; the caller feeds the rest. Invariant: teeable.
  /// Its pipe takes at most its capacity in bytes: a slot of a pipe can hold more than a page (a
  /// socket's large fragments), so the kernel's own limit (slots) would not bound it.
  template <class Sys>
  std::size_t tee(Sys& sys, int from, std::size_t n) noexcept {
    const std::size_t room = pipe_.capacity() > pipe_.held() ? pipe_.capacity() - pipe_.held() : 0;
    const ssize_t k = room == 0 ? (errno = EAGAIN, -1) : detail::tee_copy(sys, from, pipe_.write_end(), std::min(n, room));
    if (k < 0 && !detail::would_block(errno)) splices_ = false;  // feed it from user space from now on
    if (k > 0) pipe_.filled(std::size_t(k));
    pump(sys);
    return k > 0 ? std::size_t(k) : 0;
  }

  /// feed takes the n bytes at p (the copy's buffer), after all it is owed: written at once where
  /// the fd takes them, else kept in the backlog; past the bound it is cut.
  template <class Sys>
  void feed(Sys& sys, const char* p, std::size_t n) noexcept {
    start(sys);
    if (state_ != state::running) return;
    pump(sys);
    while (n > 0 && owed() == 0 && !write_blocked_ && state_ == state::running) {
      const ssize_t w = write(sys, p, n);
      if (w <= 0) break;
      p += w, n -= std::size_t(w);
    }
    if (n == 0 || state_ != state::running) return;
    if (n > cfg_.lag - size_) return cut_off("lag", {});
    if (!ring_ && !(ring_.reset(new (std::nothrow) char[cfg_.lag]), ring_)) return cut_off("memory", {});
    const std::size_t tail = (head_ + size_) % cfg_.lag, first = std::min(n, cfg_.lag - tail);
    std::memcpy(ring_.get() + tail, p, first);
    std::memcpy(ring_.get(), p + first, n - first);
    size_ += n;
  }

  /// service is a driver's turn: what came (in: readable, out: writable) clears its wait; it
  /// discards what its peer sent, writes what it owes, and settles a finishing mirror.
  template <class Sys>
  void service(Sys& sys, bool came_in, bool came_out) noexcept {
    start(sys);
    read_blocked_ &= !came_in, write_blocked_ &= !came_out;
    if (state_ == state::cut || !fd_) return;
    discard(sys);
    pump(sys);
    if (state_ != state::finishing) return;
    if (owed() == 0) return half_close(sys);
    if (sys.now() >= linger_until_) cut_off("linger", {});
  }

  /// end_of_stream: its direction has ended, cleanly (clean) or not; see the class comment.
  template <class Sys>
  void end_of_stream(Sys& sys, bool clean) noexcept {
    if (state_ != state::running) return;
    if (!clean) return cut_off("copy failed", {});
    state_ = state::finishing;
    linger_until_ = detail::deadline_after(cfg_.linger, sys.now());
    service(sys, false, false);
  }

  /// finish_blocking waits, with poll(2), until a finishing mirror has finished or is cut (copy()).
  template <class Sys>
  void finish_blocking(Sys& sys) noexcept {
    while (state_ == state::finishing) {
      pollfd p{fd(), short((waits() & 1 ? POLLIN : 0) | (waits() & 2 ? POLLOUT : 0)), 0};
      if (detail::retry([&] { return sys.poll(&p, 1, detail::ms_until(linger_until_, sys.now())); }) < 0)
        return cut_off("poll", detail::last_error());
      service(sys, p.revents & (POLLIN | POLLHUP | POLLERR), p.revents & (POLLOUT | POLLHUP | POLLERR));
    }
  }

  /// take_raised says, once, whether a call into the mirror fd may have raised SIGPIPE.
  bool take_raised() noexcept { return std::exchange(raised_, false); }

 private:
  // start learns the fd once: its kind, and makes it non-blocking. A failure cuts the mirror.
  template <class Sys>
  void start(Sys& sys) noexcept {
    if (std::exchange(started_, true) || state_ == state::cut) return;
    if (!cfg_.pool) cfg_.pool = &pipe_pool::shared();
    detail::end e;
    const char* op = "";
    if (auto ec = detail::inspect(sys, fd(), e, op)) return cut_off(op, ec);
    if (!e.writable()) return cut_off("fd", make_error_code(errc::not_writable));
    socket_ = e.socket, always_ready_ = e.always_ready;
    splices_ = detail::can_splice && e.splices_in();
    if (!e.nonblocking && !e.always_ready && detail::retry([&] { return sys.fcntl(fd(), F_SETFL, e.flags | O_NONBLOCK); }) < 0)
      cut_off("fcntl", detail::last_error());
  }

  // pump writes what is owed, pipe first, then the backlog, until its fd says EAGAIN. An empty
  // pipe goes back to the pool, so an idle mirror holds none.
  template <class Sys>
  void pump(Sys& sys) noexcept {
    while (pipe_.held() > 0 && !write_blocked_ && state_ != state::cut) {
      const std::size_t asked = pipe_.held();
      const ssize_t n = detail::splice_move(sys, pipe_.read_end(), fd(), asked);
      if (!wrote(n, "splice", true)) break;
      pipe_.emptied(std::size_t(n));
      raised_ |= socket_ && std::size_t(n) < asked;  // a short splice may have raised for the rest
    }
    if (pipe_ && pipe_.held() == 0) pipe_.reset();
    while (size_ > 0 && pipe_.held() == 0 && !write_blocked_ && state_ != state::cut) {
      const ssize_t n = write(sys, ring_.get() + head_, std::min(size_, cfg_.lag - head_));
      if (n <= 0) break;
      head_ = (head_ + std::size_t(n)) % cfg_.lag, size_ -= std::size_t(n);
    }
  }

  // write sends n bytes at p into the fd (send(MSG_NOSIGNAL) to a socket, write(2) elsewhere) and
  // returns what it took; 0 on EAGAIN or once cut.
  template <class Sys>
  ssize_t write(Sys& sys, const char* p, std::size_t n) noexcept {
    const ssize_t w = detail::retry([&] { return socket_ ? sys.send(fd(), p, n, MSG_NOSIGNAL) : sys.write(fd(), p, n); });
    return wrote(w, socket_ ? "send" : "write", !socket_) ? w : 0;
  }

  // wrote reads what a call into the fd returned: bytes (counted), EAGAIN (waits), or a failure
  // (cuts). Returns whether bytes moved.
  bool wrote(ssize_t n, const char* op, bool raises) noexcept {
    if (n > 0) bytes_ += std::uint64_t(n);
    const int err = n > 0 ? 0 : n == 0 ? EIO : errno;
    if (n < 0 && detail::would_block(err)) write_blocked_ = true;
    else if (n <= 0) raised_ |= raises && err == EPIPE, cut_off(op, {err, std::system_category()});
    return n > 0;
  }

  // discard reads what the peer sent until EAGAIN or its end of file, and throws it away.
  template <class Sys>
  void discard(Sys& sys) noexcept {
    char scrap[4096];
    while (socket_ && !peer_done_ && !read_blocked_ && state_ != state::cut) {
      const ssize_t n = detail::retry([&] { return sys.recv(fd(), scrap, sizeof scrap, 0); });
      if (n > 0) discarded_ += std::uint64_t(n);
      else if (n == 0) peer_done_ = true;
      else if (detail::would_block(errno)) read_blocked_ = true;
      else cut_off("recv", detail::last_error());
    }
  }

  // half_close ends a mirror that received all: SHUT_WR on a socket, which stays open to discard
  // replies (closing it with replies unread would send a reset); anything else is closed.
  template <class Sys>
  void half_close(Sys& sys) noexcept {
    state_ = state::finished;
    if (socket_) sys.shutdown(fd(), SHUT_WR);
    else fd_.reset();
  }

  // cut_off ends a running or finishing mirror: what it was owed is dropped, its fd closed.
  void cut_off(const char* why, std::error_code ec) noexcept {
    if (state_ == state::cut || state_ == state::finished) return;
    state_ = state::cut, why_ = why, error_ = ec;
    detail::add_count(detail::this_shard(), detail::mirrors_cut, 1);  // metrics: splice_mirrors_cut_total
    pipe_.reset();
    ring_.reset();
    size_ = 0;
    fd_.reset();
  }

  unique_fd fd_;
  config cfg_;
  pipe_lease pipe_;              // bytes teed and not yet spliced into the fd
  std::unique_ptr<char[]> ring_;  // the backlog: cfg_.lag bytes, [head_, head_ + size_) in use
  std::size_t head_ = 0, size_ = 0;
  std::uint64_t bytes_ = 0, discarded_ = 0;
  state state_ = state::running;
  const char* why_ = "";
  std::error_code error_;
  std::chrono::steady_clock::time_point linger_until_ = detail::no_deadline;
  bool started_ = false, socket_ = false, always_ready_ = false, splices_ = false;
  bool read_blocked_ = false, write_blocked_ = false, peer_done_ = false, raised_ = false;
};

}  // namespace splice_lib

#endif  // SPLICE_MIRROR_HPP_
