// SPDX-License-Identifier: MIT
// The pool within the per-user pipe budget. Root is exempt from the budget, so the cases tagged
// [.unprivileged] run as user nobody, through tests/unprivileged.sh (a ctest test of its own).
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

namespace {

using pipe_t = splice::pipe_lease;

/// The real system calls; F_SETPIPE_SZ is refused with EPERM, as for a user past the budget.
/// Grants every F_SETPIPE_SZ without resizing, so that a pool's arithmetic can be followed without
/// spending a real budget (which would depend on the user running the test).
struct grants_any_size : splice::system_calls {
  int fcntl(int fd, int cmd, int arg) {
    if (cmd == F_SETPIPE_SZ) return arg;
    return splice::system_calls::fcntl(fd, cmd, arg);
  }
};

struct budget_spent : splice::system_calls {
  int fcntl(int fd, int cmd, int arg) {
    if (cmd == F_SETPIPE_SZ) return errno = EPERM, -1;
    return splice::system_calls::fcntl(fd, cmd, arg);
  }
};

/// Copies data through a relay with opt and returns the result; checks every byte arrived.
splice::result relay_copy(const std::string& data, const splice::options& opt) {
  test::relay r;
  splice::result res;
  std::string got = test::through(r, data, [&] {
    splice::poll_poller p;
    res = splice::copy(r.dst(), r.src(), splice::no_limit, p, opt);
  });
  CHECK((got == data));
  CHECK(res.bytes == data.size());
  CHECK_FALSE(res.error);
  return res;
}

}  // namespace

TEST_CASE("the pool asks for smaller pipes as it nears its byte bound, then refuses", "[pool][budget]") {
  splice::pipe_pool::config cfg;
  cfg.max_bytes = 64u << 20;  // the default per-user budget
  cfg.max_idle = 0;
  splice::pipe_pool pool(cfg);
  grants_any_size sys;
  const char* op = "";
  std::vector<pipe_t> held;
  for (;;) {
    pipe_t p;
    if (pool.acquire(sys, p, op)) break;
    held.push_back(std::move(p));
    REQUIRE(held.size() <= 1024);
  }
  // A new pipe takes at most a 32nd of what is left: 33 pipes of 1 MiB, 31 of 512 KiB, 31 of 256 KiB,
  // 31 of 128 KiB, then 64 KiB ones (min_pipe_size) until the bound: 188, three times as many copies
  // spliced as whole 1 MiB pipes (64) would give.
  REQUIRE(held.size() == 188);
  CHECK(held[0].capacity() == (1u << 20));
  CHECK(held[32].capacity() == (1u << 20));
  CHECK(held[33].capacity() == (512u << 10));
  CHECK(held[64].capacity() == (256u << 10));
  CHECK(held.back().capacity() == (64u << 10));
  for (std::size_t i = 1; i < held.size(); ++i) CHECK(held[i].capacity() <= held[i - 1].capacity());
  auto st = pool.stats();
  CHECK(st.bytes_held == (64u << 20));
  CHECK(st.shrunk == 188 - 33);
  CHECK(st.exhausted == 1);
  held[0].filled(1), held[0].reset();  // closed: holds bytes
  CHECK(pool.stats().bytes_held == (63u << 20));
  pipe_t again;
  REQUIRE_FALSE(pool.acquire(sys, again, op));  // room again, for a pipe sized to what is left
  CHECK(again.capacity() == (64u << 10));  // 1 MiB left: a 32nd of it is below min_pipe_size
  again.reset();
  for (auto& p : held)
    if (p) p.reset();
  st = pool.stats();
  CHECK(st.in_use == 0);
  CHECK(st.bytes_held == 0);
}

TEST_CASE("a pool whose pipes the kernel rounds up stays within its bound and above min_pipe_size",
          "[pool][budget]") {
  splice::pipe_pool::config cfg;
  cfg.pipe_size = 96 << 10;  // the kernel grants a power of two pages: 128 KiB
  cfg.min_pipe_size = 64 << 10;
  cfg.max_bytes = (1u << 20) + (50u << 10);
  cfg.max_idle = 0;
  splice::pipe_pool pool(cfg);
  splice_lib::system_calls sys;
  const char* op = "";
  std::vector<pipe_t> held;
  for (;;) {
    pipe_t p;
    if (pool.acquire(sys, p, op)) break;
    CHECK(p.capacity() >= cfg.min_pipe_size);  // never halved below it (96 KiB would go to 48 KiB)
    held.push_back(std::move(p));
    REQUIRE(held.size() <= 64);
  }
  CHECK_FALSE(held.empty());
  CHECK(pool.stats().bytes_held <= cfg.max_bytes);  // it once went on handing out pipes past the bound
  for (auto& p : held) p.reset();
  CHECK(pool.stats().bytes_held == 0);
}

TEST_CASE("a pipe the kernel grants too small is closed, and copies take user space meanwhile", "[pool][budget]") {
  splice::pipe_pool::config cfg;
  cfg.min_pipe_size = 128 << 10;  // more than a pipe has before F_SETPIPE_SZ (64 KiB)
  splice::pipe_pool pool(cfg);
  budget_spent sys;
  const char* op = "";
  pipe_t p;
  CHECK(pool.acquire(sys, p, op) == splice::errc::pool_exhausted);
  CHECK_FALSE(p);
  CHECK(pool.acquire(sys, p, op) == splice::errc::pool_exhausted);  // no new pipe for a while
  const auto st = pool.stats();
  CHECK(st.undersized == 1);
  CHECK(st.created == 0);
  CHECK(st.in_use == 0);
  CHECK(st.bytes_held == 0);
  splice::options opt;
  opt.pool = &pool;
  const auto res = relay_copy(test::payload(1 << 20, 3), opt);
  CHECK_FALSE(res.spliced);
}

TEST_CASE("as an unprivileged user the pool stays within the pipe budget and keeps pipes worth using",
          "[.unprivileged]") {
  const std::size_t budget = splice_lib::detail::pipe_budget();
  REQUIRE(budget != SIZE_MAX);  // run by tests/unprivileged.sh as nobody
  splice::pipe_pool pool;
  CHECK(pool.max_bytes() == budget);
  splice_lib::system_calls sys;
  const char* op = "";
  std::vector<pipe_t> held(200);
  std::size_t granted = 0;
  for (auto& p : held) {
    if (pool.acquire(sys, p, op)) break;
    CHECK(p.capacity() >= pool.settings().min_pipe_size);  // never a two-page pipe
    ++granted;
  }
  const auto st = pool.stats();
  CHECK(st.bytes_held <= budget);
  CHECK(st.undersized == 0);
  CHECK(granted >= budget / (1u << 20));  // the whole budget in use, in pipes worth using
  splice::options opt;
  opt.pool = &pool;
  relay_copy(test::payload(4 << 20, 4), opt);  // with the budget full: user space, every byte
  for (auto& p : held)
    if (p) p.reset();
  opt.splice_after = 0;
  CHECK(relay_copy(test::payload(4 << 20, 5), opt).spliced);  // pipes free again
}

TEST_CASE("as an unprivileged user whose budget another holder spent, copies run in user space",
          "[.unprivileged]") {
  REQUIRE(splice_lib::detail::pipe_budget() != SIZE_MAX);
  // Another holder of the same user grows pipes until the kernel refuses.
  std::vector<std::pair<test::fd, test::fd>> hog;
  for (;;) {
    hog.push_back(test::make_pipe());
    if (::fcntl(hog.back().second.get(), F_SETPIPE_SZ, 1 << 20) < 0) break;
  }
  CHECK(errno == EPERM);
  splice::pipe_pool pool;
  splice::options opt;
  opt.pool = &pool;
  opt.splice_after = 0;
  const auto res = relay_copy(test::payload(4 << 20, 6), opt);
  CHECK_FALSE(res.spliced);  // a two-page pipe would cost more CPU than user space
  CHECK(pool.stats().undersized == 1);
  CHECK(pool.stats().bytes_held == 0);
}
