// SPDX-License-Identifier: MIT
#ifndef SPLICE_COPIER_HPP_
#define SPLICE_COPIER_HPP_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <system_error>
#include <utility>

#include "detail/platform.hpp"
#include "pipe_pool.hpp"
#include "result.hpp"
#include "sigpipe.hpp"

namespace splice_lib {

/// How a copy moves its bytes. copy(), copier and proxy() check the options before they touch an
/// fd: a zero buffer_size, max_splice or max_advance ends the copy with EINVAL from "options".
struct options {
  /// Moves bytes through a user-space buffer on every route (tests, benchmarks).
  bool userspace = false;
  /// Where pipes come from; nullptr means pipe_pool::shared().
  pipe_pool* pool = nullptr;
  /// Size of the user-space buffer, allocated only when the user-space path runs.
  std::size_t buffer_size = std::size_t(64) << 10;
  /// Most bytes asked of one splice(2), sendfile(2) or copy_file_range(2) call.
  std::size_t max_splice = std::size_t(1) << 20;
  /// Most bytes one advance() delivers before it returns step::again, so that one busy stream
  /// cannot hold an event loop's thread. copy() and proxy() simply call again.
  std::size_t max_advance = std::size_t(1) << 20;
  /// A socket-to-socket copy starts on a pipe, moves to user space after 8 splices in a row that
  /// each took less than small_splice bytes (or less than the pipe holds, if that is smaller): a
  /// slow stream, where a pipe does not pay for itself. It goes back onto a pipe after this many
  /// reads in a row that filled the buffer. 0 never leaves the pipe.
  unsigned splice_after = 2;
  /// The size below which a splice into the pipe counts as small; see splice_after.
  std::size_t small_splice = std::size_t(64) << 10;
  /// Splices out of unix stream sockets too. Off by default: the benchmark measured it no faster
  /// than read(2) (bench/results.md). Splicing into a unix socket is on, as it measured faster.
  bool splice_from_unix = false;
  /// The host ignores SIGPIPE (signal(SIGPIPE, SIG_IGN), as nginx, HAProxy and Go do), so a copy
  /// need not block it around each advance(). Checked once per copy: if SIGPIPE is not ignored
  /// after all, the copy blocks it as usual.
  bool sigpipe_ignored = false;
};

/// What a copier waits for after advance().
enum class step {
  read,    ///< src to become readable
  write,   ///< dst to become writable
  either,  ///< src to become readable or dst writable, whichever comes first: the copier cannot
           ///< tell which one said EAGAIN. A caller that can wait on one fd only may call
           ///< advance() again at once; that call names one fd.
  again,   ///< nothing: more is ready, but this call did its share (options::max_advance). Call
           ///< advance() again after other ready work; never wait on a poller for it.
  done,    ///< nothing: the copy has ended; result() says how
};

namespace detail {
/// Lets copy() drive a copier over blocking fds, which it may: it has nothing else to do meanwhile.
struct blocking_allowed {};
}  // namespace detail

/// copier moves bytes from src to dst, in as many advance() calls as it takes: each moves what it
/// can without waiting and says what it waits for. Bytes it has taken from src and not yet written
/// stay inside it (in its pipe or buffer) across calls, and are written first on the next.
///
/// Both fds must be O_NONBLOCK, so that advance() never blocks and an event loop can drive
/// thousands of copiers; the first advance() over a blocking fd ends the copy with EINVAL from
/// "fcntl" before a byte moves. Sys is the system-call seam (see posix_calls).
/// Not thread-safe: one copier per direction of a connection, used by one thread at a time.
template <class Sys = system_calls>
class copier {
 public:
  /// Prepares to copy at most limit bytes from src to dst. Touches neither fd.
  copier(int dst, int src, std::uint64_t limit = no_limit, const options& opt = {}, Sys sys = {}) noexcept
      : sys_(std::move(sys)), opt_(opt), dst_(dst), src_(src), remaining_(limit) {
    if (!opt_.pool) opt_.pool = &pipe_pool::shared();
  }
  /// The same, accepting blocking fds: advance() then blocks in the system calls.
  copier(detail::blocking_allowed, int dst, int src, std::uint64_t limit, const options& opt, Sys sys) noexcept
      : copier(dst, src, limit, opt, std::move(sys)) {
    blocking_ok_ = true;
  }
  copier(const copier&) = delete;
  copier& operator=(const copier&) = delete;
  ~copier() { release_pipe(); }

  int src() const noexcept { return src_; }
  int dst() const noexcept { return dst_; }
  /// Returns what the copy has done so far; final once advance() has returned step::done.
  const splice_lib::result& result() const noexcept { return result_; }
  /// Returns the bytes taken from src and not yet written to dst (in the pipe or the buffer).
  std::size_t held() const noexcept { return in_pipe_ + (buf_end_ - buf_begin_); }

  /// Moves bytes until src is empty or dst is full, the limit is reached, src ends, or an error.
  step advance() noexcept {
    sigpipe_scope scope;
    return advance(scope);
  }

  /// The same, for a caller that already holds a sigpipe_scope in this thread.
  step advance(sigpipe_scope& scope) noexcept {
    if (done_) return step::done;
    if (!started_ && remaining_ != 0 && !start(scope)) return step::done;
    for (;;) {
      if (held() > 0) {
        const ssize_t n = in_pipe_ > 0 ? pump() : write_buffer();
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK) return step::write;
          return fail(scope, detail::last_error(), in_pipe_ > 0 ? "splice" : write_op());
        }
        continue;
      }
      if (eof_ || remaining_ == 0) return finish();
      const ssize_t n = fill();
      if (n > 0) continue;
      if (n == 0) {
        eof_ = true;
        continue;
      }
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        // The pipe is empty: it goes back to the pool while src is idle, so that idle
        // connections hold no pipe. The next fill takes one again.
        if (route_ == detail::route::via_pipe) release_pipe();
        return waiting_after_fill();
      }
      if (route_ != detail::route::user && (err == EINVAL || err == ENOSYS)) {
        // The kernel cannot splice this pair (an old kernel, a kTLS record that is not data, ...).
        // A fill runs only when nothing is held, and a failed splice consumed nothing, so the
        // user-space path can take over from here without losing a byte.
        route_ = detail::route::user;
        pipeable_ = false;
        release_pipe();
        continue;
      }
      return fail(scope, detail::last_error(), route_ == detail::route::user ? "read" : "splice");
    }
  }

  /// Ends the copy with ec (a caller's deadline, say). Bytes held count as unsent.
  void stop(std::error_code ec, const char* op) noexcept {
    if (done_) return;
    result_.error = ec;
    result_.op = op;
    result_.unsent = held();
    done_ = true;
    release_pipe();  // closes the pipe if it holds bytes: they are lost with the stream
    record_in_pool();
    in_pipe_ = 0;
    buf_begin_ = buf_end_ = 0;
  }

 private:
  // start picks the route, once, before the first byte moves. Every failure here leaves src
  // untouched, so the user-space fallback loses nothing.
  bool start(sigpipe_scope& scope) noexcept {
    started_ = true;
    const char* op = "";
    if (auto ec = detail::plan(sys_, dst_, src_, opt_.splice_from_unix, route_, op)) {
      fail(scope, ec, op);  // a bad fd is found here, before src gives a byte
      return false;
    }
    if (!blocking_ok_) {
      for (int fd : {src_, dst_}) {
        const int flags = detail::retry([&] { return sys_.fcntl(fd, F_GETFL, 0); });
        if (flags >= 0 && (flags & O_NONBLOCK)) continue;
        fail(scope, flags < 0 ? detail::last_error() : std::make_error_code(std::errc::invalid_argument), "fcntl");
        return false;
      }
    }
    if (opt_.userspace) route_ = detail::route::user;
    pipeable_ = route_ == detail::route::via_pipe;
    return true;
  }

  // choose_route runs before each fill of a socket-to-socket copy: a slow stream moves to user
  // space, a fast one back onto a pipe (see options::splice_after), and a copy on the pipe route
  // takes a pipe from the pool. Called only when nothing is held, so no byte is in flight across a
  // switch, and a pipe goes back to the pool empty.
  void choose_route() noexcept {
    static constexpr unsigned slow_drains = 8;
    if (!pipeable_) return;
    if (route_ == detail::route::via_pipe && opt_.splice_after > 0 && small_drains_ >= slow_drains) {
      release_pipe();
      route_ = detail::route::user;
      full_reads_ = small_drains_ = 0;
    } else if (route_ == detail::route::user && full_reads_ >= opt_.splice_after) {
      route_ = detail::route::via_pipe;
      full_reads_ = small_drains_ = 0;
    }
    if (route_ != detail::route::via_pipe || pipe_) return;
    const char* op = "";
    if (opt_.pool->acquire(sys_, pipe_, op)) {
      // No pipe to be had (EMFILE, ENFILE, the pool is full): user space for the rest of the copy.
      route_ = detail::route::user;
      pipeable_ = false;
    }
  }

  std::size_t next_chunk(std::size_t cap) const noexcept {
    return std::size_t(std::min<std::uint64_t>(remaining_, cap));
  }

  // fill takes the next bytes from src. Invariant: nothing is held on entry, so for the
  // via_pipe route the pipe is empty, and EAGAIN can only mean src has nothing to give.
  ssize_t fill() noexcept {
    choose_route();
    ssize_t n = 0;
    switch (route_) {
      case detail::route::user:
        if (!buf_) buf_.reset(new (std::nothrow) char[opt_.buffer_size]);
        if (!buf_) {
          errno = ENOMEM;
          return -1;
        }
        n = detail::retry([&] { return sys_.read(src_, buf_.get(), next_chunk(opt_.buffer_size)); });
        if (n > 0) buf_begin_ = 0, buf_end_ = std::size_t(n);
        full_reads_ = std::size_t(n) == opt_.buffer_size ? full_reads_ + 1 : 0;
        break;
      case detail::route::via_pipe:
        n = detail::splice_move(sys_, src_, pipe_.w.get(), next_chunk(opt_.max_splice));
        if (n > 0) {
          in_pipe_ = std::size_t(n);
          small_drains_ = in_pipe_ < opt_.buffer_size ? small_drains_ + 1 : 0;
        }
        break;
      case detail::route::from_pipe:
      case detail::route::to_pipe:
        // One end is the caller's pipe: a single splice moves bytes from src all the way to dst.
        n = detail::splice_move(sys_, src_, dst_, next_chunk(opt_.max_splice));
        if (n > 0) delivered(std::size_t(n), true);
        break;
    }
    if (n > 0) remaining_ -= std::uint64_t(n);
    return n;
  }

  // waiting_after_fill says what a fill that met EAGAIN waits for. For a direct splice it is
  // ambiguous (src empty, or dst full); the state of the pipe end settles it.
  step waiting_after_fill() noexcept {
    switch (route_) {
      case detail::route::from_pipe:
        return detail::pipe_end_ready(sys_, src_, POLLIN) ? step::write : step::read;
      case detail::route::to_pipe:
        return detail::pipe_end_ready(sys_, dst_, POLLOUT) ? step::read : step::write;
      default:
        return step::read;
    }
  }

  // pump writes the pipe's bytes to dst. Invariant: the pipe is not empty, so EAGAIN means dst
  // is full.
  ssize_t pump() noexcept {
    const ssize_t n = detail::splice_move(sys_, pipe_.r.get(), dst_, in_pipe_);
    if (n > 0) {
      in_pipe_ -= std::size_t(n);
      delivered(std::size_t(n), true);
    } else if (n == 0) {
      errno = EIO;  // a pipe that holds bytes and has a writer never reports end of file
      return -1;
    }
    return n;
  }

  // write_buffer writes the buffer's bytes to dst. send with MSG_NOSIGNAL spares a socket dst the
  // SIGPIPE; a dst that is no socket says ENOTSOCK once and gets write(2) from then on.
  ssize_t write_buffer() noexcept {
    const char* p = buf_.get() + buf_begin_;
    const std::size_t len = buf_end_ - buf_begin_;
    ssize_t n = -1;
    if (!dst_not_socket_) {
      n = detail::retry([&] { return sys_.send(dst_, p, len, MSG_NOSIGNAL); });
      if (n < 0 && errno == ENOTSOCK) dst_not_socket_ = true;
    }
    if (dst_not_socket_) n = detail::retry([&] { return sys_.write(dst_, p, len); });
    if (n > 0) {
      buf_begin_ += std::size_t(n);
      delivered(std::size_t(n), false);
    } else if (n == 0) {
      errno = EIO;
      return -1;
    }
    return n;
  }

  void delivered(std::size_t n, bool by_splice) noexcept {
    result_.bytes += n;
    if (by_splice) spliced_bytes_ += n, result_.spliced = true;
  }

  const char* write_op() const noexcept { return dst_not_socket_ ? "write" : "send"; }

  step finish() noexcept {
    done_ = true;
    release_pipe();
    record_in_pool();
    return step::done;
  }

  step fail(sigpipe_scope& scope, std::error_code ec, const char* op) noexcept {
    scope.note(ec);
    stop(ec, op);
    return step::done;
  }

  // record_in_pool adds this copy's bytes to the pool's counters, once, when it ends.
  void record_in_pool() noexcept { opt_.pool->record(spliced_bytes_, result_.bytes - spliced_bytes_); }

  // release_pipe gives the pipe back to the pool; one that still holds bytes is closed.
  void release_pipe() noexcept {
    if (pipe_) opt_.pool->release(std::move(pipe_), in_pipe_ == 0);
    pipe_ = detail::pipe{};
  }

  Sys sys_;
  options opt_;
  int dst_, src_;
  std::uint64_t remaining_;  // bytes src may still give before the limit
  std::uint64_t spliced_bytes_ = 0;  // of result_.bytes, those moved by splice
  splice_lib::result result_;
  detail::route route_ = detail::route::user;
  detail::pipe pipe_;
  std::size_t in_pipe_ = 0;  // bytes in pipe_, taken from src, not yet in dst
  std::unique_ptr<char[]> buf_;
  std::size_t buf_begin_ = 0, buf_end_ = 0;  // bytes of buf_ not yet in dst
  unsigned full_reads_ = 0;    // reads in a row that filled buf_
  unsigned small_drains_ = 0;  // splices into the pipe in a row that took less than buf_ holds
  bool pipeable_ = false;    // a socket-to-socket copy that may use a pipe
  bool started_ = false, eof_ = false, done_ = false, dst_not_socket_ = false, blocking_ok_ = false;
};

}  // namespace splice_lib

#endif  // SPLICE_COPIER_HPP_
