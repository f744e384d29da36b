// SPDX-License-Identifier: MIT
#include "splice/pipe_pool.hpp"  // first: the header must be self-contained

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

namespace {
constexpr bool kernel = splice_lib::detail::can_splice;
}

TEST_CASE("pipe_pool reuses empty pipes and closes pipes that hold bytes", "[pool]") {
  if (!kernel) {
    WARN("SKIP: pipes are not used by the portable build");
    splice_lib::pipe_pool pool;
    splice::pipe_lease p;
    const char* op = "";
    splice_lib::system_calls sys;
    CHECK(pool.acquire(sys, p, op));
    return;
  }
  splice_lib::pipe_pool::config cfg;
  cfg.pipe_size = 256 << 10;
  cfg.max_idle = 1;
  splice_lib::pipe_pool pool(cfg);
  splice_lib::system_calls sys;
  const char* op = "";
  splice::pipe_lease a, b;
  REQUIRE_FALSE(pool.acquire(sys, a, op));
  REQUIRE_FALSE(pool.acquire(sys, b, op));
  CHECK(a.capacity() == 256u << 10);
  CHECK(::fcntl(a.write_end(), F_GETPIPE_SZ) == 256 << 10);
  CHECK((::fcntl(a.write_end(), F_GETFL) & O_NONBLOCK) != 0);
  CHECK((::fcntl(a.write_end(), F_GETFD) & FD_CLOEXEC) != 0);
  const int fd_a = a.read_end();
  a.reset();
  b.reset();  // beyond max_idle: closed
  auto s = pool.stats();
  CHECK(s.idle == 1);
  CHECK(s.in_use == 0);
  CHECK(s.created == 2);
  REQUIRE_FALSE(pool.acquire(sys, a, op));
  CHECK(a.read_end() == fd_a);
  CHECK(pool.stats().reused == 1);
  a.filled(1), a.reset();
  CHECK(pool.stats().discarded == 1);
  CHECK(pool.stats().idle == 0);
}

TEST_CASE("an exhausted pool makes copies fall back to user space without losing a byte", "[pool]") {
  splice_lib::pipe_pool::config cfg;
  cfg.max_pipes = 0;
  splice_lib::pipe_pool pool(cfg);
  splice::options opt;
  opt.pool = &pool;
  opt.splice_after = 0;
  test::relay r;
  const auto data = test::payload(3 << 20);
  splice::result res;
  CHECK(test::through(r, data, [&] {
          splice::poll_poller p;
          res = splice::copy(r.dst(), r.src(), splice::no_limit, p, opt);
        }) == data);
  CHECK(res.bytes == data.size());
  CHECK_FALSE(res.spliced);
  CHECK((kernel ? pool.stats().exhausted >= 1 : pool.stats().exhausted == 0));  // asked again after full reads
  CHECK(pool.stats().copied_bytes == data.size());
  CHECK(pool.stats().spliced_bytes == 0);
  splice::pipe_pool roomy;
  opt.pool = &roomy;
  test::relay r2;
  CHECK((test::through(r2, data, [&] {
          splice::poll_poller p;
          res = splice::copy(r2.dst(), r2.src(), splice::no_limit, p, opt);
        }) == data));
  CHECK(roomy.stats().spliced_bytes == (kernel ? data.size() : 0u));
  CHECK(roomy.stats().spliced_bytes + roomy.stats().copied_bytes == data.size());
}

TEST_CASE("pipe_pool::clear closes the idle pipes", "[pool]") {
  if (!kernel) {
    WARN("SKIP: pipes are not used by the portable build");
    return;
  }
  splice_lib::pipe_pool pool;
  splice_lib::system_calls sys;
  const char* op = "";
  splice::pipe_lease a;
  const int before = test::open_fds();
  REQUIRE_FALSE(pool.acquire(sys, a, op));
  a.reset();
  CHECK(pool.stats().idle == 1);
  CHECK(test::open_fds() == before + 2);
  pool.clear();
  CHECK(pool.stats().idle == 0);
  CHECK(test::open_fds() == before);
}
