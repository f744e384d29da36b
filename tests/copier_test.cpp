// SPDX-License-Identifier: MIT
#include "splice/copier.hpp"  // first: the header must be self-contained

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

using test::payload;

TEST_CASE("a copier waits for src, then moves what arrived, without blocking", "[copier]") {
  const bool userspace = GENERATE(false, true);
  test::relay r;
  test::set_nonblocking(r.src());
  test::set_nonblocking(r.dst());
  splice::options opt;
  opt.userspace = userspace;
  opt.splice_after = 0;
  splice::copier<> c(r.dst(), r.src(), splice::no_limit, opt);
  CHECK(c.advance() == splice::step::read);
  CHECK(c.result().bytes == 0);
  test::write_all(r.in.a.get(), "hello");
  CHECK(c.advance() == splice::step::read);
  CHECK(c.result().bytes == 5);
  CHECK(test::read_all(r.out.b.get(), 5) == "hello");
  ::shutdown(r.in.a.get(), SHUT_WR);
  CHECK(c.advance() == splice::step::done);
  CHECK_FALSE(c.result().error);
  CHECK(c.advance() == splice::step::done);  // done stays done
}

TEST_CASE("a copier keeps what it took when dst is full and delivers it on a later call", "[copier]") {
  const bool userspace = GENERATE(false, true);
  test::relay r;
  test::set_nonblocking(r.src());
  test::set_nonblocking(r.dst());
  test::set_buffers(r.dst(), 16384);
  test::set_buffers(r.out.b.get(), 16384);
  test::set_nonblocking(r.out.b.get());
  const auto data = payload(2 << 20, 21);
  std::thread writer([&] {
    test::write_all(r.in.a.get(), data);
    ::shutdown(r.in.a.get(), SHUT_WR);
  });
  splice::options opt;
  opt.userspace = userspace;
  opt.splice_after = 0;
  splice::copier<> c(r.dst(), r.src(), splice::no_limit, opt);
  std::string got;
  int writes = 0;
  for (splice::step s; (s = c.advance()) != splice::step::done;) {
    if (s == splice::step::write) {
      ++writes;
      pollfd p{r.out.b.get(), POLLIN, 0};
      ::poll(&p, 1, 1000);
      got += test::read_available(r.out.b.get());  // make room, as the peer would
    } else {
      pollfd p{c.src(), POLLIN, 0};
      ::poll(&p, 1, 1000);
    }
  }
  ::shutdown(r.dst(), SHUT_WR);
  got += test::read_all(r.out.b.get());  // spins on EAGAIN until end of file
  writer.join();
  CHECK(writes > 0);
  CHECK_FALSE(c.result().error);
  CHECK(c.result().bytes == data.size());
  CHECK((got == data));
}

TEST_CASE("stopping a copier counts what it held as unsent", "[copier]") {
  test::relay r;
  test::set_nonblocking(r.src());
  test::set_nonblocking(r.dst());
  test::set_buffers(r.dst(), 16384);
  test::set_buffers(r.out.b.get(), 16384);
  test::write_all(r.in.a.get(), payload(1 << 20));
  splice::options opt;
  opt.splice_after = GENERATE(0u, 2u);
  splice::copier<> c(r.dst(), r.src(), splice::no_limit, opt);
  CHECK(c.advance() == splice::step::write);
  c.stop(std::make_error_code(std::errc::timed_out), "deadline");
  CHECK(c.advance() == splice::step::done);
  CHECK(c.result().error == std::errc::timed_out);
  CHECK(std::string(c.result().op) == "deadline");
  CHECK(c.result().unsent > 0);
  ::shutdown(r.dst(), SHUT_WR);
  const auto delivered = test::read_all(r.out.b.get());
  ::shutdown(r.in.a.get(), SHUT_WR);
  const auto rest = test::read_all(r.src());
  CHECK(delivered.size() == c.result().bytes);
  CHECK(c.result().bytes + c.result().unsent + rest.size() == std::size_t(1) << 20);
}

TEST_CASE("a copier refuses blocking fds with errc::blocking_fd from fd before a byte moves", "[copier]") {
  test::relay r;
  test::write_all(r.in.a.get(), "abc");
  test::set_nonblocking(r.dst());  // src stays blocking
  splice::copier<> c(r.dst(), r.src());
  CHECK(c.advance() == splice::step::done);
  CHECK(c.result().error == splice::errc::blocking_fd);
  CHECK(c.result().error == std::errc::invalid_argument);  // its std::errc equivalent
  CHECK(std::string(c.result().op) == "fd");
  CHECK(c.result().bytes == 0);
  CHECK(test::read_all(r.src(), 3) == "abc");
}

TEST_CASE("options that would lose bytes end the copy with errc::invalid_options before any fd is touched",
          "[copier][options]") {
  const int which = GENERATE(0, 1, 2);
  const bool userspace = GENERATE(false, true);
  splice::options opt;
  opt.userspace = userspace;
  (which == 0 ? opt.buffer_size : which == 1 ? opt.max_splice : opt.max_advance) = 0;
  CAPTURE(which, userspace);
  test::relay r;
  test::write_all(r.in.a.get(), "abc");
  splice::poll_poller p;
  const auto res = splice::copy(r.dst(), r.src(), splice::no_limit, p, opt);
  CHECK(res.error == splice::errc::invalid_options);
  CHECK(res.error == std::errc::invalid_argument);
  CHECK(std::string(res.op) == "options");
  CHECK(res.bytes == 0);
  CHECK(splice::copy(-1, -1, splice::no_limit, p, opt).error == std::errc::invalid_argument);  // no fd looked at
  test::set_nonblocking(r.src());
  test::set_nonblocking(r.dst());
  splice::copier<> c(r.dst(), r.src(), splice::no_limit, opt);
  CHECK(c.advance() == splice::step::done);
  CHECK(c.result().error == std::errc::invalid_argument);
  CHECK(test::read_all(r.src(), 3) == "abc");  // src still has every byte
  splice::proxy_options po;
  po.copy = opt;
  auto t = test::make_tcp();
  const auto pr = splice::proxy(t.a.get(), t.b.get(), po);
  CHECK(pr.error == std::errc::invalid_argument);
  CHECK(std::string(pr.op) == "options");
  CHECK_FALSE(::fcntl(t.a.get(), F_GETFL) & O_NONBLOCK);  // refused before it touched the fds
}
