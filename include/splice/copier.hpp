// SPDX-License-Identifier: MIT
#ifndef SPLICE_COPIER_HPP_
#define SPLICE_COPIER_HPP_

#include <chrono>
#include <cstdint>
#include <system_error>
#include <utility>

#include "detail/moves.hpp"
#include "detail/mover.hpp"
#include "detail/tally.hpp"
#include "error.hpp"
#include "mirror.hpp"
#include "options.hpp"
#include "pipe_pool.hpp"
#include "rate_limit.hpp"
#include "system_calls.hpp"
#include "result.hpp"
#include "sigpipe.hpp"

namespace splice_lib {

template <class Sys, class Copier>
class duplex;

static_assert(int(detail::waits_on::src) == int(step::read) && int(detail::waits_on::dst) == int(step::write) &&
              int(detail::waits_on::either) == int(step::either) && int(detail::waits_on::nothing) == int(step::again));

/// copier moves bytes from src to dst in as many advance() calls as it takes: each moves what it can
/// without waiting and says what it waits for. Bytes taken from src and not yet written (in its pipe
/// or buffer) are written first on the next call. The route is chosen once from what the ends are;
/// detail/mover.hpp moves the chunks, this class keeps the count, the limit and the lifecycle. Every
/// route moves the fds' file offsets by exactly the bytes moved, as read(2) and write(2) do.
///
/// Socket and pipe ends must be O_NONBLOCK (else errc::blocking_fd from "fd", unless made with
/// allow_blocking); a regular file is always ready and never waited on. It waits only after the fd
/// it names said EAGAIN, so edge-triggered readiness is sound. It must be the only reader of a src
/// pipe and the only writer of a dst pipe. Sys is the system-call seam (system_calls.hpp). It counts
/// in the process's metrics (metrics.hpp) after each advance() that moved bytes or waited for its
/// rate limit, and its error when it ends (options::metrics turns that off).
/// Not thread-safe: one copier per direction of a connection, used by one thread at a time.
template <class Sys = system_calls>
class copier {
 public:
  /// Prepares to copy at most limit bytes from src to dst. Touches neither fd.
  copier(int dst, int src, std::uint64_t limit = no_limit, const options& opt = {}, Sys sys = {}) noexcept
      : opt_(opt), mover_(std::move(sys), settings(opt_), {opt.max_advance, opt.splice_after, opt.small_splice}),
        meter_(opt.rate), dst_(dst), src_(src), remaining_(limit) {}
  /// The same, accepting blocking fds: advance() then blocks in the system calls.
  copier(allow_blocking_t, int dst, int src, std::uint64_t limit, const options& opt, Sys sys) noexcept
      : copier(dst, src, limit, opt, std::move(sys)) {
    blocking_ok_ = true;
  }
  copier(const copier&) = delete;
  copier& operator=(const copier&) = delete;

  int src() const noexcept { return src_; }
  int dst() const noexcept { return dst_; }
  /// Returns what the copy has done so far; final once advance() has returned step::done.
  const splice_lib::result& result() const noexcept { return result_; }
  /// Returns the bytes taken from src and not yet written to dst (in the pipe or the buffer).
  std::size_t held() const noexcept { return mover_.held(); }
  /// Returns when to advance() again after step::later.
  std::chrono::steady_clock::time_point wake_at() const noexcept { return meter_.wake_at(); }

  /// Moves bytes until src is empty or dst is full, the limit is reached, src ends, an error, or
  /// options::max_advance bytes; then says what it waits for. Blocks SIGPIPE for its duration.
  step advance() noexcept {
    if (phase_ == phase::fresh && opt_.sigpipe_ignored) mask_sigpipe_ = !sigpipe_scope::ignored_by_host();
    sigpipe_scope scope(mask_sigpipe_);
    return advance(scope);
  }

  /// The same, for a caller that already holds a sigpipe_scope in this thread. A call into dst
  /// that returned a short count may have raised SIGPIPE for the next chunk; until a later call
  /// into dst settles it (a count or EAGAIN says dst lives), the scope consumes one.
  step advance(sigpipe_scope& scope) noexcept {
    const std::uint64_t bytes = result_.bytes, spliced = spliced_;
    const step s = run(scope);
    if (opt_.metrics) tell(result_.bytes - bytes, spliced_ - spliced, s);
    if (std::exchange(maybe_raised_, false) | (opt_.mirror && opt_.mirror->take_raised()))
      scope.note(std::make_error_code(std::errc::broken_pipe));
    return s;
  }

  /// Ends the copy with ec from op (a caller's deadline, say). Bytes held count as unsent.
  void stop(std::error_code ec, const char* op) noexcept {
    if (phase_ == phase::done) return;
    result_.error = ec, result_.op = op, result_.unsent = held();
    end();
  }

 private:
  template <class S, class C>
  friend class duplex;
  enum class phase { fresh, running, ending /* src ended or limit reached: flush what is held */, done };

  static detail::route_settings<pipe_pool, mirror> settings(options& o) noexcept {
    return {o.pool = o.pool ? o.pool : &pipe_pool::shared(), o.buffer_size, o.max_splice, o.userspace, o.splice_from_unix,
            o.short_read_drains, o.mirror};
  }

  // run is advance(): it moves what it can, reading what each move returns, and says what it waits for.
  step run(sigpipe_scope& scope) noexcept {
    if (phase_ == phase::fresh) {
      const char* op = "";
      if (auto ec = start(op)) return fail(scope, ec, op, false);
    }
    const std::uint64_t at_entry = result_.bytes;
    // A short read says src was empty only until this call waits for anything else: an edge that
    // came for src meanwhile went to a direction that was not waiting for it.
    drained_ = false;
    while (phase_ != phase::done) {
      if (held() == 0 && (phase_ == phase::ending || remaining_ == 0)) return end(), step::done;
      if (held() == 0 && std::exchange(drained_, false)) return step::read;  // a short read: src is empty
      if (mover_.rules().yields(result_.bytes - at_entry)) return step::again;
      const bool flushing = held() > 0;
      const std::uint64_t allowed = flushing ? 0 : meter_.allow(remaining_, mover_.sys());
      if (!flushing && allowed == 0) return mover_.release(), step::later;  // waiting, it holds no pipe
      const detail::moved m = flushing ? mover_.flush() : mover_.take(allowed);
      if (!flushing) meter_.used(m.n, m.blocked() && m.wait == detail::waits_on::src);
      count(m, !flushing);
      drained_ |= m.drained;
      if (m.n > 0) continue;
      if (m.n == 0) phase_ = phase::ending;
      else if (m.blocked()) return static_cast<step>(m.wait);
      else if (!mover_.recovered(m, flushing)) return fail(scope, detail::error_of(m.err), m.op, m.raises);
    }
    return step::done;
  }

  // start checks the options and learns the ends, once, before the first byte moves. src is
  // untouched on every failure, and a copy with limit 0 touches neither fd.
  std::error_code start(const char*& op) noexcept {
    phase_ = phase::running;
    if (!opt_.buffer_size || !opt_.max_splice || !opt_.max_advance) return op = "options", errc::invalid_options;
    if (remaining_ == 0) return {};
    detail::end s, d;
    if (auto ec = detail::inspect(mover_.sys(), src_, s, op)) return ec;
    if (auto ec = detail::inspect(mover_.sys(), dst_, d, op)) return ec;
    return begin(s, d, op);
  }

  // begin checks what the ends are and plans the route (the duplex inspects them once for both).
  std::error_code begin(const detail::end& s, const detail::end& d, const char*& op) noexcept {
    phase_ = phase::running;
    op = "fd";
    if (!s.readable() || !d.writable()) return s.readable() ? errc::not_writable : errc::not_readable;
    if (!blocking_ok_ && (s.blocks() || d.blocks())) return errc::blocking_fd;
    return op = "", mover_.begin(src_, dst_, s, d), std::error_code{};
  }

  // count keeps the tally from what a move returned: bytes taken from src, bytes into dst.
  void count(const detail::moved& m, bool took) noexcept {
    if (m.to_dst) maybe_raised_ = m.short_write;
    if (m.n <= 0) return;
    if (took) remaining_ -= std::uint64_t(m.n);
    if (!m.to_dst) return;
    result_.bytes += std::uint64_t(m.n);
    if (m.kernel) spliced_ += std::uint64_t(m.n), result_.spliced = true;
    else if (!*result_.fallback) result_.fallback = mover_.why();
  }

  step fail(sigpipe_scope& scope, std::error_code ec, const char* op, bool raises) noexcept {
    return raises ? scope.note(ec) : void(), stop(ec, op), step::done;
  }

  // end gives the pipe back, tells the pool's counters what the copy moved, the mirror that its
  // stream has ended, and the metrics its error (a duplex counts its relay's first error itself, once).
  void end() noexcept {
    phase_ = phase::done;
    mover_.release();
    meter_.end();
    if (opt_.mirror) opt_.mirror->end_of_stream(mover_.sys(), !result_.error);
    opt_.pool->record(spliced_, result_.bytes - spliced_);
    if (opt_.metrics && owns_error_ && result_.error)
      detail::add_count(detail::this_shard(), detail::errors + detail::word_slot(result_.op, detail::error_ops, detail::error_op_count), 1);
  }

  // tell counts what one advance() did in this thread's shard of the metrics (metrics.hpp): the
  // bytes into dst by direction, spliced or by result::fallback's word, and a wait for the rate
  // limit. An advance that moved nothing and did not wait costs a compare.
  void tell(std::uint64_t bytes, std::uint64_t spliced, step s) noexcept {
    if (bytes == 0 && s != step::later) return;
    detail::shard* sh = detail::this_shard();
    if (s == step::later) detail::add_count(sh, detail::rate_waits, 1);
    if (bytes == 0) return;
    detail::add_count(sh, way_, bytes);
    if (spliced > 0) detail::add_count(sh, detail::spliced_bytes, spliced);
    if (bytes == spliced) return;
    if (reason_ == detail::fallback_count) reason_ = detail::word_slot(result_.fallback, detail::fallback_words, detail::fallback_count);
    detail::add_count(sh, detail::user_bytes + reason_, bytes - spliced);
  }

  options opt_;
  detail::mover<Sys, pipe_pool, mirror> mover_;
  detail::metered meter_;  // options::rate, if any
  int dst_, src_;
  std::uint64_t remaining_;    // bytes src may still give before the limit
  std::uint64_t spliced_ = 0;  // of result_.bytes, those a kernel route moved
  splice_lib::result result_;
  phase phase_ = phase::fresh;
  bool maybe_raised_ = false;  // a call into dst returned a short count; see advance(scope)
  bool drained_ = false;       // the last read gave less than asked (options::short_read_drains)
  bool mask_sigpipe_ = true;   // advance() blocks SIGPIPE (off when the host ignores it)
  bool blocking_ok_ = false;
  // The metrics: the direction's slot (a duplex makes its b to a copier down_bytes), whether the
  // copy counts its own error (not in a duplex), result::fallback's slot once known.
  detail::slot way_ = detail::up_bytes;
  bool owns_error_ = true;
  std::size_t reason_ = detail::fallback_count;
};

}  // namespace splice_lib

#endif  // SPLICE_COPIER_HPP_
