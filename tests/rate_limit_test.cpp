// SPDX-License-Identifier: MIT
#include "splice/rate_limit.hpp"  // first: the header must be self-contained

#include <algorithm>
#include <memory>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using test::payload;

namespace {

constexpr bool kernel = splice_lib::detail::can_splice;

/// The real system calls, with a clock the test drives: no test here sleeps or reads the time.
struct clocked : splice::system_calls {
  std::shared_ptr<clock_type::time_point> t = std::make_shared<clock_type::time_point>(clock_type::time_point{} + 1h);
  clock_type::time_point now() { return *t; }
};

/// A poller over poll(2) whose wait_until moves the test's clock instead of sleeping.
struct clocked_poller {
  std::shared_ptr<clock_type::time_point> t;
  int sleeps = 0;
  splice::poll_poller inner;
  std::error_code wait_readable(int fd) { return inner.wait_readable(fd); }
  std::error_code wait_writable(int fd) { return inner.wait_writable(fd); }
  std::error_code wait_until(clock_type::time_point at) {
    ++sleeps;
    if (at > *t) *t = at;
    return {};
  }
};

double seconds(clock_type::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

TEST_CASE("a rate_limit grants its burst, then its rate, and says when to come back", "[rate]") {
  splice::rate_limit r(1'000'000, 100'000);  // 1 MB/s, 100 kB at once
  const auto t0 = clock_type::time_point{} + 1h;
  auto g = r.take(1 << 20, t0);
  CHECK(g.bytes == 100'000);  // full at first
  g = r.take(1 << 20, t0);
  CHECK(g.bytes == 0);
  CHECK(r.quantum() == 16384);  // a hundredth of a second's bytes is less than 16 KiB
  CHECK(seconds(g.retry_at - t0) == Approx(0.016384).epsilon(0.01));  // a quantum's worth
  CHECK(r.take(1 << 20, g.retry_at).bytes == 16384);
  CHECK(r.take(1 << 20, t0 + 1s).bytes == 100'000);  // refilled to the burst, no more
  r.give_back(5000);
  CHECK(r.take(1 << 20, t0 + 1s).bytes == 0);  // less than a quantum: wait for one
  CHECK(r.take(5000, t0 + 1s).bytes == 5000);  // unless less is asked
  CHECK(r.waits() == 2);
}

TEST_CASE("a shared rate_limit divides its burst among the copies that have data waiting", "[rate]") {
  splice::rate_limit r(100'000'000, 1 << 20);
  const auto t0 = clock_type::time_point{} + 1h;
  r.join(), r.join(), r.join(), r.join();
  CHECK(r.take(1 << 20, t0).bytes == (1u << 20) / 4);  // none gets more than its share at once
  r.leave(), r.leave(), r.leave();
  CHECK(r.take((3u << 20) / 4, t0).bytes == (3u << 20) / 4);  // alone now: the rest
}

TEST_CASE("a copier with a rate limit moves its chunks by the tokens and waits for more with step::later",
          "[rate][copier]") {
  splice::pipe_pool pool;
  splice::rate_limit r(1'000'000, 65536);
  splice::options opt;
  opt.pool = &pool;
  opt.rate = &r;
  opt.splice_after = 2;  // the adaptive rule is on: the limiter's short chunks must not turn it off
  test::relay rl;
  test::set_nonblocking(rl.src());
  test::set_nonblocking(rl.dst());
  const auto data = payload(1 << 20, 51);
  REQUIRE(test::write_all(rl.in.a.get(), data));  // queued in src
  ::shutdown(rl.in.a.get(), SHUT_WR);
  std::string got;
  std::thread reader([&] { got = test::read_all(rl.out.b.get()); });
  clocked sys;
  const auto start = *sys.t;
  splice::copier<clocked> c(rl.dst(), rl.src(), splice::no_limit, opt, sys);
  int laters = 0;
  for (splice::step s; (s = c.advance()) != splice::step::done;) {
    if (s == splice::step::later) {
      ++laters;
      CHECK(c.held() == 0);
      CHECK(pool.stats().in_use == 0);  // a copy waiting for tokens holds no pipe
      REQUIRE(c.wake_at() > *sys.t);
      *sys.t = c.wake_at();
    } else if (s == splice::step::write) {
      splice::poll_poller().wait_writable(rl.dst());
    } else if (s == splice::step::read) {
      splice::poll_poller().wait_readable(rl.src());
    }
  }
  ::shutdown(rl.dst(), SHUT_WR);
  reader.join();
  CHECK_FALSE(c.result().error);
  CHECK((got == data));
  // The first 64 KiB went at once, the rest at 1 MB/s of the test's clock.
  CHECK(seconds(*sys.t - start) == Approx(double(data.size() - 65536) / 1e6).epsilon(0.03));
  CHECK(laters > 30);
  CHECK(c.result().spliced == kernel);
  if (kernel) CHECK(pool.stats().spliced_bytes == data.size());  // never left the pipe
}

TEST_CASE("copy() with a rate limit sleeps with the poller's wait_until and keeps the rate", "[rate][copy]") {
  splice::rate_limit r(10'000'000, 1 << 20, nullptr);
  splice::options opt;
  opt.rate = &r;
  test::relay rl;
  const auto data = payload(8 << 20, 52);
  clocked sys;
  clocked_poller p{sys.t, 0, {}};
  const auto start = *sys.t;
  splice::result res;
  const auto got = test::through(rl, data, [&] { res = splice::copy(rl.dst(), rl.src(), splice::no_limit, p, opt, sys); });
  CHECK_FALSE(res.error);
  CHECK((got == data));
  CHECK(seconds(*sys.t - start) == Approx(double(data.size() - (1 << 20)) / 1e7).epsilon(0.03));
  CHECK(p.sleeps > 0);
}

TEST_CASE("a bucket with an outer one grants what both have", "[rate]") {
  splice::rate_limit total(1'000'000, 50'000);
  splice::rate_limit one(10'000'000, 1 << 20, &total);
  splice::options opt;
  opt.rate = &one;
  test::relay rl;
  const auto data = payload(500'000, 53);
  clocked sys;
  clocked_poller p{sys.t, 0, {}};
  const auto start = *sys.t;
  splice::result res;
  const auto got = test::through(rl, data, [&] { res = splice::copy(rl.dst(), rl.src(), splice::no_limit, p, opt, sys); });
  CHECK((got == data));
  CHECK(seconds(*sys.t - start) == Approx(double(data.size() - 50'000) / 1e6).epsilon(0.05));  // the outer bounds it
}

TEST_CASE("a duplex waiting for tokens names the time, and runs that direction once it has come", "[rate][duplex]") {
  test::rig r;
  test::set_nonblocking(r.a());
  test::set_nonblocking(r.b());
  splice::rate_limit up(100'000, 16384);
  splice::proxy_options o;
  o.copy.rate = &up;  // both directions share it here; only a -> b has data
  clocked sys;
  splice::duplex<clocked> d(r.a(), r.b(), o, sys);
  const auto data = payload(64 << 10, 54);
  REQUIRE(test::write_all(r.client(), data));
  test::wait_acked(r.client());
  test::set_nonblocking(r.server());
  std::string got;
  d.advance(splice::ready::all);  // the first 16 KiB
  CHECK(d.wake_at() > *sys.t);
  // Both directions wait for the bucket now (b -> a asked too, and has nothing yet): readiness alone
  // runs neither before its time.
  CHECK(d.advance(splice::ready::all) == 0);
  got += test::read_available(r.server());
  while (got.size() < data.size()) {
    REQUIRE(d.wake_at() != splice_lib::detail::no_deadline);
    *sys.t = d.wake_at();
    d.advance(0);
    splice::poll_poller(50ms).wait_readable(r.server());
    got += test::read_available(r.server());
  }
  CHECK((got == data));
  CHECK(d.result().a_to_b.bytes == data.size());
}

TEST_CASE("a duplex with rate_b_to_a bounds each direction by its own bucket", "[rate][duplex]") {
  test::rig r;
  test::set_nonblocking(r.a());
  test::set_nonblocking(r.b());
  splice::rate_limit up(100'000, 16384), down(100'000, 16384);
  splice::proxy_options o;
  o.copy.rate = &up;
  o.rate_b_to_a = &down;
  clocked sys;
  splice::duplex<clocked> d(r.a(), r.b(), o, sys);
  const auto data = payload(64 << 10, 55), back = payload(64 << 10, 56);
  REQUIRE(test::write_all(r.client(), data));
  REQUIRE(test::write_all(r.server(), back));
  test::wait_acked(r.client());
  test::wait_acked(r.server());
  d.advance(splice::ready::all);  // each direction takes its own burst: one bucket would give 16 KiB in all
  splice::poll_poller(50ms).wait_readable(r.server());
  splice::poll_poller(50ms).wait_readable(r.client());
  test::set_nonblocking(r.server());
  test::set_nonblocking(r.client());
  CHECK(test::read_available(r.server()).size() == 16384);
  CHECK(test::read_available(r.client()).size() == 16384);
  CHECK(up.waits() + down.waits() >= 2);  // both wait for their own tokens now
  CHECK(d.result().a_to_b.bytes == 16384);
  CHECK(d.result().b_to_a.bytes == 16384);
}

TEST_CASE("copies sharing an outer bucket each get at least half their fair share", "[rate]") {
  // Four copies, each with a bucket of its own drawing on one of 1 MB/s; each asks for a chunk at
  // its wake time, the earliest first, ties in order (the copy just granted asks first again).
  splice::rate_limit total(1'000'000, 1 << 20);
  struct copy {
    explicit copy(splice::rate_limit* t) : own(1'000'000'000, 1 << 20, t), meter(&own) {}
    splice::rate_limit own;
    splice_lib::detail::metered meter;
    clock_type::time_point at{};
    std::uint64_t got = 0;
  };
  clocked sys;
  std::vector<std::unique_ptr<copy>> copies;
  for (int i = 0; i < 4; ++i) copies.push_back(std::make_unique<copy>(&total)), copies.back()->at = *sys.t;
  const auto start = *sys.t, end = start + 10s;
  while (*sys.t < end) {
    copy* next = copies[0].get();
    for (auto& c : copies)
      if (c->at < next->at) next = c.get();
    *sys.t = std::max(*sys.t, next->at);
    const auto n = next->meter.allow(65536, sys);
    next->meter.used((long long)n, false);
    next->got += n;
    next->at = n ? *sys.t : next->meter.wake_at();
  }
  std::uint64_t all = 0;
  for (auto& c : copies) all += c->got;
  CHECK(double(all) == Approx(1e6 * 10 + (1 << 20)).epsilon(0.05));
  for (auto& c : copies) CHECK(double(c->got) >= 0.5 * double(all) / 4);
}
