// SPDX-License-Identifier: MIT
#include "splice/duplex.hpp"  // first: the header must be self-contained

#include <map>
#include <thread>

#include <netinet/tcp.h>
#include <poll.h>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

using test::payload;
using test::rig;

namespace {

/// drive runs d with a level-triggered poll loop of its own, as an event loop would, and returns
/// how many polls it made.
template <class D>
int drive(D& d) {
  int polls = 0;
  for (unsigned came = splice::ready::all;;) {
    const unsigned want = d.advance(came);
    if (d.done()) return polls;
    pollfd fds[2] = {{d.a(), 0, 0}, {d.b(), 0, 0}};
    if (want & splice::ready::a_in) fds[0].events |= POLLIN;
    if (want & splice::ready::a_out) fds[0].events |= POLLOUT;
    if (want & splice::ready::b_in) fds[1].events |= POLLIN;
    if (want & splice::ready::b_out) fds[1].events |= POLLOUT;
    REQUIRE((want != 0 || d.busy()));  // a duplex that is not done waits for something
    ++polls;
    REQUIRE(::poll(fds, 2, d.busy() ? 0 : -1) >= 0);
    came = splice::ready::of(true, unsigned(fds[0].revents)) | splice::ready::of(false, unsigned(fds[1].revents));
  }
}

/// The real system calls, counting the ones a duplex makes to learn and prepare its fds.
struct counting_calls : splice::system_calls {
  std::map<std::string, int>* calls;
  int fcntl(int fd, int cmd, int arg) {
    ++(*calls)[cmd == F_GETFL ? "F_GETFL" : cmd == F_SETFL ? "F_SETFL" : "fcntl"];
    return splice::system_calls::fcntl(fd, cmd, arg);
  }
  int getsockopt(int fd, int level, int name, void* v, socklen_t* len) {
    ++(*calls)["getsockopt"];
    return splice::system_calls::getsockopt(fd, level, name, v, len);
  }
  int setsockopt(int fd, int level, int name, const void* v, socklen_t len) {
    ++(*calls)[name == TCP_NODELAY ? "TCP_NODELAY" : "setsockopt"];
    return splice::system_calls::setsockopt(fd, level, name, v, len);
  }
};

}  // namespace

TEST_CASE("a duplex driven by an event loop of its own relays both ways, waiting for what it names", "[duplex]") {
  rig r;
  test::set_nonblocking(r.a());
  test::set_nonblocking(r.b());
  splice::duplex<> idle(r.a(), r.b());
  CHECK(idle.advance(splice::ready::all) == (splice::ready::a_in | splice::ready::b_in));  // nothing to read yet
  CHECK_FALSE(idle.busy());
  CHECK_FALSE(idle.done());
  idle.stop(std::make_error_code(std::errc::operation_canceled), "stop");
  CHECK(idle.done());
  CHECK(std::string(idle.result().op) == "stop");

  const auto up = payload(3 << 20, 31), down = payload(2 << 20, 32);
  splice::proxy_options o;
  o.copy.max_advance = GENERATE(std::size_t(64) << 10, std::size_t(1) << 20);  // busy, and not
  splice::duplex<> d(r.a(), r.b(), o);
  int polls = 0;
  const auto e = test::both_ways(r, up, down, [&] { polls = drive(d); });
  CHECK_FALSE(d.result().error);
  CHECK(d.result().a_to_b.bytes == up.size());
  CHECK(d.result().b_to_a.bytes == down.size());
  CHECK((e.got_up == up));
  CHECK((e.got_down == down));
  CHECK(polls > 0);
}

TEST_CASE("a duplex learns each fd once for both directions", "[duplex]") {
  rig r;
  test::set_nonblocking(r.a());  // b is blocking: the duplex makes it non-blocking
  std::map<std::string, int> calls;
  splice::duplex<counting_calls> d(r.a(), r.b(), {}, counting_calls{{}, &calls});
  d.advance(splice::ready::all);
  CHECK(calls["F_GETFL"] == 2);
  CHECK(calls["getsockopt"] == (splice_lib::detail::can_splice ? 2 : 0));  // SO_PROTOCOL once per fd (Linux)
  CHECK(calls["F_SETFL"] == 1);
  CHECK(calls["TCP_NODELAY"] == 2);
  CHECK((::fcntl(r.b(), F_GETFL) & O_NONBLOCK) != 0);
}

TEST_CASE("in a duplex the first error stops the other direction with operation_canceled", "[duplex]") {
  rig r;
  test::write_all(r.client(), payload(100000, 33));
  test::reset(r.back.b);  // the server resets
  splice::duplex<> d(r.a(), r.b());
  drive(d);
  const auto res = d.result();
  CHECK((res.error == std::errc::connection_reset || res.error == std::errc::broken_pipe));
  const bool up_failed = res.a_to_b.error == res.error;
  CHECK((up_failed ? res.b_to_a.error : res.a_to_b.error) == std::errc::operation_canceled);
  CHECK(std::string(up_failed ? res.b_to_a.op : res.a_to_b.op) == "proxy");
}

TEST_CASE("duplex::expire ends both directions with timed_out from idle", "[duplex]") {
  rig r;
  splice::duplex<> d(r.a(), r.b());
  d.advance(splice::ready::all);
  d.expire();
  CHECK(d.done());
  const auto res = d.result();
  CHECK(res.error == std::errc::timed_out);
  CHECK(std::string(res.op) == "idle");
  CHECK(res.a_to_b.error == std::errc::timed_out);
  CHECK(res.b_to_a.error == std::errc::timed_out);
}

TEST_CASE("a one-way duplex copies at most its limit and half-closes nothing", "[duplex]") {
  rig r;
  const auto data = payload(200000, 34);
  REQUIRE(test::write_all(r.client(), data));
  ::shutdown(r.client(), SHUT_WR);
  splice::duplex<> d(splice::one_way, r.a(), r.b(), 150000);
  std::string got;
  std::thread reader([&] { got = test::read_all(r.server(), 150000); });
  drive(d);
  reader.join();
  CHECK_FALSE(d.result().error);
  CHECK(d.result().a_to_b.bytes == 150000);
  CHECK(got == data.substr(0, 150000));
  test::set_nonblocking(r.server());
  char c;
  CHECK(::read(r.server(), &c, 1) < 0);  // no end of file: b was not shut down
  CHECK(errno == EAGAIN);
}

TEST_CASE("a duplex with options that would lose bytes refuses both directions before touching an fd", "[duplex]") {
  rig r;
  splice::proxy_options o;
  o.copy.max_splice = 0;
  splice::duplex<> d(r.a(), r.b(), o);
  CHECK(d.advance(splice::ready::all) == 0);
  CHECK(d.done());
  CHECK(d.result().error == splice::errc::invalid_options);
  CHECK(d.result().a_to_b.error == splice::errc::invalid_options);
  CHECK(d.result().b_to_a.error == splice::errc::invalid_options);
  CHECK_FALSE(::fcntl(r.a(), F_GETFL) & O_NONBLOCK);
}
