// SPDX-License-Identifier: MIT
#include "splice/proxy.hpp"  // first: the header must be self-contained

#include <csignal>
#include <thread>
#include <vector>

#include <netinet/tcp.h>
#include <poll.h>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

using test::payload;

namespace {
using test::rig;

splice::proxy_options eager(bool userspace) {
  splice::proxy_options o;
  o.copy.userspace = userspace;
  o.copy.splice_after = GENERATE(0u, 2u);
  return o;
}
}  // namespace

TEST_CASE("proxy relays both directions at once", "[proxy]") {
  const bool userspace = GENERATE(false, true);
  rig r;
  const auto up = payload(6 << 20, 1), down = payload(5 << 20, 2);
  splice::proxy_result res;
  const auto [got_up, got_down] = test::both_ways(r, up, down, [&] { res = splice::proxy(r.a(), r.b(), eager(userspace)); });
  CHECK_FALSE(res.error);
  CHECK(res.a_to_b.bytes == up.size());
  CHECK(res.b_to_a.bytes == down.size());
  CHECK((got_up == up));
  CHECK((got_down == down));
}

TEST_CASE("proxy passes a half-close on and keeps the other direction open", "[proxy]") {
  const bool userspace = GENERATE(false, true);
  rig r;
  const auto question = payload(100000, 3), answer = payload(3 << 20, 4);
  std::thread server([&] {  // answers only after it has seen end of file
    if (test::read_all(r.server()) == question) test::write_all(r.server(), answer);
    ::shutdown(r.server(), SHUT_WR);
  });
  std::string got;
  std::thread client([&] {
    test::write_all(r.client(), question);
    ::shutdown(r.client(), SHUT_WR);
    got = test::read_all(r.client());
  });
  const auto res = splice::proxy(r.a(), r.b(), eager(userspace));
  server.join();
  client.join();
  CHECK_FALSE(res.error);
  CHECK((got == answer));
  CHECK(res.a_to_b.bytes == question.size());
  CHECK(res.b_to_a.bytes == answer.size());
}

TEST_CASE("proxy ends an idle pair with timed_out", "[proxy]") {
  rig r;
  test::write_all(r.client(), "hi");
  splice::proxy_options o;
  o.idle_timeout = std::chrono::milliseconds(100);
  const auto res = splice::proxy(r.a(), r.b(), o);
  CHECK(res.error == std::errc::timed_out);
  CHECK(res.a_to_b.bytes == 2);
  CHECK(test::read_all(r.server(), 2) == "hi");
}

TEST_CASE("proxy reports a reset peer as the first error and stops the other direction", "[proxy]") {
  auto old = std::signal(SIGPIPE, SIG_DFL);
  rig r;
  std::thread client([&] {
    test::write_all(r.client(), payload(1 << 20));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    test::reset(r.front.a);
  });
  const auto res = splice::proxy(r.a(), r.b(), eager(false));
  client.join();
  r.back.a.reset();  // the proxy closes nothing; its owner does
  CHECK((res.error == std::errc::connection_reset || res.error == std::errc::broken_pipe));
  CHECK(res.a_to_b.bytes == test::read_all(r.server()).size());
  std::signal(SIGPIPE, old);
}

TEST_CASE("proxy reports EBADF for a bad fd", "[proxy]") {
  rig r;
  const auto res = splice::proxy(r.a(), -1);
  CHECK(res.error == std::errc::bad_file_descriptor);
  CHECK(std::string(res.op) == "fcntl");
}

namespace {
/// The real system calls; the first poll waits 50 ms, then fails with EINTR as a signal would make
/// it. Records the timeout of every poll.
struct interrupted_once : splice::system_calls {
  std::vector<int>* timeouts;
  int poll(pollfd* f, nfds_t n, int t) {
    timeouts->push_back(t);
    if (timeouts->size() == 1) {
      splice::system_calls::poll(f, n, 50);
      errno = EINTR;
      return -1;
    }
    return splice::system_calls::poll(f, n, t);
  }
};
}  // namespace

TEST_CASE("a signal does not restart the proxy's idle timeout", "[proxy]") {
  rig r;
  splice::proxy_options o;
  o.idle_timeout = std::chrono::milliseconds(400);
  std::vector<int> timeouts;
  const auto res = splice::proxy(r.a(), r.b(), o, interrupted_once{{}, &timeouts});
  CHECK(res.error == std::errc::timed_out);
  REQUIRE(timeouts.size() >= 2);
  CHECK(timeouts[0] <= 400);
  CHECK(timeouts[0] > 300);
  CHECK(timeouts[1] <= timeouts[0] - 50 + 1);  // the time left, not the whole timeout again
}

TEST_CASE("proxy sets TCP_NODELAY on both sockets unless told not to", "[proxy]") {
  const bool nodelay = GENERATE(false, true);
  rig r;
  ::shutdown(r.client(), SHUT_WR);
  ::shutdown(r.server(), SHUT_WR);
  splice::proxy_options o;
  o.nodelay = nodelay;
  CHECK_FALSE(splice::proxy(r.a(), r.b(), o).error);
  for (int fd : {r.a(), r.b()}) {
    int v = -1;
    socklen_t len = sizeof v;
    REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0);
    CHECK((v != 0) == nodelay);
  }
}

TEST_CASE("proxy hands a busy direction back and forth with the other", "[proxy]") {
  // max_advance makes each direction yield often; nothing may be lost or reordered.
  rig r;
  splice::proxy_options o;
  o.copy.max_advance = 4096;
  const auto up = payload(3 << 20, 8), down = payload(2 << 20, 9);
  splice::proxy_result res;
  const auto [got_up, got_down] = test::both_ways(r, up, down, [&] { res = splice::proxy(r.a(), r.b(), o); });
  CHECK_FALSE(res.error);
  CHECK((got_up == up));
  CHECK((got_down == down));
}
