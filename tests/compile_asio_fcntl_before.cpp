// SPDX-License-Identifier: MIT
// Compiles only if splice::async_copy, for both frameworks, and glibc's ::splice coexist with
// <fcntl.h> included first.
#include <fcntl.h>

#include <splice/asio.hpp>
#include <splice/boost_asio.hpp>

#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>

long compile_asio_fcntl_before(asio::ip::tcp::socket& a, boost::asio::ip::tcp::socket& b) {
  splice::async_copy(a, a, asio::detached);
  splice::async_proxy(b, b, splice::proxy_options{}, boost::asio::detached);
  return long(::splice(0, nullptr, 1, nullptr, 0, 0));
}
