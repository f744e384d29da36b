// SPDX-License-Identifier: MIT
#include "splice/epoll_poller_linux.hpp"  // first: the header must be self-contained

#include <thread>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

TEST_CASE("epoll_poller drives copies over non-blocking sockets", "[poller][epoll]") {
  splice::epoll_poller p(5s);
  REQUIRE_FALSE(p.status());
  for (int round = 0; round < 3; ++round) {  // fds come and go; forget keeps the set right
    test::relay r;
    test::set_nonblocking(r.src());
    test::set_nonblocking(r.dst());
    test::set_buffers(r.dst(), 65536);
    test::set_buffers(r.out.b.get(), 65536);
    const auto data = test::payload(4 << 20, std::uint32_t(round));
    splice::options opt;
    opt.splice_after = round == 0 ? 0 : 2;
    opt.userspace = round == 2;
    splice::result res;
    CHECK((test::through(r, data, [&] { res = splice::copy(r.dst(), r.src(), splice::no_limit, p, opt); }) == data));
    CHECK(res.bytes == data.size());
    CHECK_FALSE(res.error);
    p.forget(r.src());
    p.forget(r.dst());
  }
}

TEST_CASE("epoll_poller keeps its deadline and remembers readiness of other fds", "[poller][epoll]") {
  splice::epoll_poller p(50ms);
  auto x = test::make_tcp(), y = test::make_tcp();
  test::set_nonblocking(x.b.get());
  test::set_nonblocking(y.b.get());
  CHECK(p.wait_readable(x.b.get()) == std::errc::timed_out);
  CHECK(p.wait_readable(y.b.get()) == std::errc::timed_out);
  test::write_all(y.a.get(), "y");
  CHECK(p.wait_readable(x.b.get()) == std::errc::timed_out);  // sees y's edge and keeps it
  CHECK(p.wait_readable(y.b.get()) == std::error_code{});
  CHECK(p.wait_writable(x.b.get()) == std::error_code{});
  CHECK(p.wait_readable(-1) == std::errc::bad_file_descriptor);
  int closed = ::dup(0);
  ::close(closed);
  CHECK(p.wait_readable(closed) == std::errc::bad_file_descriptor);
}

TEST_CASE("epoll_poller with milliseconds::max() or a deadline waits as long as it should", "[poller][epoll]") {
  auto t = test::make_tcp();
  test::set_nonblocking(t.b.get());
  const pid_t tid = test::thread_id();
  std::thread writer([&] {
    while (!test::sleeping(tid)) std::this_thread::yield();  // the wait has begun
    test::write_all(t.a.get(), "x");
  });
  splice::epoll_poller forever(std::chrono::milliseconds::max());
  CHECK(forever.wait_readable(t.b.get()) == std::error_code{});  // not timed_out at once
  writer.join();
  const auto deadline = std::chrono::steady_clock::now() + 100ms;
  splice::epoll_poller by(deadline);
  CHECK(by.wait_readable(t.b.get()) == std::error_code{});  // the remembered edge of the registration
  CHECK(by.wait_readable(t.b.get()) == std::errc::timed_out);
  CHECK(std::chrono::steady_clock::now() >= deadline);
}

TEST_CASE("epoll_poller::wait_either returns when either fd is ready, and wait_until sleeps", "[poller][epoll]") {
  using namespace std::chrono_literals;
  auto t = test::make_tcp();
  auto [ur, uw] = test::make_pipe();  // a full pipe: uw is not writable, and stays so
  test::set_nonblocking(uw.get());
  while (::write(uw.get(), "xxxxxxxxxxxxxxxx", 16) > 0) {
  }
  splice::epoll_poller quick(30ms);
  CHECK(quick.wait_either(t.b.get(), uw.get()) == std::errc::timed_out);
  test::write_all(t.a.get(), "x");
  CHECK_FALSE(quick.wait_either(t.b.get(), uw.get()));
  const auto start = std::chrono::steady_clock::now();
  splice::epoll_poller p;
  CHECK_FALSE(p.wait_until(start + 20ms));
  CHECK(std::chrono::steady_clock::now() >= start + 20ms);
  CHECK(splice::epoll_poller(start + 10ms).wait_until(start + 10s) == std::errc::timed_out);
  CHECK(std::chrono::steady_clock::now() < start + 10s);
}
