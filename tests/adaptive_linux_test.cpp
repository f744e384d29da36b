// SPDX-License-Identifier: MIT
// The rule that moves a socket-to-socket copy between its pipe and user space, driven through the
// seam: every byte is queued before a copy starts and the seam decides how much each splice takes,
// so each test takes the same route changes on every run.
#include <functional>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

using test::payload;
using test::relay;

namespace {

/// The real system calls, with the splices out of one fd capped by a schedule: cap(k) bytes for
/// the kth of them (0: as asked). A stream whose every byte is queued before the copy starts, read
/// through this, takes the same route changes on every run, whatever the scheduler does.
struct capped_drains : splice::system_calls {
  int src;
  std::function<std::size_t(int)> cap;
  int calls = 0;
  ssize_t splice(int in, int out, std::size_t n, unsigned flags) {
    if (in == src) {
      const std::size_t c = cap(++calls);
      if (c > 0 && n > c) n = c;
    }
    return splice::system_calls::splice(in, out, n, flags);
  }
};

struct adaptive_run {
  splice::result res;
  splice::pipe_pool::counters st;
};

// adaptive_run copies n queued bytes (all acknowledged, then end of file) through a pool made with
// cfg, with the splices out of src capped by cap, and checks that every byte arrived in order.
adaptive_run run_adaptive(std::size_t n, std::function<std::size_t(int)> cap, splice::pipe_pool::config cfg = {}) {
  splice::pipe_pool pool(cfg);
  relay r;
  test::set_buffers(r.src(), 1 << 20);
  const auto data = payload(n, 23);
  REQUIRE(test::write_all(r.in.a.get(), data));
  ::shutdown(r.in.a.get(), SHUT_WR);
  test::wait_acked(r.in.a.get());
  std::string got;
  std::thread reader([&] { got = test::read_all(r.out.b.get()); });
  splice::options opt;
  opt.pool = &pool;
  splice::poll_poller p;
  adaptive_run out;
  out.res = splice::copy(r.dst(), r.src(), splice::no_limit, p, opt, capped_drains{{}, r.src(), std::move(cap)});
  ::shutdown(r.dst(), SHUT_WR);
  reader.join();
  CHECK((got == data));
  CHECK(out.res.bytes == n);
  CHECK_FALSE(out.res.error);
  out.st = pool.stats();
  CHECK(out.st.copied_bytes + out.st.spliced_bytes == n);
  CHECK(out.st.in_use == 0);
  return out;
}

}  // namespace

TEST_CASE("a trickling stream leaves the pipe after 8 small splices", "[copy][adaptive]") {
  const auto r = run_adaptive(2000, [](int) { return 100; });
  {
    CHECK(r.st.spliced_bytes == 800);  // 8 splices of 100 bytes
    CHECK(r.st.copied_bytes == 1200);  // then one read takes the rest
    CHECK(r.st.created == 1);
    CHECK(r.st.idle == 1);  // the pipe went back to the pool empty
    CHECK(std::string(r.res.fallback) == "small writes");
  }
}

TEST_CASE("a slow stream takes the pipe again after two full reads", "[copy][adaptive]") {
  const std::size_t n = 256 << 10;
  const auto r = run_adaptive(n, [](int k) { return k <= 8 ? 100 : 0; });
  {
    CHECK(r.st.copied_bytes == 2 * (64u << 10));  // two full reads prove the stream fast
    CHECK(r.st.spliced_bytes == n - 2 * (64u << 10));
    CHECK(r.st.reused == 1);  // the same pipe, taken again from the pool
  }
}

TEST_CASE("a stream that slows down goes back to user space", "[copy][adaptive]") {
  const std::size_t n = 256 << 10;
  const auto r = run_adaptive(n, [](int k) { return k <= 3 ? std::size_t(64) << 10 : 100; });
  {
    CHECK(r.st.spliced_bytes == 3 * (64u << 10) + 8 * 100);
    CHECK(r.st.copied_bytes == n - r.st.spliced_bytes);
    CHECK(r.st.idle == 1);
  }
}

TEST_CASE("splices that fill a small pipe do not count as small", "[copy][adaptive]") {
  // Two-page pipes are what an unprivileged user gets past the per-user pipe budget.
  splice::pipe_pool::config cfg;
  cfg.pipe_size = 8192;
  const std::size_t n = 256 << 10;
  const auto r = run_adaptive(n, [](int) { return 0; }, cfg);
  CHECK(r.st.spliced_bytes == n);
  CHECK(std::string(r.res.fallback).empty());
}

namespace {
/// The real system calls; the first read gives a pipe back to the pool (another copy ending).
struct returns_pipe_on_read : splice::system_calls {
  splice::pipe_pool* pool;
  splice::pipe_lease* held;
  ssize_t read(int fd, void* b, std::size_t n) {
    if (*held) held->reset();
    return splice::system_calls::read(fd, b, n);
  }
};
}  // namespace

TEST_CASE("a copy refused a pipe takes one once the pool has one again", "[pool][adaptive]") {
  splice_lib::pipe_pool::config cfg;
  cfg.max_pipes = 1;
  splice_lib::pipe_pool pool(cfg);
  splice_lib::system_calls sys;
  const char* op = "";
  splice::pipe_lease other;  // another copy holds the only pipe
  REQUIRE_FALSE(pool.acquire(sys, other, op));
  test::relay r;
  test::set_buffers(r.src(), 1 << 20);
  const auto data = test::payload(512 << 10, 3);
  REQUIRE(test::write_all(r.in.a.get(), data));  // all queued in src before the copy starts
  ::shutdown(r.in.a.get(), SHUT_WR);
  splice::options opt;
  opt.pool = &pool;
  std::string got;
  std::thread reader([&] { got = test::read_all(r.out.b.get()); });
  splice::poll_poller p;
  const auto res = splice::copy(r.dst(), r.src(), splice::no_limit, p, opt, returns_pipe_on_read{{}, &pool, &other});
  ::shutdown(r.dst(), SHUT_WR);
  reader.join();
  CHECK((got == data));
  CHECK(res.bytes == data.size());
  CHECK(pool.stats().exhausted == 1);                  // refused once, at the start
  CHECK(std::string(res.fallback) == "pool");
  CHECK(pool.stats().copied_bytes == 2 * (64u << 10));  // two full reads prove the stream fast
  CHECK(pool.stats().spliced_bytes == data.size() - 2 * (64u << 10));
  CHECK(res.spliced);
}

