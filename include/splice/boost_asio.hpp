// SPDX-License-Identifier: MIT
// splice::async_copy and splice::async_proxy on Boost.Asio (Boost 1.77 and later, for per-operation
// cancellation; tested with 1.81): the operations <splice/asio.hpp> describes, with
// boost::system::error_code in the handler, from the same engine (detail/async_ops.hpp). Both headers
// may be included in one translation unit.
//
//   co_await splice::async_proxy(client, upstream, opt, boost::asio::use_awaitable);
#ifndef SPLICE_BOOST_ASIO_HPP_
#define SPLICE_BOOST_ASIO_HPP_

#include <chrono>
#include <system_error>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/posix/basic_stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "detail/async_ops.hpp"
#include "splice.hpp"

namespace splice_lib {

/// boost_asio_net names what the engine (detail/async_ops.hpp) needs from Boost.Asio.
struct boost_asio_net {
  using error_code = boost::system::error_code;
  using cancellation_signal = boost::asio::cancellation_signal;
  using cancellation_type = boost::asio::cancellation_type;
  template <class Executor>
  using timer = boost::asio::basic_waitable_timer<std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>,
                                           Executor>;

  static error_code aborted() noexcept { return boost::asio::error::operation_aborted; }
  static std::error_code to_std(const error_code& ec) noexcept { return ec; }
  /// from_std keeps errno values in Boost's own categories, so that the handler's error_code
  /// compares equal to boost::asio::error values.
  static error_code from_std(const std::error_code& ec) noexcept {
    if (ec.category() == std::system_category()) return {ec.value(), boost::system::system_category()};
    if (ec.category() == std::generic_category()) return {ec.value(), boost::system::generic_category()};
    return ec;
  }

  template <class Signature, class Initiation, class Token, class... Args>
  static decltype(auto) initiate(Initiation&& init, Token& token, Args&&... args) {
    return boost::asio::async_initiate<Token, Signature>(std::forward<Initiation>(init), token,
                                                  std::forward<Args>(args)...);
  }
  template <class Executor>
  static auto make_strand(const Executor& ex) {
    return boost::asio::make_strand(ex);
  }
  template <class Executor, class F>
  static void post(const Executor& ex, F&& f) {
    boost::asio::post(ex, std::forward<F>(f));
  }
  template <class Executor, class F>
  static void dispatch(const Executor& ex, F&& f) {
    boost::asio::dispatch(ex, std::forward<F>(f));
  }
  template <class Executor, class F>
  static auto bind_executor(const Executor& ex, F&& f) {
    return boost::asio::bind_executor(ex, std::forward<F>(f));
  }
  template <class F>
  static auto bind_cancellation_slot(boost::asio::cancellation_slot slot, F&& f) {
    return boost::asio::bind_cancellation_slot(slot, std::forward<F>(f));
  }
  template <class Handler, class Executor>
  static auto associated_executor(const Handler& h, const Executor& ex) {
    return boost::asio::get_associated_executor(h, ex);
  }
  template <class Handler>
  static auto associated_slot(const Handler& h) {
    return boost::asio::get_associated_cancellation_slot(h);
  }
  template <class Executor>
  static auto work_guard(const Executor& ex) {
    return boost::asio::make_work_guard(ex);
  }
};

template <class Protocol, class Executor>
struct async_ops<boost::asio::basic_stream_socket<Protocol, Executor>> : detail::async_ops_for<boost_asio_net> {};
template <class Executor>
struct async_ops<boost::asio::posix::basic_stream_descriptor<Executor>> : detail::async_ops_for<boost_asio_net> {};

}  // namespace splice_lib

#endif  // SPLICE_BOOST_ASIO_HPP_
