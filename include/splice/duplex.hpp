// SPDX-License-Identifier: MIT
#ifndef SPLICE_DUPLEX_HPP_
#define SPLICE_DUPLEX_HPP_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "copier.hpp"
#include "error.hpp"
#include "mirror.hpp"
#include "options.hpp"
#include "ready.hpp"
#include "result.hpp"
#include "sigpipe.hpp"
#include "system_calls.hpp"

namespace splice_lib {


/// one_way makes a duplex that copies a to b only, as async_copy does: no half-close, no socket
/// options, at most a limit of bytes.
struct one_way_t {};
inline constexpr one_way_t one_way{};

/// duplex relays two connections a and b both ways, and owns the proxy's rules, once, for every
/// driver (proxy(), async_proxy, an event loop such as examples/epoll_proxy.cpp):
/// - before the first byte it learns both fds (one fcntl and one getsockopt each, shared by the two
///   directions), makes sockets and pipes non-blocking and sets TCP_NODELAY (proxy_options::nodelay);
/// - when a direction reaches end of file, the other side's write half is shut down (SHUT_WR), so
///   half-closed connections work, and the other direction goes on;
/// - the first error in either direction ends both: the other is stopped with
///   std::errc::operation_canceled from "proxy";
/// - a direction runs when what it waits for has come (advance's `came`), when it did its share of
///   a busy stream (step::again), or when its rate_limit has bytes again (wake_at()), and advance()
///   says what both wait for next;
/// - a direction's mirror (proxy_options::mirror_a_to_b, mirror_b_to_a) is serviced on every
///   advance() and when its ready bits come; done() waits for a finishing mirror and wake_at()
///   for its linger (mirror.hpp). Drivers wait on mirror_fd() for the mirror bits.
/// A driver waits for those bits (level- or edge-triggered: a direction waits only after EAGAIN),
/// calls advance() with what came, and ends the duplex itself for what only it can see: stop(), or
/// expire() for its idle timeout. Closes neither fd. A two-way duplex counts in the process's
/// metrics (metrics.hpp) as a connection, open from its construction until it is done or destroyed,
/// and its first error once; its copiers count the bytes. Copier is copier<Sys>, or (tests) a type
/// derived from it. Not thread-safe: one thread at a time.
template <class Sys = system_calls, class Copier = copier<Sys>>
class duplex {
 public:
  /// Relays a and b both ways.
  duplex(int a, int b, const proxy_options& opt = {}, Sys sys = {}) noexcept
      : sys_(sys), a_(a), b_(b), nodelay_(opt.nodelay), both_(true), ab_(b, a, no_limit, with(opt.copy, opt.mirror_a_to_b), sys),
        ba_(a, b, no_limit, with(reverse(opt), opt.mirror_b_to_a), sys) {
    init(opt.copy);
    if (metrics_) detail::add_count(detail::this_shard(), detail::opened, 1);
  }
  /// Copies at most limit bytes from a to b.
  duplex(one_way_t, int a, int b, std::uint64_t limit, const options& opt = {}, Sys sys = {}) noexcept
      : sys_(sys), a_(a), b_(b), nodelay_(false), both_(false), ab_(b, a, limit, opt, sys), ba_(a, b, 0, with(opt, nullptr), sys) {
    ba_.ended = true;  // never started
    init(opt);
  }
  duplex(const duplex&) = delete;
  duplex& operator=(const duplex&) = delete;
  /// A relay destroyed before it ended counts as closed in the metrics all the same.
  ~duplex() {
    if (metrics_ && both_ && !finished_) detail::add_count(detail::this_shard(), detail::closed, 1);
  }

  int a() const noexcept { return a_; }
  int b() const noexcept { return b_; }
  /// Returns whether both directions (one, made one_way) have ended and no mirror is finishing;
  /// result() is then final.
  bool done() const noexcept { return ab_.ended && ba_.ended && !finishing(ab_.m) && !finishing(ba_.m); }
  /// Returns the fd of the mirror of a -> b (or of b -> a), or -1: none, or closed.
  int mirror_fd(bool a_to_b) const noexcept {
    const mirror* m = a_to_b ? ab_.m : ba_.m;
    return m ? m->fd() : -1;
  }
  /// Returns whether a direction has more ready now (step::again): advance(0) again without waiting,
  /// after other ready work.
  bool busy() const noexcept { return (!ab_.ended && ab_.s == step::again) || (!ba_.ended && ba_.s == step::again); }
  /// Returns the time by which the driver must call advance() again whatever comes (no_deadline:
  /// none): a direction waiting for its rate_limit may go on then, or the drain deadline cuts it.
  std::chrono::steady_clock::time_point wake_at() const noexcept {
    auto t = cut_at_;
    for (const way* w : {&ab_, &ba_})
      if (!w->ended && w->s == step::later) t = std::min(t, w->c.wake_at());
    for (const way* w : {&ab_, &ba_})
      if (w->m) t = std::min(t, w->m->wake_at());
    return t;
  }
  /// Returns the bytes taken from a source and not yet written, in both directions.
  std::size_t held() const noexcept { return ab_.c.held() + (both_ ? ba_.c.held() : 0); }

  /// Runs the directions that `came` wakes (ready bits), and those that did their share last time;
  /// returns the ready bits both wait for now. The first call runs both. Blocks SIGPIPE meanwhile.
  unsigned advance(unsigned came) noexcept {
    sigpipe_scope scope(mask_sigpipe_);
    return advance(came, scope);
  }
  /// The same, for a caller that holds a sigpipe_scope in this thread across several advances.
  unsigned advance(unsigned came, sigpipe_scope& scope) noexcept {
    if (!started_) start();
    const auto now = wake_at() == detail::no_deadline ? detail::clock_type::time_point{} : sys_.now();
    if (now >= cut_at_) stop(std::make_error_code(std::errc::timed_out), "drain");
    if (came & ready::a_mark) ab_.c.mover_.mark_seen();
    if (came & ready::b_mark) ba_.c.mover_.mark_seen();
    run(ab_, came & ready::a_in, came & ready::b_out, now, scope);
    settle(ab_, b_, ba_);  // first: an error here stops the other before it runs
    run(ba_, came & ready::b_in, came & ready::a_out, now, scope);
    settle(ba_, a_, ab_);
    serve(ab_, came >> 4, scope);
    serve(ba_, came >> 6, scope);
    finish();
    return (ab_.ended ? 0 : bits(ab_.s, ready::a_in, ready::b_out)) | (ba_.ended ? 0 : bits(ba_.s, ready::b_in, ready::a_out)) |
           (ab_.m ? ab_.m->waits() << 4 : 0) | (ba_.m ? ba_.m->waits() << 6 : 0);
  }

  /// Ends both directions with ec from op (a driver's deadline, a cancellation); bytes held count
  /// as unsent. The first error of the duplex is kept.
  void stop(std::error_code ec, const char* op) noexcept {
    if (!error_) error_ = ec, op_ = op;
    for (way* w : {&ab_, &ba_}) {
      if (!w->ended) w->c.stop(ec, op), w->ended = true;
      if (w->m) w->m->stop();
    }
    finish();
  }
  /// Ends both directions for the driver's idle timeout: std::errc::timed_out from "idle".
  void expire() noexcept { stop(std::make_error_code(std::errc::timed_out), "idle"); }
  /// A graceful stop (drain.hpp): both directions go on until they end, and what is still running
  /// at cut_at ends with std::errc::timed_out from "drain". A nearer cut_at replaces a farther one.
  void drain(std::chrono::steady_clock::time_point cut_at) noexcept { cut_at_ = std::min(cut_at_, cut_at); }

  /// Returns what each direction did (b_to_a stays empty made one_way), and the first error.
  proxy_result result() const noexcept {
    proxy_result r;
    r.a_to_b = ab_.c.result();
    if (both_) r.b_to_a = ba_.c.result();
    r.error = error_;
    r.op = error_ ? op_ : "";
    return r;
  }

 private:
  struct way {
    way(int dst, int src, std::uint64_t limit, const options& o, const Sys& sys) noexcept
        : c(dst, src, limit, o, sys), m(o.mirror) {}
    Copier c;
    mirror* m;  // its mirror, or nullptr
    step s = step::again;  // what it waits for; again: nothing, run it
    bool ended = false;
  };

  // reverse is how b -> a copies: as a -> b, with its own rate_limit if it has one.
  static options reverse(const proxy_options& opt) noexcept {
    options o = opt.copy;
    if (opt.rate_b_to_a) o.rate = opt.rate_b_to_a;
    return o;
  }

  void init(const options& o) noexcept {
    mask_sigpipe_ = !(o.sigpipe_ignored && sigpipe_scope::ignored_by_host());
    valid_ = o.buffer_size && o.max_splice && o.max_advance;
    metrics_ = o.metrics;
    static_cast<copier<Sys>&>(ba_.c).way_ = detail::down_bytes;
    static_cast<copier<Sys>&>(ab_.c).owns_error_ = static_cast<copier<Sys>&>(ba_.c).owns_error_ = false;
  }

  // finish counts, once, when both directions have ended: the relay as closed, and its first error
  // by op (one per relay: a direction cut by the other's error, or both by a stop, count once).
  void finish() noexcept {
    if (finished_ || !done()) return;
    finished_ = true;
    if (!metrics_) return;
    detail::shard* sh = detail::this_shard();
    if (both_) detail::add_count(sh, detail::closed, 1);
    if (error_) detail::add_count(sh, detail::errors + detail::word_slot(op_, detail::error_ops, detail::error_op_count), 1);
  }

  // start learns both fds once and prepares them; a failure ends the duplex before a byte moves.
  void start() noexcept {
    started_ = true;
    const char* op = "options";
    std::error_code ec = valid_ ? std::error_code{} : make_error_code(errc::invalid_options);
    detail::end ea, eb;
    if (!ec) ec = prepare(a_, ea, op);
    if (!ec && b_ != a_) ec = prepare(b_, eb, op);
    if (b_ == a_) eb = ea;
    if (ec) return refuse(ec, op);
    begin(ab_, ea, eb);
    if (both_) begin(ba_, eb, ea);
  }

  // prepare inspects fd and makes it non-blocking (a file is always ready), with TCP_NODELAY.
  std::error_code prepare(int fd, detail::end& e, const char*& op) noexcept {
    if (auto ec = detail::inspect(sys_, fd, e, op)) return ec;
    if (!e.nonblocking && !e.always_ready) {
      if (detail::retry([&] { return sys_.fcntl(fd, F_SETFL, e.flags | O_NONBLOCK); }) < 0)
        return op = "fcntl", detail::last_error();
      e.nonblocking = true;
    }
    const int one = 1;
    // TCP by kind where the platform tells (Linux), any socket but a unix one elsewhere: it fails
    // harmlessly off TCP.
    if (nodelay_ && e.socket && e.kind != detail::end_kind::unix_stream) sys_.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return {};
  }

  void begin(way& w, const detail::end& src, const detail::end& dst) noexcept {
    const char* op = "";
    if (auto ec = static_cast<copier<Sys>&>(w.c).begin(src, dst, op)) w.c.stop(ec, op), w.s = step::done;
  }

  // refuse ends both directions with the same error, before they began.
  void refuse(std::error_code ec, const char* op) noexcept {
    error_ = ec, op_ = op;
    for (way* w : {&ab_, &ba_})
      if (!w->ended) w->c.stop(ec, op), w->ended = true;
  }

  // run advances a direction that what came wakes, that did its share (again), or whose rate
  // limit has bytes for it by now (later).
  static void run(way& w, bool src_came, bool dst_came, detail::clock_type::time_point now, sigpipe_scope& scope) noexcept {
    const bool reads = w.s == step::read || w.s == step::either, writes = w.s == step::write || w.s == step::either;
    const bool woken = w.s == step::again || (w.s == step::later && now >= w.c.wake_at());
    if (!w.ended && (woken || (reads && src_came) || (writes && dst_came))) w.s = w.c.advance(scope);
  }

  // settle handles a direction that has just ended: end of file is passed on with a half-close,
  // an error is kept as the first and stops the other direction.
  void settle(way& w, int dst, way& other) noexcept {
    if (w.s != step::done || w.ended) return;
    w.ended = true;
    if (!w.c.result().error) {
      if (both_) sys_.shutdown(dst, SHUT_WR);
      return;
    }
    if (!error_) error_ = w.c.result().error, op_ = w.c.result().op;
    if (!other.ended)
      other.c.stop(std::make_error_code(std::errc::operation_canceled), "proxy"), other.ended = true;
  }

  static options with(options o, mirror* m) noexcept { return o.mirror = m, o; }
  static bool finishing(const mirror* m) noexcept { return m && m->status() == mirror::state::finishing; }

  // serve gives a direction's mirror its turn with what came on its fd (bits 1 in, 2 out).
  void serve(way& w, unsigned came, sigpipe_scope& scope) noexcept {
    if (!w.m) return;
    w.m->service(sys_, came & 1, came & 2);
    if (w.m->take_raised()) scope.note(std::make_error_code(std::errc::broken_pipe));
  }

  static unsigned bits(step s, unsigned src_in, unsigned dst_out) noexcept {
    return (s == step::read || s == step::either ? src_in : 0) | (s == step::write || s == step::either ? dst_out : 0);
  }

  Sys sys_;
  int a_, b_;
  bool nodelay_, both_;
  way ab_, ba_;  // a -> b, and b -> a (never started, made one_way)
  std::error_code error_;
  const char* op_ = "";
  detail::clock_type::time_point cut_at_ = detail::no_deadline;  // drain()
  bool started_ = false, valid_ = true, mask_sigpipe_ = true;
  bool metrics_ = true, finished_ = false;  // options::metrics; finish() has counted
};

}  // namespace splice_lib

#endif  // SPLICE_DUPLEX_HPP_
