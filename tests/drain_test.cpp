// SPDX-License-Identifier: MIT
#include "splice/drain.hpp"  // first: the header must be self-contained

#include <thread>

#include <poll.h>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using test::payload;

TEST_CASE("a drain is readable once requested, and a later request only brings the deadline nearer", "[drain]") {
  splice::drain d;
  REQUIRE(d.fd() >= 0);
  CHECK_FALSE(d.requested());
  pollfd p{d.fd(), POLLIN, 0};
  CHECK(::poll(&p, 1, 0) == 0);
  const auto t = std::chrono::steady_clock::now() + 10s;
  int calls = 0;
  struct counting : splice::drain::waiter {
    int* n;
  } w;
  w.n = &calls;
  w.fn = [](splice::drain::waiter* x) { ++*static_cast<counting*>(x)->n; };
  d.subscribe(w);
  d.request(t);
  CHECK(d.requested());
  CHECK(d.deadline() == t);
  CHECK(::poll(&p, 1, 0) == 1);
  d.request(t + 1s);  // farther: ignored
  CHECK(d.deadline() == t);
  d.request(t - 5s);
  CHECK(d.deadline() == t - 5s);
  CHECK(calls == 2);
  d.unsubscribe(w);
  d.request(t - 6s);
  CHECK(calls == 2);
  splice::drain late;
  late.request(t);
  counting w2;
  w2.n = &calls;
  w2.fn = w.fn;
  late.subscribe(w2);  // subscribed after the request: told at once
  CHECK(calls == 3);
  late.unsubscribe(w2);
}

TEST_CASE("proxy with a drain lets a transfer in flight finish exactly", "[drain][proxy]") {
  test::rig r;
  splice::drain d;
  d.request(std::chrono::steady_clock::now() + 1h);  // already asked: nothing is cut before the deadline
  splice::proxy_options o;
  o.drain = &d;
  const auto up = payload(4 << 20, 61), down = payload(1 << 20, 62);
  splice::proxy_result res;
  const auto e = test::both_ways(r, up, down, [&] { res = splice::proxy(r.a(), r.b(), o); });
  CHECK_FALSE(res.error);
  CHECK((e.got_up == up));
  CHECK((e.got_down == down));
}

TEST_CASE("proxy with a drain cuts what still runs at the deadline with timed_out from drain", "[drain][proxy]") {
  test::rig r;
  splice::drain d;
  splice::proxy_options o;
  o.drain = &d;
  const auto head = payload(100000, 63);
  splice::proxy_result res;
  std::thread relay([&] { res = splice::proxy(r.a(), r.b(), o); });
  REQUIRE(test::write_all(r.client(), head));  // a connection in flight: bytes, then no end
  CHECK(test::read_all(r.server(), head.size()) == head);
  d.request(std::chrono::steady_clock::now());  // the deadline is now: the proxy wakes and cuts
  relay.join();
  CHECK(res.error == std::errc::timed_out);
  CHECK(std::string(res.op) == "drain");
  CHECK(res.a_to_b.bytes == head.size());
}

TEST_CASE("duplex::drain cuts at its deadline and only brings it nearer", "[drain][duplex]") {
  test::rig r;
  splice::duplex<> dx(r.a(), r.b());
  dx.advance(splice::ready::all);
  const auto far = std::chrono::steady_clock::now() + 1h;
  dx.drain(far);
  CHECK(dx.wake_at() == far);
  dx.drain(far + 1h);
  CHECK(dx.wake_at() == far);
  dx.advance(0);
  CHECK_FALSE(dx.done());
  dx.drain(std::chrono::steady_clock::now());
  dx.advance(0);
  CHECK(dx.done());
  CHECK(dx.result().error == std::errc::timed_out);
  CHECK(std::string(dx.result().op) == "drain");
}

TEST_CASE("proxy with a drain wakes at once when a second request brings the deadline nearer", "[drain][proxy]") {
  test::rig r;
  splice::drain d;
  splice::proxy_options o;
  o.drain = &d;
  const auto head = payload(100000, 64);
  splice::proxy_result res;
  std::thread relay([&] { res = splice::proxy(r.a(), r.b(), o); });
  REQUIRE(test::write_all(r.client(), head));
  CHECK(test::read_all(r.server(), head.size()) == head);
  d.request(std::chrono::steady_clock::now() + 1h);  // the first signal: a far deadline
  std::this_thread::sleep_for(50ms);  // lets the proxy reach its poll; the checks below hold either way
  pollfd p{d.nearer_fd(), POLLIN, 0};
  CHECK(::poll(&p, 1, 0) == 0);
  const auto second = std::chrono::steady_clock::now();
  d.request(second);  // the second: now (it slept until the first deadline before)
  CHECK(::poll(&p, 1, 0) == 1);
  relay.join();
  CHECK(std::chrono::steady_clock::now() - second < 5s);
  CHECK(res.error == std::errc::timed_out);
  CHECK(std::string(res.op) == "drain");
  CHECK(res.a_to_b.bytes == head.size());
}
