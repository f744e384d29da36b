// SPDX-License-Identifier: MIT
// splice::async_copy and splice::async_proxy on Boost.Asio (Boost 1.77 and later, for per-operation
// cancellation; tested with 1.81): the operations <splice/asio.hpp> describes, with
// boost::system::error_code in the handler, from the same engine and the same adapter body
// (detail/asio_net.ipp). Both headers may be included in one translation unit.
//
//   co_await splice::async_proxy(client, upstream, opt, boost::asio::use_awaitable);
#ifndef SPLICE_BOOST_ASIO_HPP_
#define SPLICE_BOOST_ASIO_HPP_

#include <chrono>
#include <system_error>
#include <utility>

#include <boost/asio/associated_allocator.hpp>
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

#include "async_ops.hpp"
#include "splice.hpp"

namespace splice_lib::boost_asio_adapter {
namespace net = ::boost::asio;
using net_error_code = ::boost::system::error_code;
/// Keeps errno values in Boost's own categories, so that they compare equal to boost::asio::error
/// values.
inline net_error_code from_std_code(const std::error_code& ec) noexcept {
  if (ec.category() == std::system_category()) return {ec.value(), boost::system::system_category()};
  if (ec.category() == std::generic_category()) return {ec.value(), boost::system::generic_category()};
  return ec;
}
#include "detail/asio_net.ipp"
}  // namespace splice_lib::boost_asio_adapter

namespace splice_lib {
/// The engine's view of Boost.Asio.
using boost_asio_net = boost_asio_adapter::traits;
template <class Protocol, class Executor>
struct async_ops<boost::asio::basic_stream_socket<Protocol, Executor>> : async_ops_for<boost_asio_net> {};
template <class Executor>
struct async_ops<boost::asio::posix::basic_stream_descriptor<Executor>> : async_ops_for<boost_asio_net> {};
}  // namespace splice_lib

#endif  // SPLICE_BOOST_ASIO_HPP_
