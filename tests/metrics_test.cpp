// SPDX-License-Identifier: MIT
#include "splice/metrics.hpp"  // first: the header must be self-contained

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <poll.h>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

using test::payload;

// The counters are the process's, so each test compares a snapshot before with one after: the
// suite runs one test at a time, and no other test leaves a copy running.

namespace {

/// delta is what changed between two snapshots, for the quantities the tests look at.
struct delta {
  splice::metrics before = splice::metrics::read(), after;
  void take() { after = splice::metrics::read(); }
  std::uint64_t up() const { return after.bytes_up - before.bytes_up; }
  std::uint64_t down() const { return after.bytes_down - before.bytes_down; }
  std::uint64_t spliced() const { return after.spliced_bytes - before.spliced_bytes; }
  std::uint64_t user(const char* why = "") const { return after.userspace(why) - before.userspace(why); }
  std::uint64_t errors(const char* op = "") const { return after.errors_of(op) - before.errors_of(op); }
  std::uint64_t opened() const { return after.connections_total - before.connections_total; }
  std::int64_t open() const { return std::int64_t(after.connections_open) - std::int64_t(before.connections_open); }
};

/// Copies data through a fresh relay (TCP in, TCP out) with options o; returns the copy's result.
splice::result copy_through(const std::string& data, const splice::options& o = {}) {
  test::relay r;
  splice::result res;
  splice::poll_poller poller;
  const auto got = test::through(r, data, [&] { res = splice::copy(r.dst(), r.src(), splice::no_limit, poller, o); });
  REQUIRE(got == data);
  return res;
}

}  // namespace

TEST_CASE("metrics count a copy's bytes up, spliced as the pool counts them", "[metrics]") {
  const auto pool_before = splice::pipe_pool::shared().stats();
  delta d;
  const auto data = payload(3 << 20, 1);
  const auto res = copy_through(data);
  d.take();
  const auto pool_after = splice::pipe_pool::shared().stats();
  CHECK(d.up() == data.size());
  CHECK(d.down() == 0);
  CHECK(d.spliced() + d.user() == data.size());
  CHECK(d.spliced() == pool_after.spliced_bytes - pool_before.spliced_bytes);
  CHECK(d.user() == pool_after.copied_bytes - pool_before.copied_bytes);
  CHECK(res.spliced == (d.spliced() > 0));
  CHECK(d.errors() == 0);
  CHECK(d.opened() == 0);  // a copy is no relay
}

TEST_CASE("metrics count bytes through user space by result::fallback's word", "[metrics]") {
  SECTION("option") {
    delta d;
    splice::options o;
    o.userspace = true;
    const auto res = copy_through(payload(200000, 2), o);
    d.take();
    CHECK(std::string(res.fallback) == "option");
    CHECK(d.user("option") == 200000);
    CHECK(d.user() == 200000);
    CHECK(d.spliced() == 0);
  }
  SECTION("fd pair: out of a unix socket") {
    auto [src_w, src] = test::make_unix();
    auto out = test::make_tcp();
    const auto data = payload(100000, 3);
    delta d;
    std::thread w([&, fd = src_w.get()] {
      test::write_all(fd, data);
      ::shutdown(fd, SHUT_WR);
    });
    std::string got;
    std::thread rd([&] { got = test::read_all(out.b.get()); });
    const auto res = splice::copy(out.a.get(), src.get());
    ::shutdown(out.a.get(), SHUT_WR);
    w.join();
    rd.join();
    d.take();
    CHECK(got == data);
    CHECK(std::string(res.fallback) == "fd pair");
    CHECK(d.user("fd pair") == data.size());
    CHECK(d.up() == data.size());
    CHECK(d.spliced() == 0);
  }
}

TEST_CASE("metrics count a proxy's connection and its bytes each way, exactly", "[metrics]") {
  test::rig r;
  const auto up = payload(1 << 20, 4), down = payload(700001, 5);
  delta d;
  splice::proxy_result res;
  std::int64_t open_meanwhile = -1;
  std::thread proxy([&] { res = splice::proxy(r.a(), r.b()); });
  // While the relay runs, it is open: the client's first bytes reach the server through it.
  test::write_all(r.client(), "x");
  char c = 0;
  REQUIRE(::read(r.server(), &c, 1) == 1);
  open_meanwhile = std::int64_t(splice::metrics::read().connections_open) - std::int64_t(d.before.connections_open);
  const auto e = test::both_ways(r, up, down, [] {});
  proxy.join();
  d.take();
  CHECK(open_meanwhile == 1);
  CHECK((e.got_up == up));
  CHECK((e.got_down == down));
  CHECK_FALSE(res.error);
  CHECK(d.up() == up.size() + 1);
  CHECK(d.down() == down.size());
  CHECK(d.spliced() + d.user() == up.size() + 1 + down.size());
  CHECK(d.opened() == 1);
  CHECK(d.open() == 0);
  CHECK(d.errors() == 0);
}

TEST_CASE("metrics count errors by op, a relay's once", "[metrics]") {
  SECTION("a copy into a reset peer: send") {
    test::relay r;
    splice::options o;
    o.userspace = true;
    test::reset(r.out.b);  // the reader resets
    test::write_all(r.in.a.get(), payload(1 << 20, 6));
    ::shutdown(r.in.a.get(), SHUT_WR);
    delta d;
    splice::poll_poller poller;
    const auto res = splice::copy(r.dst(), r.src(), splice::no_limit, poller, o);
    d.take();
    REQUIRE(res.error);
    CHECK(std::string(res.op) == "send");
    CHECK(d.errors("send") == 1);
    CHECK(d.errors() == 1);
  }
  SECTION("a relay's idle timeout: one error, from idle, for both directions") {
    test::rig r;
    splice::proxy_options o;
    o.idle_timeout = std::chrono::milliseconds(30);
    delta d;
    const auto res = splice::proxy(r.a(), r.b(), o);
    d.take();
    CHECK(std::string(res.op) == "idle");
    CHECK(d.errors("idle") == 1);
    CHECK(d.errors() == 1);
    CHECK(d.opened() == 1);
    CHECK(d.open() == 0);
  }
  SECTION("a reset in a relay: its op once, not the other direction's cancellation") {
    test::rig r;
    test::write_all(r.client(), payload(100000, 7));
    test::reset(r.back.b);
    delta d;
    const auto res = splice::proxy(r.a(), r.b());
    d.take();
    REQUIRE(res.error);
    CHECK(d.errors(res.op) == 1);
    CHECK(d.errors() == 1);
  }
  SECTION("an op off the list counts as other") {
    auto [rd, wr] = test::make_pipe();
    test::set_nonblocking(rd.get());
    auto out = test::make_tcp();
    test::set_nonblocking(out.a.get());
    delta d;
    splice::copier<> c(out.a.get(), rd.get());
    c.advance();
    c.stop(std::make_error_code(std::errc::timed_out), "my deadline");
    d.take();
    CHECK(d.errors("other") == 1);
    CHECK(d.errors() == 1);
  }
}

TEST_CASE("metrics count a relay destroyed before it ended as closed", "[metrics]") {
  test::rig r;
  delta d;
  {
    splice::duplex<> x(r.a(), r.b());
    x.advance(splice::ready::all);
    CHECK(std::int64_t(splice::metrics::read().connections_open) - std::int64_t(d.before.connections_open) == 1);
  }
  d.take();
  CHECK(d.opened() == 1);
  CHECK(d.open() == 0);
}

TEST_CASE("metrics count waits for the rate limit", "[metrics]") {
  test::relay r;
  test::set_nonblocking(r.src());
  test::set_nonblocking(r.dst());
  test::write_all(r.in.a.get(), payload(100000, 8));
  test::wait_acked(r.in.a.get());
  splice::rate_limit limit(1000, 16 << 10);  // the burst, then about a byte a millisecond
  splice::options o;
  o.rate = &limit;
  splice::copier<> c(r.dst(), r.src(), splice::no_limit, o);
  delta d;
  int laters = 0;
  for (int i = 0; i < 5; ++i) laters += c.advance() == splice::step::later;
  d.take();
  CHECK(laters > 0);
  CHECK(d.after.rate_waits - d.before.rate_waits == std::uint64_t(laters));
  CHECK(d.up() == c.result().bytes);
}

TEST_CASE("metrics keep the counts of a thread that has exited", "[metrics][threads]") {
  delta d;
  const auto data = payload(300000, 9);
  std::thread t([&] {
    splice::options o;
    o.userspace = true;
    copy_through(data, o);  // the copy runs on this thread: its counts are this thread's
  });
  t.join();
  d.take();
  CHECK(d.up() == data.size());
  CHECK(d.user("option") == data.size());

  // A count made by a thread_local destructor that runs after the thread's shard is gone (made
  // before the shard, so destroyed after it) goes to the retired sums.
  struct cuts_at_exit {
    ~cuts_at_exit() { splice::metrics::mirror_cut(); }
  };
  const auto cut_before = splice::metrics::read().mirrors_cut;
  std::thread u([] {
    thread_local cuts_at_exit late;
    (void)&late;
    splice::metrics::mirror_cut();  // makes the shard, after `late`
  });
  u.join();
  CHECK(splice::metrics::read().mirrors_cut - cut_before == 2);
}

TEST_CASE("metrics from many threads add up", "[metrics][threads]") {
  delta d;
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i)
    ts.emplace_back([] {
      for (int k = 0; k < 1000; ++k) splice::metrics::mirror_cut();
    });
  for (auto& t : ts) t.join();
  d.take();
  CHECK(d.after.mirrors_cut - d.before.mirrors_cut == 8000);
}

TEST_CASE("options::metrics off counts nothing", "[metrics]") {
  splice::proxy_options o;
  o.copy.metrics = false;
  test::rig r;
  delta d;
  const auto e = test::both_ways(r, payload(100000, 10), payload(5000, 11), [&] { splice::proxy(r.a(), r.b(), o); });
  d.take();
  CHECK(e.got_up.size() == 100000);
  CHECK(d.up() + d.down() + d.opened() + d.errors() == 0);
}

TEST_CASE("metrics report the pool's pipes and the budget left", "[metrics][pool]") {
  splice::pipe_pool::config cfg;
  cfg.max_bytes = std::size_t(4) << 20;
  splice::pipe_pool pool(cfg);
  auto m = splice::metrics::read(pool);
  CHECK(m.pipes_in_use == 0);
  CHECK(m.pipes_idle == 0);
  CHECK(m.pipe_budget_left == cfg.max_bytes);
  splice::options o;
  o.pool = &pool;
  copy_through(payload(1 << 20, 12), o);
  m = splice::metrics::read(pool);
  const auto s = pool.stats();
  CHECK(m.pipes_idle == s.idle);
  CHECK(m.pipes_in_use == 0);
  CHECK(m.pipe_budget_left == cfg.max_bytes - s.bytes_held);
  CHECK(m.prometheus().find("splice_pipe_budget_bytes " + std::to_string(m.pipe_budget_left) + "\n") != std::string::npos);
}

TEST_CASE("the Prometheus text is well-formed", "[metrics]") {
  splice::metrics::mirror_cut();
  copy_through(payload(10000, 13));
  const std::string text = splice::metrics::read().prometheus();
  REQUIRE(!text.empty());
  REQUIRE(text.back() == '\n');
  const std::regex help("# HELP (splice_[a-z_]+) [^\n]+"), type("# TYPE (splice_[a-z_]+) (counter|gauge)");
  const std::regex sample(R"re((splice_[a-z_]+)(\{([a-z_]+)="([^"\\]*)"\})? ([0-9]+|\+Inf))re");
  std::map<std::string, std::string> types;
  std::set<std::string> series;
  std::string helped, family;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    INFO(line);
    if (std::regex_match(line, m, help)) {
      CHECK(types.count(m[1]) == 0);  // one HELP per family, before its TYPE
      helped = m[1];
    } else if (std::regex_match(line, m, type)) {
      CHECK(m[1] == helped);
      family = m[1];
      types[family] = m[2];
      // Counters end in _total; byte quantities name their unit.
      CHECK((m[2] == "gauge" || family.size() > 6));
      if (m[2] == "counter") CHECK(family.compare(family.size() - 6, 6, "_total") == 0);
    } else {
      REQUIRE(std::regex_match(line, m, sample));
      CHECK(m[1] == family);  // samples follow their family's TYPE
      CHECK(series.insert(line.substr(0, line.rfind(' '))).second);  // no series twice
    }
  }
  for (const char* name : {"splice_connections_open", "splice_connections_total", "splice_bytes_total",
                           "splice_spliced_bytes_total", "splice_userspace_bytes_total", "splice_pipes",
                           "splice_pipe_budget_bytes", "splice_rate_waits_total", "splice_mirrors_cut_total",
                           "splice_errors_total"})
    CHECK(types.count(name) == 1);
  CHECK(types["splice_connections_open"] == "gauge");
  CHECK(types["splice_pipes"] == "gauge");
  CHECK(series.count("splice_bytes_total{direction=\"up\"}") == 1);
  CHECK(series.count("splice_userspace_bytes_total{reason=\"small writes\"}") == 1);
  CHECK(series.count("splice_pipes{state=\"in_use\"}") == 1);
  CHECK(series.count("splice_errors_total{op=\"splice\"}") == 1);
}
