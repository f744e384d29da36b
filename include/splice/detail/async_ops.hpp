// SPDX-License-Identifier: MIT
// The engine behind splice::async_copy and splice::async_proxy: one implementation for standalone
// asio and Boost.Asio, written against a small traits type Net that each public header defines
// (splice_lib::asio_net in <splice/asio.hpp>, splice_lib::boost_asio_net in <splice/boost_asio.hpp>).
#ifndef SPLICE_DETAIL_ASYNC_OPS_HPP_
#define SPLICE_DETAIL_ASYNC_OPS_HPP_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "../splice.hpp"

namespace splice_lib::detail {

/// relay_op is one async_copy (Result = result: a -> b) or one async_proxy (Result =
/// proxy_result: a -> b and b -> a), each direction a Copier driven by asio waits.
///
/// Every step runs on strand_, a strand of a's executor: the directions of a proxy never run at
/// the same time, and a wait's completion never runs before the code that queued it has finished.
/// A direction advances its copier, then acts on the step it returns: read and write queue one
/// async_wait, either queues both (the first to complete cancels the other), again posts the
/// direction to the strand, done ends it. The operation completes, on the handler's associated
/// executor, only once every wait, post and timer it started has come back, so it never leaves a
/// wait of its own queued on the caller's sockets. The handler holds the op through shared_ptrs in
/// those waits and posts; the caller's cancellation slot holds only a weak_ptr.
template <class Net, class Result, class Copier, class Sys, class A, class B, class Handler>
class relay_op : public std::enable_shared_from_this<relay_op<Net, Result, Copier, Sys, A, B, Handler>> {
  using error_code = typename Net::error_code;
  using cancellation_type = typename Net::cancellation_type;
  using clock = std::chrono::steady_clock;
  static constexpr bool both_ways = std::is_same_v<Result, proxy_result>;

 public:
  relay_op(Handler handler, A& a, B& b, std::uint64_t limit, const proxy_options& opt, const Sys& sys)
      : handler_(std::move(handler)),
        work_(Net::work_guard(Net::associated_executor(handler_, a.get_executor()))),
        strand_(Net::make_strand(a.get_executor())), a_(a), b_(b), sys_(sys), idle_(opt.idle_timeout),
        nodelay_(both_ways && opt.nodelay) {
    dir_[0].copier.emplace(b.native_handle(), a.native_handle(), limit, opt.copy, sys);
    dir_[0].ended = false;
    if constexpr (both_ways) {
      dir_[1].copier.emplace(a.native_handle(), b.native_handle(), no_limit, opt.copy, sys);
      dir_[1].ended = false;
      if (idle_.count() >= 0) timer_.emplace(a.get_executor());
    }
  }

  /// start connects the caller's cancellation slot and posts the first step, so the handler never
  /// runs inside the initiating call.
  void start() {
    auto slot = Net::associated_slot(handler_);
    if (slot.is_connected()) slot.template emplace<cancel_forwarder>(this->weak_from_this());
    Net::post(strand_, [self = this->shared_from_this()] { self->begin(); });
  }

 private:
  // wait_slot is one async_wait on one fd, with its own cancellation signal.
  struct wait_slot {
    typename Net::cancellation_signal signal;
    bool pending = false;  // queued, and its handler has not run yet
    bool ours = false;     // cancelled by this op: its operation_aborted is no error
  };
  struct direction {
    std::optional<Copier> copier;
    wait_slot read, write;  // on src, on dst
    bool posted = false;    // a step::again post is queued
    bool ended = true;      // the copier is done (or absent), its result final
  };

  // cancel_forwarder sits in the caller's cancellation slot and may be called on any thread: it
  // only records the request and hands it to the strand. The weak_ptr lets it outlive the op.
  struct cancel_forwarder {
    explicit cancel_forwarder(std::weak_ptr<relay_op> p) noexcept : op(std::move(p)) {}
    std::weak_ptr<relay_op> op;
    void operator()(cancellation_type type) const {
      if (auto p = op.lock()) {
        p->cancel_requested_.fetch_or(static_cast<unsigned>(type));
        Net::post(p->strand_, [p] {
          if (p->done_) return;
          if (p->cancel_due()) p->stop_all(aborted(), "cancel");
          p->maybe_complete();
        });
      }
    }
  };

  static std::error_code aborted() { return Net::to_std(Net::aborted()); }

  template <class F>
  void with_src(int i, F f) {
    if (i == 0) f(a_);
    else f(b_);
  }
  template <class F>
  void with_dst(int i, F f) {
    if (i == 0) f(b_);
    else f(a_);
  }

  // begin runs first on the strand: the copier needs O_NONBLOCK fds, and asio's own
  // native_non_blocking keeps the user-visible non_blocking() mode as the caller set it. A proxy
  // sets TCP_NODELAY as splice::proxy does (proxy_options::nodelay).
  void begin() {
    error_code ec;
    a_.native_non_blocking(true, ec);
    if (!ec) b_.native_non_blocking(true, ec);
    const int one = 1;
    for (int fd : {a_.native_handle(), b_.native_handle()})
      if (nodelay_) sys_.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly off TCP
    if (ec) {
      stop_all(Net::to_std(ec), "fcntl");
    } else {
      if (timer_) arm_timer(last_active_ = clock::now());
      for (int i = 0; i < 2; ++i) resume(i);
    }
    maybe_complete();
  }

  // resume advances direction i once and acts on the step. A closed socket is never advanced: its
  // fd number may already belong to someone else.
  void resume(int i) {
    direction& d = dir_[i];
    if (d.ended) return;
    if (!a_.is_open() || !b_.is_open()) return stop_all(aborted(), "close");
    if (cancel_due()) return stop_all(aborted(), "cancel");
    const step s = d.copier->advance();
    if (s == step::done) return end(i);
    if (cancel_due()) return stop_all(aborted(), "cancel");
    switch (s) {
      case step::again:  // more is ready: let the executor run other work first
        d.posted = true;
        Net::post(strand_, [self = this->shared_from_this(), i] {
          self->dir_[i].posted = false;
          self->touch();
          self->resume(i);
          self->maybe_complete();
        });
        return;
      case step::read:
        return wait(i, true, false);
      case step::write:
        return wait(i, false, true);
      default:  // step::either
        return wait(i, true, true);
    }
  }

  // wait queues the waits a step asks for. A readiness edge that another thread of the io_context
  // takes between the copier's EAGAIN and the queuing of the wait is not lost, although asio's
  // async_wait is not speculative and its reactor, finding no wait queued, drops that edge: when
  // a wait is queued on an fd with no operation of its kind queued, the reactor re-arms the fd
  // (epoll_ctl(EPOLL_CTL_MOD) in epoll_reactor::start_op since asio 1.4.7, kevent(EV_ADD) on
  // kqueue; the select and io_uring backends are level-triggered), and the kernel reports a ready
  // fd again. The test "a readiness edge another thread takes before the wait is queued..." loses
  // the wakeup without that re-arm. So a wait costs no system call of this op's own.
  void wait(int i, bool read, bool write) {
    direction& d = dir_[i];
    if (read) with_src(i, [&](auto& s) { start_wait(i, d.read, s, s.wait_read); });
    if (write) with_dst(i, [&](auto& s) { start_wait(i, d.write, s, s.wait_write); });
  }

  template <class Stream>
  void start_wait(int i, wait_slot& w, Stream& s, typename Stream::wait_type type) {
    w.pending = true;
    s.async_wait(type, Net::bind_cancellation_slot(
                           w.signal.slot(), Net::bind_executor(strand_, [self = this->shared_from_this(), i,
                                                                         &w](const error_code& ec) {
                             self->on_wait(i, w, ec);
                           })));
  }

  // cancel cancels one queued wait of this op through its own slot; socket.cancel() would cancel
  // the other direction's waits, and the caller's operations, too.
  void cancel(wait_slot& w) {
    if (!w.pending || w.ours) return;
    w.ours = true;
    w.signal.emit(cancellation_type::total);
  }

  // on_wait: a readiness (or a wait this op cancelled) advances the direction once both of its
  // waits are back; an operation_aborted it did not cause (socket cancel() or close()) or any
  // other error ends the whole operation.
  void on_wait(int i, wait_slot& w, const error_code& ec) {
    direction& d = dir_[i];
    w.pending = false;
    const bool ours = std::exchange(w.ours, false);
    if (!d.ended) {
      if (ec && !(ours && ec == Net::aborted())) {
        stop_all(Net::to_std(ec), "async_wait");
      } else {
        touch();
        wait_slot& other = &w == &d.read ? d.write : d.read;
        if (other.pending) cancel(other);  // step::either: the first readiness wins
        else resume(i);
      }
    }
    maybe_complete();
  }

  // end: a direction's copier is done. End of file is passed on with a half-close (proxy only);
  // an error ends the other direction with operation_canceled, as splice::proxy does.
  void end(int i) {
    direction& d = dir_[i];
    d.ended = true;
    const result& r = d.copier->result();
    if (r.error) {
      if (!error_) error_ = r.error, op_ = r.op;
      stop_all(std::make_error_code(std::errc::operation_canceled), "proxy");
    } else if (both_ways) {
      sys_.shutdown(d.copier->dst(), SHUT_WR);
    }
  }

  // stop_all ends every direction still running with ec, and cancels every wait and the timer.
  // The first error of the operation is kept.
  void stop_all(std::error_code ec, const char* op) {
    if (!error_) error_ = ec, op_ = op;
    for (direction& d : dir_) {
      if (!d.ended) d.copier->stop(ec, op), d.ended = true;
      cancel(d.read);
      cancel(d.write);
    }
    if (timer_pending_) timer_->cancel();
  }

  // cancel_due: terminal cancellation is honoured at once; partial and total only while no
  // direction holds bytes taken from src, so that nothing is lost and src can be read on from
  // where the copy stopped.
  bool cancel_due() const {
    const unsigned t = cancel_requested_.load(std::memory_order_acquire);
    if (t & static_cast<unsigned>(cancellation_type::terminal)) return true;
    if (!(t & static_cast<unsigned>(cancellation_type::partial | cancellation_type::total))) return false;
    return std::all_of(std::begin(dir_), std::end(dir_),
                       [](const direction& d) { return d.ended || d.copier->held() == 0; });
  }

  void touch() {
    if (timer_) last_active_ = clock::now();
  }

  // The idle timer is armed for the deadline the last readiness implies and re-armed when it
  // fires early, rather than moved on every readiness.
  void arm_timer(clock::time_point from) {
    timer_pending_ = true;
    timer_->expires_at(from + idle_);
    timer_->async_wait(Net::bind_executor(strand_, [self = this->shared_from_this()](const error_code&) {
      self->timer_pending_ = false;
      if (!self->dir_[0].ended || !self->dir_[1].ended) {
        if (clock::now() - self->last_active_ >= self->idle_) {
          self->stop_all(std::make_error_code(std::errc::timed_out), "idle");
        } else {
          self->arm_timer(self->last_active_);
        }
      }
      self->maybe_complete();
    }));
  }

  // maybe_complete calls the handler once nothing of this op is queued anywhere.
  void maybe_complete() {
    const auto idle = [](const direction& d) { return d.ended && !d.posted && !d.read.pending && !d.write.pending; };
    if (done_ || timer_pending_ || !std::all_of(std::begin(dir_), std::end(dir_), idle)) return;
    done_ = true;
    Result r;
    if constexpr (both_ways) {
      r.a_to_b = dir_[0].copier->result();
      r.b_to_a = dir_[1].copier->result();
      r.error = error_;
      r.op = error_ ? op_ : "";
    } else {
      r = dir_[0].copier->result();
    }
    const error_code ec = Net::from_std(r.error);
    Net::dispatch(work_.get_executor(), [h = std::move(handler_), ec, r]() mutable { std::move(h)(ec, r); });
    work_.reset();
  }

  Handler handler_;
  decltype(Net::work_guard(Net::associated_executor(std::declval<Handler&>(), std::declval<A&>().get_executor())))
      work_;
  decltype(Net::make_strand(std::declval<A&>().get_executor())) strand_;
  A& a_;
  B& b_;
  Sys sys_;
  direction dir_[2];
  std::optional<typename Net::template timer<typename A::executor_type>> timer_;
  std::chrono::milliseconds idle_;
  bool nodelay_;
  clock::time_point last_active_{};
  std::atomic<unsigned> cancel_requested_{0};
  std::error_code error_;
  const char* op_ = "";
  bool timer_pending_ = false, done_ = false;
};

template <class Net, class Result, class Copier, class Sys>
struct initiate_relay {
  template <class Handler, class A, class B>
  void operator()(Handler&& handler, A* a, B* b, std::uint64_t limit, const proxy_options& opt, const Sys& sys) const {
    using op = relay_op<Net, Result, Copier, Sys, A, B, std::decay_t<Handler>>;
    std::make_shared<op>(std::forward<Handler>(handler), *a, *b, limit, opt, sys)->start();
  }
};

/// async_relay starts a relay_op over a and b. Copier is splice_lib::copier or, in tests, any type
/// with its constructor, advance(), held(), stop(), result(), src() and dst().
template <class Net, class Result, template <class> class Copier, class Sys, class A, class B, class Token>
decltype(auto) async_relay(A& a, B& b, std::uint64_t limit, const proxy_options& opt, Sys sys, Token&& token) {
  return Net::template initiate<void(typename Net::error_code, Result)>(
      initiate_relay<Net, Result, Copier<Sys>, Sys>{}, token, &a, &b, limit, opt, std::move(sys));
}

/// async_ops_for<Net> is what async_ops<Stream> is for every stream type of one framework.
template <class Net>
struct async_ops_for {
  using net = Net;

  template <class Dst, class Src, class Token>
  static decltype(auto) copy(Dst& dst, Src& src, Token&& token) {
    return copy(dst, src, no_limit, options{}, system_calls{}, std::forward<Token>(token));
  }
  template <class Dst, class Src, class Token>
  static decltype(auto) copy(Dst& dst, Src& src, std::uint64_t limit, Token&& token) {
    return copy(dst, src, limit, options{}, system_calls{}, std::forward<Token>(token));
  }
  template <class Dst, class Src, class Token>
  static decltype(auto) copy(Dst& dst, Src& src, std::uint64_t limit, const options& opt, Token&& token) {
    return copy(dst, src, limit, opt, system_calls{}, std::forward<Token>(token));
  }
  template <class Dst, class Src, class Sys, class Token>
  static decltype(auto) copy(Dst& dst, Src& src, std::uint64_t limit, const options& opt, Sys sys, Token&& token) {
    static_assert(std::is_same_v<typename async_ops<Dst>::net, Net>, "dst and src must belong to one framework");
    proxy_options p;
    p.copy = opt;
    return async_relay<Net, result, copier>(src, dst, limit, p, std::move(sys), std::forward<Token>(token));
  }

  template <class A, class B, class Token>
  static decltype(auto) proxy(A& a, B& b, Token&& token) {
    return proxy(a, b, proxy_options{}, system_calls{}, std::forward<Token>(token));
  }
  template <class A, class B, class Token>
  static decltype(auto) proxy(A& a, B& b, const proxy_options& opt, Token&& token) {
    return proxy(a, b, opt, system_calls{}, std::forward<Token>(token));
  }
  template <class A, class B, class Sys, class Token>
  static decltype(auto) proxy(A& a, B& b, const proxy_options& opt, Sys sys, Token&& token) {
    static_assert(std::is_same_v<typename async_ops<B>::net, Net>, "a and b must belong to one framework");
    return async_relay<Net, proxy_result, copier>(a, b, no_limit, opt, std::move(sys), std::forward<Token>(token));
  }
};

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_ASYNC_OPS_HPP_
