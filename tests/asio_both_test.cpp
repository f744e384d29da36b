// SPDX-License-Identifier: MIT
// One program using both frameworks: <splice/asio.hpp> and <splice/boost_asio.hpp> in one
// translation unit, each copying over its own io_context.
#include "splice/asio.hpp"
#include "splice/boost_asio.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <thread>

#include <catch2/catch.hpp>

#include "support.hpp"

namespace {
template <class Context, class Socket, class ErrorCode>
void copy_once(std::uint32_t seed) {
  Context ctx;
  auto in = test::make_tcp(), out = test::make_tcp();
  Socket src(ctx, Socket::protocol_type::v4(), in.b.release()), dst(ctx, Socket::protocol_type::v4(), out.a.release());
  const auto data = test::payload(1 << 20, seed);
  std::thread writer([&] {
    test::write_all(in.a.get(), data);
    ::shutdown(in.a.get(), SHUT_WR);
  });
  std::string got;
  std::thread reader([&] { got = test::read_all(out.b.get()); });
  splice::result res;
  splice::async_copy(dst, src, [&](ErrorCode ec, splice::result r) {
    CHECK_FALSE(ec);
    res = r;
    dst.close();
  });
  ctx.run();
  writer.join();
  reader.join();
  CHECK(res.bytes == data.size());
  CHECK((got == data));
}
}  // namespace

TEST_CASE("asio and Boost.Asio copies in one translation unit", "[asio]") {
  copy_once<asio::io_context, asio::ip::tcp::socket, std::error_code>(1);
  copy_once<boost::asio::io_context, boost::asio::ip::tcp::socket, boost::system::error_code>(2);
}
