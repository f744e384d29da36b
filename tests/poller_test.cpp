// SPDX-License-Identifier: MIT
#include "splice/poller.hpp"  // first: the header must be self-contained

#include <atomic>
#include <climits>
#include <csignal>

#include <catch2/catch.hpp>

#include "support.hpp"

using splice_lib::poll_poller;
using namespace std::chrono_literals;

TEST_CASE("poll_poller reports readiness, deadlines and bad fds", "[poller]") {
  auto t = test::make_tcp();
  poll_poller p(50ms);
  CHECK(p.wait_writable(t.a.get()) == std::error_code{});
  const auto start = std::chrono::steady_clock::now();
  CHECK(p.wait_readable(t.b.get()) == std::errc::timed_out);
  CHECK(std::chrono::steady_clock::now() - start >= 50ms);
  test::write_all(t.a.get(), "x");
  CHECK(p.wait_readable(t.b.get()) == std::error_code{});
  int closed = ::dup(0);
  ::close(closed);
  CHECK(p.wait_readable(closed) == std::errc::bad_file_descriptor);
  ::shutdown(t.a.get(), SHUT_WR);
  CHECK(poll_poller().wait_readable(t.b.get()) == std::error_code{});  // end of file is readable
}

TEST_CASE("poll_poller retries EINTR and keeps its deadline", "[poller]") {
  struct sigaction sa {}, old{};
  sa.sa_handler = [](int) {};  // no SA_RESTART: poll fails with EINTR
  sigaction(SIGUSR1, &sa, &old);
  auto t = test::make_tcp();
  const pthread_t self = pthread_self();
  std::atomic<bool> stop{false};
  std::thread storm([&] {
    while (!stop) {
      pthread_kill(self, SIGUSR1);
      std::this_thread::sleep_for(1ms);
    }
  });
  const auto start = std::chrono::steady_clock::now();
  CHECK(poll_poller(200ms).wait_readable(t.b.get()) == std::errc::timed_out);
  const auto took = std::chrono::steady_clock::now() - start;
  stop = true;
  storm.join();
  CHECK(took >= 200ms);
  CHECK(took < 2s);
  sigaction(SIGUSR1, &old, nullptr);
}

TEST_CASE("timeouts too long for the clock mean no timeout, and long ones are clamped, not wrapped", "[poller]") {
  using splice_lib::detail::deadline_after;
  using splice_lib::detail::ms_until;
  using splice_lib::detail::no_deadline;
  CHECK(deadline_after(std::chrono::milliseconds(-5)) == no_deadline);
  CHECK(deadline_after(std::chrono::milliseconds::max()) == no_deadline);
  CHECK(deadline_after(std::chrono::hours(24 * 365)) != no_deadline);
  CHECK(ms_until(no_deadline) == -1);
  CHECK(ms_until(std::chrono::steady_clock::now() - 1s) == 0);
  const int ms = ms_until(std::chrono::steady_clock::now() + 1500ms);
  CHECK(ms > 1400);
  CHECK(ms <= 1500);
  CHECK(ms_until(deadline_after(std::chrono::hours(24 * 365))) == INT_MAX);
}

TEST_CASE("poll_poller with milliseconds::max() waits through signals", "[poller]") {
  struct sigaction sa {}, old{};
  sa.sa_handler = [](int) {};  // no SA_RESTART: poll fails with EINTR
  sigaction(SIGUSR1, &sa, &old);
  auto t = test::make_tcp();
  const pthread_t self = pthread_self();
  const pid_t tid = test::thread_id();
  std::thread storm([&] {
    test::interrupt_waits(self, tid, SIGUSR1, 20);  // each lands inside the wait
    test::write_all(t.a.get(), "x");                // readable only after every signal
  });
  CHECK(poll_poller(std::chrono::milliseconds::max()).wait_readable(t.b.get()) == std::error_code{});
  storm.join();
  sigaction(SIGUSR1, &old, nullptr);
}

TEST_CASE("poll_poller with a deadline ends every wait by then", "[poller]") {
  auto t = test::make_tcp();
  const auto deadline = std::chrono::steady_clock::now() + 100ms;
  poll_poller p(deadline);
  CHECK(p.wait_writable(t.a.get()) == std::error_code{});  // ready: no wait
  CHECK(p.wait_readable(t.b.get()) == std::errc::timed_out);
  CHECK(std::chrono::steady_clock::now() >= deadline);
  CHECK(p.wait_readable(t.b.get()) == std::errc::timed_out);  // later waits end at once
  CHECK(p.wait_writable(t.a.get()) == std::error_code{});     // readiness still wins
}

TEST_CASE("poll_poller::wait_either returns when either fd is ready, and wait_until sleeps", "[poller]") {
  auto t = test::make_tcp();
  auto [ur, uw] = test::make_pipe();  // a full pipe: uw is not writable, and stays so; t.b not readable
  test::set_nonblocking(uw.get());
  while (::write(uw.get(), "xxxxxxxxxxxxxxxx", 16) > 0) {
  }
  poll_poller quick(std::chrono::milliseconds(30));
  CHECK(quick.wait_either(t.b.get(), uw.get()) == std::errc::timed_out);
  test::write_all(t.a.get(), "x");
  CHECK_FALSE(poll_poller().wait_either(t.b.get(), uw.get()));  // readable now
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(poll_poller().wait_until(start + 20ms));
  CHECK(std::chrono::steady_clock::now() >= start + 20ms);
  poll_poller by(start + 10ms);
  CHECK(by.wait_until(start + 10s) == std::errc::timed_out);  // the deadline comes first
  CHECK(std::chrono::steady_clock::now() < start + 10s);
}
