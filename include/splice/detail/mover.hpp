// SPDX-License-Identifier: MIT
// The route half of a copier: which way chunks move, the pipe or buffer that holds a chunk between
// src and dst, and the choice between them. The copier's state machine (copier.hpp) reads what each
// move returns and keeps the count.
#ifndef SPLICE_DETAIL_MOVER_HPP_
#define SPLICE_DETAIL_MOVER_HPP_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <utility>

#include "buffer.hpp"
#include "moves.hpp"
#include "plan.hpp"
#include "platform.hpp"
#include "policy.hpp"

namespace splice_lib::detail {

/// What a mover needs of the copy's options.
template <class Pool, class Mirror>
struct route_settings {
  Pool* pool;
  std::size_t buffer_size, max_splice;
  bool userspace, from_unix, short_read_drains;
  Mirror* mirror;  // options::mirror: offered every byte taken from src, in order; or nullptr
};

/// mover moves one chunk at a time from src to dst by the route the ends call for, through a pipe
/// leased from Pool (pipe_pool) or a buffer, and offers each chunk to the Mirror (mirror.hpp), if
/// any, as it takes it. Invariant: at most one of the two holds bytes.
template <class Sys, class Pool, class Mirror>
class mover {
 public:
  mover(Sys sys, const route_settings<Pool, Mirror>& s, const policy& p) noexcept
      : sys_(std::move(sys)), set_(s), policy_(p) {}

  Sys& sys() noexcept { return sys_; }
  /// begin picks the route for the ends s and d (see plan_for); a mirrored copy goes through a pipe
  /// or a buffer of its own, where the mirror can see the bytes.
  void begin(int src, int dst, const end& s, const end& d) noexcept {
    src_ = src, dst_ = dst;
    plan_ = plan_for(s, d, set_.from_unix, can_splice, set_.mirror != nullptr);
    route_ = set_.userspace ? route::user : plan_.how;
    why_ = set_.userspace ? "option" : "fd pair";
    adaptive_ = route_ == route::relay;
    trust_short_ = set_.short_read_drains;
  }
  /// mark_seen: src has urgent data or its end pending (ready::a_mark), so a short read may have
  /// stopped at the mark with more behind it (the end: 0) and no new edge to come; from now on only
  /// EAGAIN says src is empty.
  void mark_seen() noexcept { trust_short_ = false; }

  /// Returns the bytes taken from src and not yet written to dst.
  std::size_t held() const noexcept { return pipe_.held() + buf_.size(); }
  const policy& rules() const noexcept { return policy_; }
  /// Returns why the route is user space now (result::fallback's words); meaningful only then.
  const char* why() const noexcept { return why_; }

  /// take moves at most n bytes out of src (into dst on a route without a pipe of ours), and no
  /// more than one call of the route asks for. Invariant: nothing is held.
  moved take(std::uint64_t limit) noexcept {
    if (adaptive_) choose();
    const std::size_t n = std::size_t(std::min<std::uint64_t>(limit, std::min(set_.max_splice, max_call)));
    moved m;
    switch (route_) {
      case route::user: return read_in(limit);
      case route::relay:
        if (mirrored() && !set_.mirror->teeable(sys_)) return why_ = "mirror", read_in(limit);  // it is behind
        m = drain(sys_, src_, pipe_, n);
        if (m.n > 0) policy_.spliced(std::size_t(m.n), pipe_.capacity(), n);
        if (m.n > 0 && mirrored()) tee(std::size_t(m.n));
        if (urgent(m)) return why_ = "urgent data", read_in(limit);
        if (m.blocked()) pipe_.reset();  // an idle copy holds no pipe; the next take gets one again
        return m;
      case route::direct:
        m = splice_through(sys_, src_, dst_, n, plan_, pipe_end_ready_);
        pipe_end_ready_ = m.pipe_ready;
        return urgent(m) ? (why_ = "urgent data", read_in(limit)) : m;
      case route::sendfile: return send_through(sys_, src_, dst_, n);
      case route::copy_range:
        m = copy_through(sys_, src_, dst_, n);
        if (m.n == 0 && !moved_any_) return to_user("size 0 file"), read_in(limit);  // procfs, sysfs: size 0, yet bytes
        moved_any_ |= m.n > 0;
        return m;
    }
    return m;
  }

  /// flush writes what is held into dst: the pipe by splice, the buffer by send or write.
  moved flush() noexcept {
    return pipe_.held() > 0 ? pump(sys_, pipe_, dst_, plan_) : write_out(sys_, dst_, buf_, plan_);
  }

  /// recovered hands a kernel route that failed having moved nothing to user space, with no byte
  /// lost: what the pipe held for a dst that refuses splice is read back into the buffer first.
  bool recovered(const moved& m, bool flushing) noexcept {
    if (!policy::falls_back(route_, m.err, moved_any_)) return false;
    if (flushing && (pipe_.held() == 0 || (m.err != EINVAL && m.err != ENOSYS) || !unload(sys_, pipe_, buf_)))
      return false;  // the copy ends; held() counts every byte
    to_user("kernel refused");
    return true;
  }

  /// release gives the pipe back (closed if it holds bytes: they are lost with the stream) and
  /// forgets what the buffer holds.
  void release() noexcept {
    pipe_.reset();
    buf_.clear();
  }

 private:
  // read_in reads at most limit bytes, and at most a buffer's worth.
  moved read_in(std::uint64_t limit) noexcept {
    const std::size_t n = std::size_t(std::min<std::uint64_t>(limit, set_.buffer_size));
    moved m = detail::read_in(sys_, src_, buf_, n, set_.buffer_size, plan_);
    policy_.read(m.n > 0 ? std::size_t(m.n) : 0, n);
    if (m.n > 0 && mirrored()) set_.mirror->feed(sys_, buf_.data(), std::size_t(m.n));
    pipe_end_ready_ &= m.n <= 0;
    m.drained &= trust_short_;
    return m;
  }

  bool mirrored() const noexcept { return set_.mirror && set_.mirror->status() == Mirror::state::running; }

  // tee offers the n bytes just drained into the pipe to the mirror. What its pipe cannot take
  // goes to it from user space: the pipe is read into the buffer (empty, as nothing else is
  // held), which dst then gets by write_out; only a failed allocation, before any read, leaves
  // the bytes in the pipe, and then the mirror is cut.
  void tee(std::size_t n) noexcept {
    const std::size_t k = set_.mirror->tee(sys_, pipe_.read_end(), n);
    if (k == n || !mirrored()) return;
    if (!unload(sys_, pipe_, buf_)) return set_.mirror->stop();
    why_ = "mirror";
    set_.mirror->feed(sys_, buf_.data() + k, n - k);
  }

  // urgent says whether a splice out of TCP stopped at the urgent mark, which read(2) crosses.
  bool urgent(const moved& m) noexcept { return m.src_stalled && plan_.src_tcp && at_urgent_mark(sys_, src_) != 0; }

  // choose runs before each take of a relay copy, when nothing is held (see policy::next).
  void choose() noexcept {
    const route was = route_;
    route_ = policy_.next(route_);
    if (route_ == route::user && was != route::user) pipe_.reset(), why_ = "small writes";
    const char* op = "";
    if (route_ == route::relay && !pipe_ && set_.pool->acquire(sys_, pipe_, op)) route_ = policy_.refused(), why_ = "pool";
  }

  void to_user(const char* why) noexcept {
    why_ = why;
    pipe_.reset();
    route_ = route::user;
    adaptive_ = false;
  }

  Sys sys_;
  route_settings<Pool, Mirror> set_;
  policy policy_;
  int src_ = -1, dst_ = -1;
  plan plan_;
  route route_ = route::user;
  typename Pool::lease pipe_;  // route::relay: the pool's pipe, and the bytes in it
  buffer buf_;                 // route::user: the buffer, and the bytes in it
  const char* why_ = "";         // why route_ is user (when it is)
  bool adaptive_ = false;        // a relay that may leave its pipe and take one again
  bool pipe_end_ready_ = false;  // route::direct: the pipe end was ready, and no byte moved since
  bool moved_any_ = false;       // route::copy_range: a call has copied bytes
  bool trust_short_ = false;     // a short read means src is empty (route_settings::short_read_drains)
};

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_MOVER_HPP_
