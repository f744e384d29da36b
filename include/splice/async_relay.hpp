// SPDX-License-Identifier: MIT
// The engine behind splice::async_copy and splice::async_proxy: a duplex driven by asio waits, for
// standalone asio and Boost.Asio alike, against the traits type Net of detail/asio_net.ipp.
// Include <splice/asio.hpp> or <splice/boost_asio.hpp>, not this.
#ifndef SPLICE_ASYNC_RELAY_HPP_
#define SPLICE_ASYNC_RELAY_HPP_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include <fcntl.h>

#include "drain.hpp"
#include "duplex.hpp"
#include "options.hpp"
#include "result.hpp"
#include "system_calls.hpp"

namespace splice_lib {

/// relay_op is one async_copy (Result = result: a -> b) or one async_proxy (Result = proxy_result:
/// both ways): a duplex whose waits (a readable, a writable, b readable, b writable, and the same
/// for its two mirrors' fds: the bits of `ready`) are asio async_waits.
///
/// Every step runs on strand_, a strand of a's executor: the directions never run at the same time,
/// and a wait's completion never runs before the code that queued it has finished. After each
/// advance the op queues the waits the duplex asks for and cancels (through its own cancellation
/// signals) those it no longer asks for; a busy duplex is posted to the strand, and its wake_at()
/// (a rate limit, a drain) gets a timer. It completes, on the handler's associated executor, once
/// every wait, post and timer it started has come back. It is allocated with the handler's
/// associated allocator; waits and posts hold it through shared_ptrs, the caller's cancellation
/// slot and a drain only through weak_ptrs.
///
/// A readiness edge that another thread of the io_context takes between the copier's EAGAIN and the
/// queuing of the wait is not lost: asio's reactor re-arms an fd when a wait is queued with none of
/// its kind (epoll_ctl(EPOLL_CTL_MOD) in epoll_reactor::start_op), and the kernel reports a ready fd
/// again; the test "a readiness edge another thread takes..." loses the wakeup without it.
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
        strand_(Net::make_strand(a.get_executor())), a_(a), b_(b), wake_timer_(a.get_executor()), idle_(opt.idle_timeout),
        drain_(opt.drain) {
    if constexpr (both_ways) {
      d_.emplace(a.native_handle(), b.native_handle(), opt, sys);
      if (idle_.count() >= 0) timer_.emplace(a.get_executor());
    } else {
      d_.emplace(one_way, a.native_handle(), b.native_handle(), limit, opt.copy, sys);
    }
  }

  ~relay_op() { drain_ ? drain_->unsubscribe(hook_) : void(); }

  /// start connects the caller's cancellation slot and the drain, if any, and posts the first step,
  /// so the handler never runs inside the initiating call.
  void start() {
    auto slot = Net::associated_slot(handler_);
    if (slot.is_connected()) slot.template emplace<cancel_forwarder>(this->weak_from_this());
    Net::post(strand_, [self = this->shared_from_this()] { self->begin(); });
    if (drain_) hook_.op = this->weak_from_this(), drain_->subscribe(hook_);
  }

 private:
  // wait_slot is one async_wait, with its own cancellation signal.
  struct wait_slot {
    typename Net::cancellation_signal signal;
    bool pending = false;  // queued, and its handler has not run yet
    bool ours = false;     // cancelled by this op: its operation_aborted is no error
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
          if (p->cancel_due()) p->end(aborted(), "cancel");
          p->maybe_complete();
        });
      }
    }
  };

  // drain_hook hands a drain request (any thread) to the strand: the duplex takes its deadline.
  struct drain_hook : drain::waiter {
    drain_hook() noexcept { fn = &drain_hook::requested; }
    std::weak_ptr<relay_op> op;
    static void requested(drain::waiter* w) {
      if (auto p = static_cast<drain_hook*>(w)->op.lock()) {
        Net::post(p->strand_, [p] { p->d_->drain(p->drain_->deadline()), p->step(0), p->maybe_complete(); });
      }
    }
  };

  static std::error_code aborted() { return Net::to_std(Net::aborted()); }

  // begin runs first on the strand: asio's own native_non_blocking keeps the user-visible
  // non_blocking() mode as the caller set it, and the duplex then finds both fds non-blocking.
  void begin() {
    error_code ec;
    a_.native_non_blocking(true, ec);
    if (!ec) b_.native_non_blocking(true, ec);
    if (ec) {
      end(Net::to_std(ec), "fcntl");
    } else {
      if (timer_) arm_timer(last_active_ = clock::now());
      step(ready::all);
    }
    maybe_complete();
  }

  // step advances the duplex with what came, then queues what it waits for. A closed socket is
  // never advanced: its fd number may already belong to someone else.
  void step(unsigned came) {
    if (d_->done()) return;
    if (!a_.is_open() || !b_.is_open()) return end(aborted(), "close");
    if (cancel_due()) return end(aborted(), "cancel");
    want_ = d_->advance(came);
    if (d_->done()) return end({}, "");
    if (cancel_due()) return end(aborted(), "cancel");
    if (d_->busy() && !posted_) {  // more is ready: let the executor run other work first
      posted_ = true;
      Net::post(strand_, [self = this->shared_from_this()] {
        self->posted_ = false;
        self->touch();
        self->step(0);
        self->maybe_complete();
      });
    }
    for (unsigned k = 0; k < 2; ++k)  // a mirror that closed its fd: close the dup, which cancels its waits
      if (mirror_[k] && d_->mirror_fd(k == 0) < 0) cancel(slots_[4 + 2 * k]), cancel(slots_[5 + 2 * k]), mirror_[k].reset();
    for (unsigned i = 0; i < 8; ++i) {
      if ((want_ & (1u << i)) && !slots_[i].pending) start_wait(i);
      else if (!(want_ & (1u << i))) cancel(slots_[i]);
    }
    const auto at = d_->wake_at();
    if (at != detail::no_deadline && !wake_pending_) arm_wake(at);
    else if (wake_pending_ && at < wake_armed_) wake_timer_.cancel();  // its handler sets it again, nearer
  }

  // arm_wake sets the timer for the duplex's wake_at(): a direction waiting for its rate_limit
  // (step::later), or the drain's deadline.
  void arm_wake(clock::time_point at) {
    wake_pending_ = true;
    wake_armed_ = at;
    wake_timer_.expires_at(at);
    wake_timer_.async_wait(Net::bind_executor(strand_, [self = this->shared_from_this()](const error_code&) {
      self->wake_pending_ = false;
      self->touch();
      self->step(0);
      self->maybe_complete();
    }));
  }

  // start_wait queues the wait for ready bit 1 << i: a, b, then each mirror's fd; readable, writable.
  void start_wait(unsigned i) {
    if (i < 2) return queue(i, a_, i == 0 ? a_.wait_read : a_.wait_write);
    if (i < 4) return queue(i, b_, i == 2 ? b_.wait_read : b_.wait_write);
    auto& m = mirror_[(i - 4) / 2];
    const int fd = m ? 0 : ::fcntl(d_->mirror_fd(i < 6), F_DUPFD_CLOEXEC, 0);
    if (fd >= 0 && !m) m.emplace(a_.get_executor(), fd);
    fd < 0 ? end(detail::last_error(), "fcntl") : queue(i, *m, i % 2 == 0 ? m->wait_read : m->wait_write);
  }

  template <class Stream>
  void queue(unsigned i, Stream& s, typename Stream::wait_type type) {
    wait_slot& w = slots_[i];
    w.pending = true;
    auto done = [self = this->shared_from_this(), i](const error_code& ec) { self->on_wait(i, ec); };
    s.async_wait(type, Net::bind_cancellation_slot(w.signal.slot(), Net::bind_executor(strand_, std::move(done))));
  }

  // cancel cancels one queued wait of this op through its own slot; socket.cancel() would cancel
  // the other direction's waits, and the caller's operations, too.
  void cancel(wait_slot& w) {
    if (!w.pending || w.ours) return;
    w.ours = true;
    w.signal.emit(cancellation_type::total);
  }

  // on_wait: a readiness advances the duplex; a wait this op cancelled is queued again if the
  // duplex has come to want it since; an operation_aborted it did not cause (socket cancel() or
  // close()) or any other error ends the whole operation.
  void on_wait(unsigned i, const error_code& ec) {
    wait_slot& w = slots_[i];
    w.pending = false;
    const bool ours = std::exchange(w.ours, false);
    if (!d_->done()) {
      if (ec && !(ours && ec == Net::aborted())) {
        end(Net::to_std(ec), "async_wait");
      } else if (ec) {
        if (want_ & (1u << i)) start_wait(i);
      } else {
        touch();
        step(1u << i);
      }
    }
    maybe_complete();
  }

  // end stops the duplex with ec (if it has not ended) and cancels every wait and the timer.
  void end(std::error_code ec, const char* op) {
    if (!d_->done()) d_->stop(ec, op);
    want_ = 0;
    for (wait_slot& w : slots_) cancel(w);
    if (timer_pending_) timer_->cancel();
    if (wake_pending_) wake_timer_.cancel();
  }

  // cancel_due: terminal cancellation is honoured at once; partial and total only while no direction
  // holds bytes taken from src, so that nothing is lost and src can be read on where it stopped.
  bool cancel_due() const {
    const unsigned t = cancel_requested_.load(std::memory_order_acquire);
    if (t & static_cast<unsigned>(cancellation_type::terminal)) return true;
    if (!(t & static_cast<unsigned>(cancellation_type::partial | cancellation_type::total))) return false;
    return d_->held() == 0;
  }

  void touch() { timer_ ? void(last_active_ = clock::now()) : void(); }

  // The idle timer is armed for the deadline the last readiness implies and re-armed when it
  // fires early, rather than moved on every readiness.
  void arm_timer(clock::time_point from) {
    timer_pending_ = true;
    timer_->expires_at(from + idle_);
    timer_->async_wait(Net::bind_executor(strand_, [self = this->shared_from_this()](const error_code&) {
      self->timer_pending_ = false;
      if (!self->d_->done()) {
        if (clock::now() - self->last_active_ >= self->idle_) {
          self->d_->expire();
          self->end({}, "");
        } else {
          self->arm_timer(self->last_active_);
        }
      }
      self->maybe_complete();
    }));
  }

  // maybe_complete calls the handler once nothing of this op is queued anywhere.
  void maybe_complete() {
    const bool queued = posted_ || timer_pending_ || wake_pending_ ||
                        std::any_of(std::begin(slots_), std::end(slots_), [](const wait_slot& w) { return w.pending; });
    if (done_ || queued || !d_->done()) return;
    done_ = true;
    for (auto& m : mirror_) m.reset();
    Result r;
    if constexpr (both_ways) r = d_->result();
    else r = d_->result().a_to_b;
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
  std::optional<duplex<Sys, Copier>> d_;
  wait_slot slots_[8];  // for the ready bits a_in, a_out, b_in, b_out, then the mirrors'
  // A descriptor on a dup(2) of each mirror's fd, made at its first wait, closed (its waits
  // cancelled) once the mirror has closed its fd, or when the op completes.
  std::optional<typename Net::template descriptor<typename A::executor_type>> mirror_[2];
  unsigned want_ = 0;   // what the duplex waits for
  bool posted_ = false;
  std::optional<typename Net::template timer<typename A::executor_type>> timer_;  // the idle timeout
  typename Net::template timer<typename A::executor_type> wake_timer_;          // duplex::wake_at()
  clock::time_point wake_armed_{};
  bool wake_pending_ = false;
  std::chrono::milliseconds idle_;
  const drain* drain_;
  drain_hook hook_;
  clock::time_point last_active_{};
  std::atomic<unsigned> cancel_requested_{0};
  bool timer_pending_ = false, done_ = false;
};

}  // namespace splice_lib

#endif  // SPLICE_ASYNC_RELAY_HPP_
