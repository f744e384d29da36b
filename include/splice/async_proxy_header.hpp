// SPDX-License-Identifier: MIT
// splice::async_read_proxy_header: the PROXY header reader (proxy_header_reader.hpp) driven by asio
// waits and a deadline timer, for standalone asio and Boost.Asio alike, against the traits type Net
// of detail/asio_net.ipp. Include <splice/asio.hpp> or <splice/boost_asio.hpp>, not this.
#ifndef SPLICE_ASYNC_PROXY_HEADER_HPP_
#define SPLICE_ASYNC_PROXY_HEADER_HPP_

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

#include "detail/sys.hpp"
#include "proxy_header_reader.hpp"
#include "proxy_protocol.hpp"
#include "result.hpp"
#include "system_calls.hpp"

namespace splice_lib {

/// header_op reads the PROXY header at the start of one stream socket: the reader's advance() on
/// the strand, an async_wait(wait_read) whenever it says step::read, and a timer for the deadline.
/// It completes, on the handler's associated executor and never inside the initiating call, with
/// void(error_code, proxy_header_reader<Sys>) once the wait and the timer it started have both come
/// back: the reader holds the header (its tlvs view the reader's bytes) or the error, as the
/// blocking read_proxy_header returns it. The reader takes nothing past the header, so whatever
/// follows is still in the socket for a splice.
///
/// Errors (the error_code equals reader.error()): errc::bad_proxy_header from "proxy header";
/// std::errc::timed_out from "deadline"; operation_aborted from "cancel" (any cancellation type,
/// honoured at once: the bytes taken are in the reader, so nothing is lost), "async_wait" (the
/// socket's cancel() or close()) or "close" (closed between waits); recv's errno from "recv".
/// The socket's non_blocking() mode is left alone: the reader passes MSG_DONTWAIT on every call.
template <class Net, class Sys, class Stream, class Handler>
class header_op : public std::enable_shared_from_this<header_op<Net, Sys, Stream, Handler>> {
  using error_code = typename Net::error_code;
  using cancellation_type = typename Net::cancellation_type;

 public:
  header_op(Handler handler, Stream& s, std::chrono::milliseconds timeout, const proxy_header_options& opt,
            const Sys& sys)
      : handler_(std::move(handler)), work_(Net::work_guard(Net::associated_executor(handler_, s.get_executor()))),
        strand_(Net::make_strand(s.get_executor())), s_(s), timer_(s.get_executor()),
        deadline_(detail::deadline_after(timeout)), reader_(std::in_place, s.native_handle(), opt, sys) {}

  /// start connects the caller's cancellation slot and posts the first step, so that the handler
  /// never runs inside the initiating call. The deadline counts from here.
  void start() {
    auto slot = Net::associated_slot(handler_);
    if (slot.is_connected()) slot.template emplace<cancel_forwarder>(this->weak_from_this());
    if (deadline_ != detail::no_deadline) {
      timer_pending_ = true;
      timer_.expires_at(deadline_);
      timer_.async_wait(Net::bind_executor(strand_, [self = this->shared_from_this()](const error_code& ec) {
        self->timer_pending_ = false;
        if (!ec) self->end(std::make_error_code(std::errc::timed_out), "deadline");
        self->maybe_complete();
      }));
    }
    Net::post(strand_, [self = this->shared_from_this()] {
      self->read_on();
      self->maybe_complete();
    });
  }

 private:
  // cancel_forwarder sits in the caller's cancellation slot and may run on any thread: it hands
  // the request to the strand. The weak_ptr lets it outlive the op.
  struct cancel_forwarder {
    explicit cancel_forwarder(std::weak_ptr<header_op> p) noexcept : op(std::move(p)) {}
    std::weak_ptr<header_op> op;
    void operator()(cancellation_type) const {
      if (auto p = op.lock()) {
        Net::post(p->strand_, [p] {
          p->end(Net::to_std(Net::aborted()), "cancel");
          p->maybe_complete();
        });
      }
    }
  };

  // read_on reads what has arrived and, if the header is not whole yet, waits until more does. A
  // closed socket is never read: its fd number may already belong to someone else.
  void read_on() {
    if (reader_->done()) return end({}, "");
    if (!s_.is_open()) return end(Net::to_std(Net::aborted()), "close");
    if (reader_->advance() == step::done) return end({}, "");
    wait_pending_ = true;
    s_.async_wait(Stream::wait_read,
                  Net::bind_cancellation_slot(
                      signal_.slot(), Net::bind_executor(strand_, [self = this->shared_from_this()](const error_code& ec) {
                        self->on_wait(ec);
                      })));
  }

  // on_wait: readiness reads on; a wait this op cancelled is no error of its own (the reason is
  // already in the reader); any other error ends the read with it.
  void on_wait(const error_code& ec) {
    wait_pending_ = false;
    if (!reader_->done()) {
      if (ec) end(Net::to_std(ec), "async_wait");
      else read_on();
    }
    maybe_complete();
  }

  // end stops the reader with ec from op unless it has ended (a falsy ec: it has), then cancels
  // the wait and the timer that are still queued.
  void end(std::error_code ec, const char* op) {
    if (ec) reader_->stop(ec, op);
    if (wait_pending_ && !wait_cancelled_) wait_cancelled_ = true, signal_.emit(cancellation_type::total);
    if (timer_pending_) timer_.cancel();
  }

  // maybe_complete calls the handler once the reader is done and nothing of this op is queued.
  void maybe_complete() {
    if (done_ || wait_pending_ || timer_pending_ || !reader_->done()) return;
    done_ = true;
    const error_code ec = Net::from_std(reader_->error());
    Net::dispatch(work_.get_executor(), [h = std::move(handler_), ec, r = std::move(*reader_)]() mutable {
      std::move(h)(ec, std::move(r));
    });
    work_.reset();
  }

  Handler handler_;
  decltype(Net::work_guard(Net::associated_executor(std::declval<Handler&>(), std::declval<Stream&>().get_executor())))
      work_;
  decltype(Net::make_strand(std::declval<Stream&>().get_executor())) strand_;
  Stream& s_;
  typename Net::template timer<typename Stream::executor_type> timer_;
  detail::clock_type::time_point deadline_;
  std::optional<proxy_header_reader<Sys>> reader_;
  typename Net::cancellation_signal signal_;
  bool wait_pending_ = false, wait_cancelled_ = false, timer_pending_ = false, done_ = false;
};

template <class Net, class Sys>
struct initiate_header_read {
  template <class Handler, class Stream>
  void operator()(Handler&& handler, Stream* s, std::chrono::milliseconds timeout, const proxy_header_options& opt,
                  const Sys& sys) const {
    using op = header_op<Net, Sys, Stream, std::decay_t<Handler>>;
    using alloc = typename std::allocator_traits<decltype(Net::associated_allocator(handler))>::template rebind_alloc<op>;
    std::allocate_shared<op>(alloc(Net::associated_allocator(handler)), std::forward<Handler>(handler), *s, timeout,
                             opt, sys)
        ->start();
  }
};

/// async_read_header starts a header_op on s; see header_op.
template <class Net, class Sys, class Stream, class Token>
decltype(auto) async_read_header(Stream& s, std::chrono::milliseconds timeout, const proxy_header_options& opt,
                                 Sys sys, Token&& token) {
  return Net::template initiate<void(typename Net::error_code, proxy_header_reader<Sys>)>(
      initiate_header_read<Net, Sys>{}, token, &s, timeout, opt, std::move(sys));
}

}  // namespace splice_lib

#endif  // SPLICE_ASYNC_PROXY_HEADER_HPP_
