// SPDX-License-Identifier: MIT
// splice::async_copy and splice::async_proxy on standalone asio (1.19 and later, for per-operation
// cancellation; tested with 1.22): the same engine as splice::proxy, a duplex (duplex.hpp), driven by
// the io_context instead of a blocking poll. <splice/boost_asio.hpp> is the same for Boost.Asio; both
// may be included in one translation unit.
//
//   co_await splice::async_copy(dst, src, asio::use_awaitable);                 // until end of file
//   co_await splice::async_copy(dst, src, limit, asio::use_awaitable);          // at most limit bytes
//   co_await splice::async_proxy(client, upstream, opt, asio::use_awaitable);   // both ways
//
// Streams: the framework's stream sockets (TCP, local stream) and posix::stream_descriptor (pipes);
// regular files are not supported. The operation sets native_non_blocking(true) on both, leaving the
// user-visible non_blocking() mode alone, and closes neither.
//
// async_copy(dst, src[, limit[, options[, sys]]], token) copies until end of file or limit bytes and
// completes with void(error_code, splice::result); async_proxy(a, b[, proxy_options[, sys]], token)
// relays both ways with half-close, idle timeout and TCP_NODELAY, as splice::proxy does, and
// completes with void(error_code, splice::proxy_result) when both directions have ended or at the
// first error. The error_code is the framework's (std::error_code here) and equals result.error:
// falsy at end of file or at the limit. result.bytes is exact also on error. Any completion token
// works: callbacks, use_awaitable, use_future, deferred, as_tuple. With use_awaitable alone an error
// throws and the result is lost; as_tuple(use_awaitable) keeps it.
//
// Cancellation, through the token's cancellation slot (bind_cancellation_slot, awaitable_operators):
// terminal cancellation is honoured at once; partial and total once nothing taken from src is held
// (copier::held() == 0), possibly after the bytes held have been written. The operation then
// completes with error::operation_aborted, bytes exact and what was held reported in unsent. A
// socket's cancel() or close() ends it the same way (op "async_wait"); a close() that comes while
// the operation is between waits ends it at its next step (op "close").
//
// Execution: every step runs on a strand of src's executor (async_copy) or a's (async_proxy), so the
// two directions of a proxy never race, on any number of threads; a copy yields to the executor after
// options::max_advance bytes. The handler runs on its associated executor, never inside the
// initiating call, after every wait the operation queued has come back. No thread of its own.
//
// Costs: one allocation per operation, with the handler's associated allocator; per wait, asio's own
// (an epoll_ctl that re-arms the fd, which also keeps a readiness edge from being lost on an
// io_context run by several threads; see async_relay.hpp) and one handler through the strand; the
// copier's system calls as in splice::copy.
#ifndef SPLICE_ASIO_HPP_
#define SPLICE_ASIO_HPP_

#include <chrono>
#include <system_error>
#include <utility>

#include <asio/associated_allocator.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/basic_stream_socket.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/posix/basic_stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include "async_ops.hpp"
#include "splice.hpp"

namespace splice_lib::asio_adapter {
namespace net = ::asio;
using net_error_code = ::asio::error_code;
inline net_error_code from_std_code(const std::error_code& ec) noexcept { return ec; }
#include "detail/asio_net.ipp"
}  // namespace splice_lib::asio_adapter

namespace splice_lib {
/// The engine's view of standalone asio.
using asio_net = asio_adapter::traits;
template <class Protocol, class Executor>
struct async_ops<asio::basic_stream_socket<Protocol, Executor>> : async_ops_for<asio_net> {};
template <class Executor>
struct async_ops<asio::posix::basic_stream_descriptor<Executor>> : async_ops_for<asio_net> {};
}  // namespace splice_lib

#endif  // SPLICE_ASIO_HPP_
