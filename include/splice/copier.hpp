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

/// valid says whether a copy can run with opt; one that cannot would report success with bytes left.
inline bool valid(const options& opt) noexcept {
  return opt.buffer_size > 0 && opt.max_splice > 0 && opt.max_advance > 0;
}

/// The most bytes one read, write or splice moves on Linux (MAX_RW_COUNT); asking for more is
/// pointless, and some kernels refuse huge splice lengths with EINVAL.
inline constexpr std::size_t max_call = 0x7ffff000;

inline bool would_block(int err) noexcept { return err == EAGAIN || err == EWOULDBLOCK; }
}  // namespace detail

/// copier moves bytes from src to dst, in as many advance() calls as it takes: each moves what it
/// can without waiting and says what it waits for. Bytes it has taken from src and not yet written
/// stay inside it (in its pipe or buffer) across calls, and are written first on the next.
///
/// It picks one route when it starts (see detail::make_plan): a regular file into a socket by
/// sendfile, into a file by copy_file_range, a socket into a socket or a file through a pooled
/// pipe, one splice per chunk where one end is a pipe, and user space for the rest. Every route
/// reads and writes at the fds' file offsets and advances them by exactly the bytes moved.
///
/// Socket and pipe ends must be O_NONBLOCK, so that advance() never blocks and an event loop can
/// drive thousands of copiers; the first advance() over a blocking one ends the copy with EINVAL
/// from "fcntl" before a byte moves. A regular file is always ready: it may be blocking and is never
/// waited on. A copier waits only after the fd it names said EAGAIN, so edge-triggered readiness is
/// sound. Where src or dst is a pipe, the copier must be its only reader or writer while it runs.
/// Sys is the system-call seam (see posix_calls).
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

  /// Moves bytes until src is empty or dst is full, the limit is reached, src ends, an error, or
  /// options::max_advance bytes; then says what it waits for. Blocks SIGPIPE for its duration.
  step advance() noexcept {
    if (!started_ && opt_.sigpipe_ignored) mask_sigpipe_ = !sigpipe_scope::ignored_by_host();
    sigpipe_scope scope(mask_sigpipe_);
    return advance(scope);
  }

  /// The same, for a caller that already holds a sigpipe_scope in this thread.
  step advance(sigpipe_scope& scope) noexcept {
    const step s = run(scope);
    if (std::exchange(maybe_raised_, false)) scope.note(std::make_error_code(std::errc::broken_pipe));
    return s;
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
  // run is advance(): the copier's state machine. Moves what it can, then says what it waits for.
  step run(sigpipe_scope& scope) noexcept {
    if (done_) return step::done;
    if (!started_) {
      const char* op = "";
      if (auto ec = start(op)) return fail(scope, ec, op);
    }
    const std::uint64_t at_entry = result_.bytes;
    for (;;) {
      if (held() == 0 && (eof_ || remaining_ == 0)) return finish();
      if (result_.bytes - at_entry >= opt_.max_advance) return step::again;
      const bool flushing = held() > 0;
      const ssize_t n = flushing ? flush() : take();
      if (n > 0) continue;
      if (n == 0) {  // only take() returns 0: src has ended
        eof_ = true;
        continue;
      }
      const int err = errno;
      if (detail::would_block(err)) return waits_for_;
      if (!flushing && route_ != detail::route::user && falls_back(err)) {
        to_user();  // nothing is held, and the failed call consumed nothing: no byte is lost
        continue;
      }
      if (flushing && in_pipe_ > 0 && (err == EINVAL || err == ENOSYS) && unload_pipe()) continue;
      return fail(scope, detail::last_error(), op_, raises_);
    }
  }

  // start checks the options and learns the ends, once, before the first byte moves; it returns
  // what ends the copy before it begins. src is untouched on every failure, and a copy with limit
  // 0 touches neither fd.
  std::error_code start(const char*& op) noexcept {
    started_ = true;
    const auto invalid = std::make_error_code(std::errc::invalid_argument);
    if (!detail::valid(opt_)) return op = "options", invalid;
    if (remaining_ == 0) return {};
    if (auto ec = detail::make_plan(sys_, dst_, src_, opt_.splice_from_unix, plan_, op)) return ec;
    const bool src_blocks = !plan_.src_always_ready && !plan_.src_nonblocking;
    const bool dst_blocks = !plan_.dst_always_ready && !plan_.dst_nonblocking;
    if (!blocking_ok_ && (src_blocks || dst_blocks)) return op = "fcntl", invalid;
    route_ = opt_.userspace ? detail::route::user : plan_.how;
    adaptive_ = route_ == detail::route::relay;
    return {};
  }

  // take moves the next chunk out of src, by the route's way. Invariant: nothing is held. Returns
  // the bytes taken, 0 at src's end, or -1 with errno; on EAGAIN, waits_for_ says what to wait for.
  ssize_t take() noexcept {
    choose_route();
    ssize_t n = -1;
    switch (route_) {
      case detail::route::user: n = read_buffer(); break;
      case detail::route::relay: n = drain(); break;
      case detail::route::direct: n = splice_direct(); break;
      case detail::route::sendfile: n = send_file(); break;
      case detail::route::copy_range: n = copy_range(); break;
    }
    if (n > 0) remaining_ -= std::uint64_t(n);
    return n;
  }

  // flush writes what is held to dst: the pipe by splice, the buffer by send or write.
  ssize_t flush() noexcept { return in_pipe_ > 0 ? pump() : write_buffer(); }

  // read_buffer reads from src into the buffer (the user-space route; also how a TCP urgent mark is
  // crossed, which read(2) does and splice cannot). Invariant: nothing is held.
  ssize_t read_buffer() noexcept {
    op_ = "read", raises_ = false;
    if (!reserve(opt_.buffer_size)) return errno = ENOMEM, -1;
    const ssize_t n = detail::retry([&] { return sys_.read(src_, buf_.get(), chunk(opt_.buffer_size)); });
    if (n > 0) buf_begin_ = 0, buf_end_ = std::size_t(n), pipe_end_ready_ = false;
    full_reads_ = std::size_t(n) == opt_.buffer_size ? full_reads_ + 1 : 0;
    if (n < 0) waits_for_ = plan_.src_always_ready ? step::again : step::read;
    return n;
  }

  // write_buffer writes the buffer's bytes to dst: send with MSG_NOSIGNAL to a socket, which
  // spares it SIGPIPE, and write(2) to anything else. Invariant: the buffer holds bytes.
  ssize_t write_buffer() noexcept {
    const char* p = buf_.get() + buf_begin_;
    const std::size_t len = buf_end_ - buf_begin_;
    op_ = plan_.dst_socket ? "send" : "write", raises_ = !plan_.dst_socket;
    const ssize_t n = detail::retry([&] {
      return plan_.dst_socket ? sys_.send(dst_, p, len, MSG_NOSIGNAL) : sys_.write(dst_, p, len);
    });
    if (raises_) sent(n, len);
    if (n > 0) buf_begin_ += std::size_t(n), delivered(std::size_t(n), false);
    return written(n);
  }

  // drain splices from src into the pool's pipe (route::relay). Invariant: the pipe is empty, so
  // EAGAIN means src has nothing, and 0 means src has ended, except at a TCP urgent mark, where
  // splice stops (0 or EAGAIN) with bytes still queued behind the mark: read(2) crosses it.
  ssize_t drain() noexcept {
    op_ = "splice", raises_ = false;
    const ssize_t n = detail::splice_move(sys_, src_, pipe_.w.get(), chunk(opt_.max_splice));
    if (n > 0) {
      in_pipe_ = std::size_t(n);
      small_splices_ = in_pipe_ < std::min(opt_.small_splice, pipe_.capacity) ? small_splices_ + 1 : 0;
      return n;
    }
    const bool src_empty = n < 0 && detail::would_block(errno);
    if ((n == 0 || src_empty) && at_urgent_mark() != 0) return read_buffer();
    if (src_empty) {
      release_pipe();  // an idle copy holds no pipe; the next take gets one again
      waits_for_ = step::read;
    }
    return n;
  }

  // pump splices the pipe's bytes into dst. Invariant: the pipe holds bytes, so EAGAIN means dst
  // is full; and it never reports end of file.
  ssize_t pump() noexcept {
    op_ = "splice", raises_ = true;
    const ssize_t n = detail::splice_move(sys_, pipe_.r.get(), dst_, in_pipe_);
    sent(n, in_pipe_);
    if (n > 0) in_pipe_ -= std::size_t(n), delivered(std::size_t(n), true);
    return written(n);
  }

  // splice_direct splices from src straight into dst (route::direct); one of them is the caller's
  // pipe. Invariant: nothing is held. EAGAIN means that src is empty or dst is full; unless one end
  // is a regular file, blocked_direct finds out which.
  ssize_t splice_direct() noexcept {
    op_ = "splice", raises_ = true;
    const std::size_t asked = chunk(opt_.max_splice);
    const ssize_t n = detail::splice_move(sys_, src_, dst_, asked);
    sent(n, asked);
    if (n > 0) delivered(std::size_t(n), true);
    if (n == 0 && at_urgent_mark() != 0) return read_buffer();
    if (n < 0 && detail::would_block(errno)) return blocked_direct();
    return n;
  }

  // blocked_direct settles what a direct splice that said EAGAIN waits for. The copier is the only
  // reader of a src pipe and the only writer of a dst pipe, so the pipe end's state decides: an
  // empty src pipe or a full dst pipe is the one to wait for, and only its other side can change
  // that, with an edge. A pipe end found ready means the other end said EAGAIN, unless the pipe
  // changed between the splice and the poll: then step::either. It stays ready until the copier
  // moves a byte, so the next EAGAIN without a byte moved names the other end for sure. A poll
  // that fails settles nothing: step::either.
  ssize_t blocked_direct() noexcept {
    errno = EAGAIN;
    if (plan_.src_always_ready || plan_.dst_always_ready) {
      waits_for_ = plan_.src_always_ready ? step::write : step::read;  // a file never says EAGAIN
      return -1;
    }
    const int pipe_end = plan_.src_pipe ? src_ : dst_;
    const int ready = pipe_end_ready_ ? 1 : detail::pipe_end_ready(sys_, pipe_end, plan_.src_pipe ? POLLIN : POLLOUT);
    if (!plan_.src_pipe && ready != 0 && at_urgent_mark() != 0) return read_buffer();  // src may be at its mark
    const step at_pipe = plan_.src_pipe ? step::read : step::write, other = plan_.src_pipe ? step::write : step::read;
    waits_for_ = ready == 0 ? at_pipe : ready > 0 && pipe_end_ready_ ? other : step::either;
    pipe_end_ready_ = ready > 0;
    errno = EAGAIN;
    return -1;
  }

  // send_file sends from the regular file src to the socket dst (route::sendfile). 0 means src has
  // ended (a file that shrank ends the copy at its new end); EAGAIN means dst is full.
  ssize_t send_file() noexcept {
    op_ = "sendfile", raises_ = true;
    const std::size_t asked = chunk(opt_.max_splice);
    const ssize_t n = detail::send_file(sys_, dst_, src_, asked);
    sent(n, asked);
    if (n > 0) delivered(std::size_t(n), true);
    if (n < 0) waits_for_ = step::write;
    return n;
  }

  // copy_range copies from the regular file src into the regular file dst (route::copy_range).
  // Both are always ready, so EAGAIN, which files do not say, means "call again". A first call
  // that copies nothing may still face bytes: procfs and sysfs files report size 0 and have them.
  ssize_t copy_range() noexcept {
    op_ = "copy_file_range", raises_ = false;
    const ssize_t n = detail::copy_range(sys_, src_, dst_, chunk(opt_.max_splice));
    if (n > 0) delivered(std::size_t(n), true);
    if (n == 0 && spliced_bytes_ == 0) return to_user(), read_buffer();
    if (n < 0) waits_for_ = step::again;
    return n;
  }

  // sent notes what a call into dst that raises SIGPIPE along with EPIPE (splice, sendfile, write)
  // returned. Such a call can send a chunk, meet a peer that has just gone on the next chunk, raise
  // SIGPIPE, and still return the first chunk's count. So a short count leaves open whether
  // SIGPIPE is pending until a later call into dst settles it (a dead dst stays dead, so a count
  // or an EAGAIN says it lives, and EPIPE is noted as any failure); an advance() that ends with it
  // open lets its scope consume a pending SIGPIPE (see advance).
  void sent(ssize_t n, std::size_t asked) noexcept { maybe_raised_ = n > 0 && std::size_t(n) < asked; }

  // written finishes a write to dst: 0 from a write that asked for bytes is an error, and EAGAIN
  // means dst is full (a regular file is never waited for).
  ssize_t written(ssize_t n) noexcept {
    if (n == 0) return errno = EIO, -1;
    if (n < 0) waits_for_ = plan_.dst_always_ready ? step::again : step::write;
    return n;
  }

  // at_urgent_mark says whether splice out of a TCP src stopped at the urgent mark: 1 yes, 0 no,
  // -1 if sockatmark failed, where read(2) is the safe next step (it crosses a mark, and otherwise
  // says what splice said). One system call, made only when a splice out of TCP returned 0 or
  // EAGAIN.
  int at_urgent_mark() noexcept {
    if (!plan_.src_tcp) return 0;
    const int saved = errno;
    const int at = detail::retry([&] { return sys_.sockatmark(src_); });
    errno = saved;
    return at < 0 ? -1 : at > 0;
  }

  // falls_back says whether a failed kernel move may hand the copy to user space: EINVAL or ENOSYS
  // (the kernel cannot move this pair: an old kernel, a kTLS record that is not data, a file
  // system without splice), and for copy_file_range before its first byte also EXDEV, EOPNOTSUPP,
  // EPERM and EIO (other file systems, procfs).
  bool falls_back(int err) const noexcept {
    if (err == EINVAL || err == ENOSYS) return true;
    return route_ == detail::route::copy_range && spliced_bytes_ == 0 &&
           (err == EXDEV || err == EOPNOTSUPP || err == EPERM || err == EIO);
  }

  // unload_pipe reads the pipe's bytes back into the buffer when dst refuses splice (EINVAL or
  // ENOSYS), so the copy goes on in user space without losing them. If that fails, the copy ends
  // with dst's refusal, and held() still counts every byte.
  bool unload_pipe() noexcept {
    const int refusal = errno;
    buf_begin_ = buf_end_ = 0;  // the buffer is empty while the pipe holds bytes
    bool ok = reserve(in_pipe_);
    while (ok && in_pipe_ > 0) {
      const ssize_t n = detail::retry([&] { return sys_.read(pipe_.r.get(), buf_.get() + buf_end_, in_pipe_); });
      ok = n > 0;
      if (ok) buf_end_ += std::size_t(n), in_pipe_ -= std::size_t(n);
    }
    errno = refusal;
    if (ok) to_user();
    return ok;
  }

  // choose_route runs before each take of a relay copy, when nothing is held, so no byte is in
  // flight across a switch and a pipe goes back to the pool empty. A slow stream (8 small splices in
  // a row) moves to user space, where a pipe does not pay for itself; it comes back after
  // splice_after reads in a row that filled the buffer. A relay without a pipe (the pool at its
  // limit, EMFILE) runs in user space meanwhile and tries again the same way.
  void choose_route() noexcept {
    static constexpr unsigned slow_splices = 8;
    if (!adaptive_) return;
    if (route_ == detail::route::relay && opt_.splice_after > 0 && small_splices_ >= slow_splices) {
      release_pipe();
      route_ = detail::route::user;
      full_reads_ = small_splices_ = 0;
    } else if (route_ == detail::route::user && full_reads_ >= std::max(1u, opt_.splice_after)) {
      route_ = detail::route::relay;
      full_reads_ = small_splices_ = 0;
    }
    const char* op = "";
    if (route_ == detail::route::relay && !pipe_ && opt_.pool->acquire(sys_, pipe_, op)) {
      route_ = detail::route::user;
      full_reads_ = small_splices_ = 0;
    }
  }

  void to_user() noexcept {
    release_pipe();
    route_ = detail::route::user;
    adaptive_ = false;
  }

  // reserve makes the buffer hold at least n bytes, and at least buffer_size.
  bool reserve(std::size_t n) noexcept {
    n = std::max(n, opt_.buffer_size);
    if (buf_cap_ >= n) return true;
    buf_.reset(new (std::nothrow) char[n]);
    buf_cap_ = buf_ ? n : 0;
    return buf_ != nullptr;
  }

  std::size_t chunk(std::size_t cap) const noexcept {
    return std::size_t(std::min<std::uint64_t>(remaining_, std::min(cap, detail::max_call)));
  }

  void delivered(std::size_t n, bool by_kernel) noexcept {
    result_.bytes += n;
    pipe_end_ready_ = false;
    if (by_kernel) spliced_bytes_ += n, result_.spliced = true;
  }

  step finish() noexcept {
    done_ = true;
    release_pipe();
    record_in_pool();
    return step::done;
  }

  step fail(sigpipe_scope& scope, std::error_code ec, const char* op, bool raises = false) noexcept {
    if (raises) scope.note(ec);
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
  std::uint64_t remaining_;          // bytes src may still give before the limit
  std::uint64_t spliced_bytes_ = 0;  // of result_.bytes, those the kernel moved
  splice_lib::result result_;
  detail::plan plan_;
  detail::route route_ = detail::route::user;
  step waits_for_ = step::read;  // what the last move that said EAGAIN waits for
  const char* op_ = "";          // the system call the last move made
  detail::pipe pipe_;
  std::size_t in_pipe_ = 0;  // bytes in pipe_, taken from src, not yet in dst
  std::unique_ptr<char[]> buf_;
  std::size_t buf_cap_ = 0, buf_begin_ = 0, buf_end_ = 0;  // buf_[buf_begin_, buf_end_) not yet in dst
  unsigned full_reads_ = 0;     // reads in a row that filled the buffer
  unsigned small_splices_ = 0;  // splices into the pipe in a row that took less than small_splice
  bool adaptive_ = false;       // a relay that may leave its pipe and take one again
  bool pipe_end_ready_ = false; // route::direct: the pipe end was ready, and no byte moved since
  bool raises_ = false;         // the last move's call raises SIGPIPE along with EPIPE
  bool maybe_raised_ = false;   // a call into dst returned a short count; see sent()
  bool mask_sigpipe_ = true;    // advance() blocks SIGPIPE (off when the host ignores it)
  bool started_ = false, eof_ = false, done_ = false, blocking_ok_ = false;
};

}  // namespace splice_lib

#endif  // SPLICE_COPIER_HPP_
