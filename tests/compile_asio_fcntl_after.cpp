// SPDX-License-Identifier: MIT
// Compiles only if splice::async_copy, for both frameworks, and glibc's ::splice coexist with
// <fcntl.h> included last.
#include <splice/boost_asio.hpp>
#include <splice/asio.hpp>

#include <asio/detached.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <fcntl.h>

long compile_asio_fcntl_after(asio::posix::stream_descriptor& a, boost::asio::local::stream_protocol::socket& b) {
  splice::async_copy(a, a, 10, asio::detached);
  splice::async_proxy(b, b, boost::asio::detached);
  return long(::splice(0, nullptr, 1, nullptr, 0, SPLICE_F_NONBLOCK));
}
