// SPDX-License-Identifier: MIT
// The mirror (mirror.hpp) over real sockets, pipes and files: an exact copy when it keeps up, on
// every route; an exact prefix and a cut when it falls behind or fails, the primary exact
// throughout; the half-close at the end; replies discarded; no SIGPIPE death.
#include "splice/mirror.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <string>
#include <thread>

#include "splice/copy.hpp"
#include "mirror_support.hpp"
#include "support.hpp"

namespace {

using splice_lib::mirror;
using test::mirror_end;
using test::proxied;
constexpr bool kernel = splice_lib::detail::can_splice;

// A port where nothing listens: bound, then closed.
test::fd refused_socket() {
  test::fd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  test::check(::bind(l.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0, "bind");
  test::check(::getsockname(l.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0, "getsockname");
  l.reset();
  test::fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  const int rc = ::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), len);
  test::check(rc == 0 || errno == EINPROGRESS || errno == ECONNREFUSED, "connect");
  return s;
}

}  // namespace

TEST_CASE("a mirror that keeps up gets an exact copy, then a half-close", "[mirror]") {
  const bool userspace = GENERATE(false, true);
  const std::string up = test::payload(8 << 20, 1), down = test::payload(1 << 20, 2);
  mirror_end e;
  mirror m(e.near(), test::roomy(up.size()));
  std::string got;
  std::thread reader([&] { got = test::read_all(e.far()); });  // ends at the mirror's SHUT_WR
  const auto r = proxied(m, up, down, userspace);
  reader.join();
  CHECK(got == up);
  CHECK(m.bytes() == up.size());
  CHECK(m.status() == mirror::state::finished);
  CHECK(m.fd() >= 0);  // half-closed, still open to discard replies
  CHECK(r.a_to_b.spliced == (kernel && !userspace));
}

TEST_CASE("a file mirror captures the stream exactly", "[mirror]") {
  const bool userspace = GENERATE(false, true);
  const std::string up = test::payload(4 << 20, 3);
  test::fd file = test::make_file();
  mirror m(::dup(file.get()), test::roomy(up.size()));
  proxied(m, up, "", userspace);
  CHECK(m.status() == mirror::state::finished);
  CHECK(m.fd() < 0);  // a file is closed when finished
  ::lseek(file.get(), 0, SEEK_SET);
  CHECK(test::read_all(file.get()) == up);
}

TEST_CASE("a file -> socket copy (sendfile without a mirror) mirrors through the pipe", "[mirror]") {
  const std::string data = test::payload(6 << 20, 4);
  test::fd file = test::make_file();
  REQUIRE(test::write_all(file.get(), data));
  ::lseek(file.get(), 0, SEEK_SET);
  test::tcp_pair out = test::make_tcp();
  mirror_end e;
  mirror m(e.near(), test::roomy(data.size()));
  splice_lib::options opt;
  opt.mirror = &m;
  std::string got, copied;
  std::thread mirror_reader([&] { got = test::read_all(e.far()); });
  std::thread reader([&] { copied = test::read_all(out.b.get()); });
  splice_lib::poll_poller poller;
  const auto r = splice_lib::copy(out.a.get(), file.get(), splice_lib::no_limit, poller, opt);
  ::shutdown(out.a.get(), SHUT_WR);
  reader.join();
  mirror_reader.join();
  CHECK(!r.error);
  CHECK(copied == data);
  CHECK(got == data);
  CHECK(r.spliced == kernel);
}

TEST_CASE("a stalled mirror gets an exact prefix and is cut; the primary stays exact", "[mirror]") {
  const bool userspace = GENERATE(false, true);
  const std::string up = test::payload(16 << 20, 5);
  mirror_end e;
  test::set_buffers(e.p.a.get(), 16 << 10);
  test::set_buffers(e.far(), 16 << 10);
  mirror::config c;
  c.lag = 256 << 10;
  mirror m(e.near(), c);
  proxied(m, up, "x", userspace);  // nobody reads the mirror meanwhile
  CHECK(m.cut());
  CHECK(std::string(m.why()) == "lag");
  CHECK(m.fd() < 0);
  const std::string got = test::read_all(e.far());  // what it received before it was closed
  CHECK(got.size() == m.bytes());
  CHECK(got.size() < up.size());
  CHECK(got == up.substr(0, got.size()));
}

TEST_CASE("a mirror that refuses the connection changes nothing for the primary", "[mirror]") {
  const bool userspace = GENERATE(false, true);
  const std::string up = test::payload(2 << 20, 6), down = test::payload(100 << 10, 7);
  mirror m(refused_socket().release());
  proxied(m, up, down, userspace);
  CHECK(m.cut());
  CHECK(m.error() == std::errc::connection_refused);
  CHECK(m.bytes() == 0);
}

TEST_CASE("bytes the mirror sends back are read and discarded", "[mirror]") {
  const std::string up = test::payload(2 << 20, 9), back = test::payload(64 << 10, 10);
  mirror_end e;
  REQUIRE(test::write_all(e.far(), back));
  test::wait_acked(e.far());  // all of it waits at the mirror's socket before the relay starts
  mirror m(e.near(), test::roomy(up.size()));
  std::string got;
  std::thread reader([&] { got = test::read_all(e.far()); });
  proxied(m, up, "");
  reader.join();
  CHECK(got == up);
  CHECK(m.discarded() == back.size());
}

TEST_CASE("a finishing mirror that takes nothing is cut at its linger", "[mirror]") {
  const std::string up = test::payload(2 << 20, 11);
  mirror_end e;
  test::set_buffers(e.p.a.get(), 16 << 10);
  test::set_buffers(e.far(), 16 << 10);
  mirror::config c;
  c.lag = 8 << 20;  // never behind by the bound
  c.linger = std::chrono::milliseconds(0);
  mirror m(e.near(), c);
  proxied(m, up, "");
  CHECK(m.cut());
  CHECK(std::string(m.why()) == "linger");
  const std::string got = test::read_all(e.far());
  CHECK(got == up.substr(0, got.size()));
}

TEST_CASE("SIGPIPE from a mirror socket never kills the process", "[mirror]") {
  struct sigaction old {}, dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, &old);
  const std::string up = test::payload(1 << 20, 12);
  mirror_end e;
  const int near = e.near();
  ::shutdown(near, SHUT_WR);  // any splice or write into it now raises SIGPIPE
  mirror m(near);
  proxied(m, up, "");
  CHECK(m.cut());
  CHECK(m.error() == std::errc::broken_pipe);
  sigset_t pending;
  ::sigpending(&pending);
  CHECK(!sigismember(&pending, SIGPIPE));
  ::sigaction(SIGPIPE, &old, nullptr);
}
