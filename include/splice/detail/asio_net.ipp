// SPDX-License-Identifier: MIT
// The one body of the asio adapter, for standalone asio and Boost.Asio alike: what the engine
// (async_relay.hpp) needs from the framework. No include guard and no includes: <splice/asio.hpp>
// and <splice/boost_asio.hpp> each include it inside a namespace of their own, after naming there
//   namespace net     the framework (::asio or ::boost::asio),
//   net_error_code    its error code type,
//   from_std_code     net_error_code from_std_code(const std::error_code&), keeping errno values in
//                     the framework's own categories, so that they compare equal to its error values.

/// traits names what the engine needs from the framework.
struct traits {
  using error_code = net_error_code;
  using cancellation_signal = net::cancellation_signal;
  using cancellation_type = net::cancellation_type;
  template <class Executor>
  using timer = net::basic_waitable_timer<std::chrono::steady_clock, net::wait_traits<std::chrono::steady_clock>, Executor>;
  template <class Executor>
  using descriptor = net::posix::basic_stream_descriptor<Executor>;

  static error_code aborted() noexcept { return net::error::operation_aborted; }
  static std::error_code to_std(const error_code& ec) noexcept { return ec; }
  static error_code from_std(const std::error_code& ec) noexcept { return from_std_code(ec); }

  template <class Signature, class Initiation, class Token, class... Args>
  static decltype(auto) initiate(Initiation&& init, Token& token, Args&&... args) {
    return net::async_initiate<Token, Signature>(std::forward<Initiation>(init), token, std::forward<Args>(args)...);
  }
  template <class Executor>
  static auto make_strand(const Executor& ex) {
    return net::make_strand(ex);
  }
  template <class Executor, class F>
  static void post(const Executor& ex, F&& f) {
    net::post(ex, std::forward<F>(f));
  }
  template <class Executor, class F>
  static void dispatch(const Executor& ex, F&& f) {
    net::dispatch(ex, std::forward<F>(f));
  }
  template <class Executor, class F>
  static auto bind_executor(const Executor& ex, F&& f) {
    return net::bind_executor(ex, std::forward<F>(f));
  }
  template <class F>
  static auto bind_cancellation_slot(net::cancellation_slot slot, F&& f) {
    return net::bind_cancellation_slot(slot, std::forward<F>(f));
  }
  template <class Handler, class Executor>
  static auto associated_executor(const Handler& h, const Executor& ex) {
    return net::get_associated_executor(h, ex);
  }
  template <class Handler>
  static auto associated_allocator(const Handler& h) {
    return net::get_associated_allocator(h);
  }
  template <class Handler>
  static auto associated_slot(const Handler& h) {
    return net::get_associated_cancellation_slot(h);
  }
  template <class Executor>
  static auto work_guard(const Executor& ex) {
    return net::make_work_guard(ex);
  }
};
