// SPDX-License-Identifier: MIT
// Reliability under hostile conditions: signal storms, fd exhaustion, one-page pipes, fds closed
// under a waiting copy, and random fault schedules and resets checked against exact accounting.
#include <atomic>
#include <csignal>
#include <random>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

namespace {

splice::options with(bool userspace, splice::pipe_pool* pool = nullptr) {
  splice::options o;
  o.userspace = userspace;
  o.splice_after = 0;
  o.pool = pool;
  return o;
}

struct copy_outcome {
  splice::result res;
  std::string got, rest;
};

// transfer copies data through a fresh relay with opt and returns what arrived and what src kept.
copy_outcome transfer(const std::string& data, const splice::options& opt, bool nonblocking = false) {
  test::relay r;
  if (nonblocking) test::set_nonblocking(r.src()), test::set_nonblocking(r.dst());
  copy_outcome o;
  o.got = test::through(r, data, [&] {
    splice::poll_poller p;
    o.res = splice::copy(r.dst(), r.src(), splice::no_limit, p, opt);
    o.rest = test::read_all(r.src());
  });
  return o;
}

}  // namespace

TEST_CASE("a signal every 100 us at the copying thread loses nothing over 1 GiB", "[reliability]") {
  const bool userspace = GENERATE(false, true);
  struct sigaction sa {}, old{};
  sa.sa_handler = [](int) {};  // no SA_RESTART: every blocking call fails with EINTR
  sigaction(SIGUSR1, &sa, &old);
  test::relay r;
  const std::uint64_t total = std::uint64_t(1) << 30;
  const auto block = test::payload(1 << 20, 31);
  std::atomic<bool> copying{true};
  std::atomic<long> signals{0};
  const pthread_t self = pthread_self();
  std::thread storm([&] {
    while (copying) {
      pthread_kill(self, SIGUSR1);
      ++signals;
      std::this_thread::sleep_for(100us);
    }
  });
  std::thread writer([&] {
    for (std::uint64_t i = 0; i < total; i += block.size()) test::write_all(r.in.a.get(), block);
    ::shutdown(r.in.a.get(), SHUT_WR);
  });
  std::uint64_t got = 0;
  bool same = true;
  std::thread reader([&] {
    std::string buf(1 << 20, '\0');
    std::size_t pos = 0;
    for (ssize_t n; (n = ::read(r.out.b.get(), &buf[0], buf.size())) > 0; got += std::uint64_t(n))
      for (ssize_t i = 0; i < n; ++i, pos = (pos + 1) % block.size()) same &= buf[std::size_t(i)] == block[pos];
  });
  splice::poll_poller p;
  const auto res = splice::copy(r.dst(), r.src(), splice::no_limit, p, with(userspace));
  copying = false;
  storm.join();
  ::shutdown(r.dst(), SHUT_WR);
  writer.join();
  reader.join();
  sigaction(SIGUSR1, &old, nullptr);
  CHECK_FALSE(res.error);
  CHECK(res.bytes == total);
  CHECK(got == total);
  CHECK(same);
  CHECK(signals > 1000);
}

TEST_CASE("with no fd left for a pipe, copies fall back and deliver everything", "[reliability]") {
  test::relay r;
  splice::pipe_pool pool;  // empty: a pipe would have to be made
  const auto data = test::payload(4 << 20, 32);
  // No thread starts or ends and no assertion runs while the fds are exhausted: a sanitizer's
  // runtime may need an fd then (UBSan's vptr check probes memory through a pipe).
  std::atomic<bool> go{false}, restored{false};
  std::atomic<int> running{0};
  std::thread writer([&] {
    ++running;
    while (!go) std::this_thread::yield();
    test::write_all(r.in.a.get(), data);
    ::shutdown(r.in.a.get(), SHUT_WR);
    while (!restored) std::this_thread::yield();
  });
  std::string got;
  std::thread reader([&] {
    ++running;
    got = test::read_all(r.out.b.get());
  });
  while (running < 2) std::this_thread::yield();
  rlimit old{};
  getrlimit(RLIMIT_NOFILE, &old);
  int highest = 0;
  for (int fd = 0; fd < 4096; ++fd)
    if (::fcntl(fd, F_GETFD) >= 0) highest = fd;
  rlimit tight = old;
  tight.rlim_cur = rlim_t(highest + 1);  // not one more fd above the highest open one
  const bool tightened = setrlimit(RLIMIT_NOFILE, &tight) == 0;
  std::vector<test::fd> fillers;  // and none of the free numbers below it
  for (int f; (f = ::dup(r.src())) >= 0;) fillers.emplace_back(f);
  int probe[2];
  const bool exhausted = ::pipe(probe) != 0 && errno == EMFILE;
  go = true;
  splice::poll_poller p;
  const auto res = splice::copy(r.dst(), r.src(), splice::no_limit, p, with(false, &pool));
  fillers.clear();
  setrlimit(RLIMIT_NOFILE, &old);
  restored = true;
  ::shutdown(r.dst(), SHUT_WR);
  writer.join();
  reader.join();
  CHECK(tightened);
  CHECK(exhausted);
  CHECK_FALSE(res.error);
  CHECK_FALSE(res.spliced);
  CHECK(res.bytes == data.size());
  CHECK((got == data));
  CHECK(pool.stats().created == 0);
}

TEST_CASE("one-page pipes, as past the per-user pipe budget, still copy correctly", "[reliability]") {
  splice::pipe_pool::config c;
  c.pipe_size = 4096;
  splice::pipe_pool pool(c);
  const bool nonblocking = GENERATE(false, true);
  const auto data = test::payload(8 << 20, 33);
  const auto o = transfer(data, with(false, &pool), nonblocking);
  CHECK_FALSE(o.res.error);
  CHECK(o.res.spliced);
  CHECK((o.got == data));
  CHECK(pool.stats().created == 1);
}

TEST_CASE("an fd closed or replaced under a waiting copy ends it by the poller's deadline", "[reliability]") {
  const bool replace = GENERATE(false, true);
  test::relay r;
  test::set_nonblocking(r.src());
  test::set_nonblocking(r.dst());
  auto other = test::make_tcp();
  std::thread meddler([&] {
    std::this_thread::sleep_for(50ms);
    if (replace) ::dup2(other.b.get(), r.src());
    else ::close(r.src());
  });
  const auto start = std::chrono::steady_clock::now();
  splice::poll_poller p(500ms);
  const auto res = splice::copy(r.dst(), r.src(), splice::no_limit, p);
  const auto took = std::chrono::steady_clock::now() - start;
  meddler.join();
  if (!replace) (void)r.in.b.release();  // already closed by the meddler
  CHECK((res.error == std::errc::timed_out || res.error == std::errc::bad_file_descriptor));
  CHECK(took < 2s);
  CHECK(res.bytes == 0);
}

namespace {

/// Faults drawn from a seeded generator: EINTR, EAGAIN and short counts anywhere, and sometimes one
/// terminal error at a random call.
struct random_faults : splice::system_calls {
  struct state {
    std::mt19937 rng;
    int terminal = 0;        // the errno of the one terminal fault, or 0
    int terminal_at = 0;     // ... at this data call
    int calls = 0;
    bool fired = false;
  };
  state* s;
  explicit random_faults(state& st) : s(&st) {}

  int fault() {
    ++s->calls;
    if (s->terminal && !s->fired && s->calls == s->terminal_at) return s->fired = true, s->terminal;
    const auto roll = s->rng() % 16;
    return roll == 0 ? EINTR : roll == 1 ? EAGAIN : 0;
  }
  std::size_t shorten(std::size_t n) { return s->rng() % 4 == 0 ? std::max<std::size_t>(1, n / (2 + s->rng() % 8)) : n; }
  // Calls that move no data can fail only with EINTR or the terminal error; EAGAIN is not theirs.
  int control_fault() {
    const int e = fault();
    return e == EAGAIN ? 0 : e;
  }

  ssize_t read(int fd, void* b, std::size_t n) {
    if (int e = fault()) return errno = e, -1;
    return splice::system_calls::read(fd, b, shorten(n));
  }
  ssize_t send(int fd, const void* b, std::size_t n, int f) {
    if (int e = fault()) return errno = e, -1;
    return splice::system_calls::send(fd, b, shorten(n), f);
  }
  ssize_t splice(int in, int out, std::size_t n, unsigned f) {
    if (int e = fault()) return errno = e, -1;
    return splice::system_calls::splice(in, out, shorten(n), f);
  }
  int getsockopt(int fd, int level, int name, void* v, socklen_t* l) {
    if (int e = control_fault()) return errno = e, -1;
    return splice::system_calls::getsockopt(fd, level, name, v, l);
  }
  int fstat(int fd, struct stat* st) {
    if (int e = control_fault()) return errno = e, -1;
    return splice::system_calls::fstat(fd, st);
  }
  int pipe2(int fds[2], int flags) {
    if (int e = control_fault()) return errno = e, -1;
    return splice::system_calls::pipe2(fds, flags);
  }
  int fcntl(int fd, int cmd, int arg) {
    if (int e = control_fault()) return errno = e, -1;
    return splice::system_calls::fcntl(fd, cmd, arg);
  }
};

}  // namespace

TEST_CASE("random fault schedules deliver a prefix of src and account for every byte", "[reliability][property]") {
  const bool userspace = GENERATE(false, true);
  const bool nonblocking = GENERATE(false, true);
  for (unsigned seed = 1; seed <= 25; ++seed) {
    CAPTURE(userspace, nonblocking, seed);
    random_faults::state st{std::mt19937(seed)};
    const int terminals[] = {0, EPIPE, ECONNRESET, ENOMEM, EINVAL};
    st.terminal = terminals[seed % 5];
    st.terminal_at = 1 + int(st.rng() % 60);
    const auto data = test::payload(256 * 1024 + st.rng() % (1 << 20), seed);
    splice::pipe_pool pool;
    auto opt = with(userspace, &pool);
    opt.splice_after = seed % 3;
    test::relay r;
    if (nonblocking) test::set_nonblocking(r.src()), test::set_nonblocking(r.dst());
    splice::result res;
    std::string rest;
    const auto got = test::through(r, data, [&] {
      splice::poll_poller p(5s);
      res = splice::copy(r.dst(), r.src(), splice::no_limit, p, opt, random_faults(st));
      rest = test::read_all(r.src());
    });
    // What src gave is what dst got plus what the result says was lost; dst got a prefix.
    CHECK(res.bytes == got.size());
    CHECK((got == data.substr(0, got.size())));
    CHECK(res.bytes + res.unsent + rest.size() == data.size());
    CHECK((rest == data.substr(data.size() - rest.size())));
    if (!res.error) CHECK(got.size() == data.size());
    if (res.error) CHECK(res.error == std::error_code(st.terminal, std::system_category()));
    CHECK(pool.stats().in_use == 0);
  }
}

TEST_CASE("resets and closes at random points on either side account for every byte", "[reliability][property]") {
  auto old = std::signal(SIGPIPE, SIG_DFL);
  const bool userspace = GENERATE(false, true);
  const bool nonblocking = GENERATE(false, true);
  const bool reset_dst = GENERATE(false, true);
  const bool orderly = GENERATE(false, true);  // FIN instead of RST
  std::mt19937 rng(7);
  for (int round = 0; round < 6; ++round) {
    const std::size_t total = 4 << 20, cut = 1 + rng() % total;
    CAPTURE(userspace, nonblocking, reset_dst, orderly, cut);
    const auto data = test::payload(total, unsigned(round));
    test::relay r;
    if (nonblocking) test::set_nonblocking(r.src()), test::set_nonblocking(r.dst());
    std::size_t reader_got = 0;
    std::thread writer([&] {
      if (reset_dst) {
        test::write_all(r.in.a.get(), data);
        ::shutdown(r.in.a.get(), SHUT_WR);
      } else {
        test::write_all(r.in.a.get(), data.substr(0, cut));
        std::this_thread::sleep_for(20ms);
        if (orderly) ::shutdown(r.in.a.get(), SHUT_WR);
        else test::reset(r.in.a);
      }
    });
    std::thread reader([&] {
      if (reset_dst) {
        reader_got = test::read_all(r.out.b.get(), cut).size();
        if (orderly) r.out.b.reset();  // a close with unread bytes still answers with RST
        else test::reset(r.out.b);
      } else {
        reader_got = test::read_all(r.out.b.get()).size();
      }
    });
    splice::poll_poller p(5s);
    const auto res = splice::copy(r.dst(), r.src(), splice::no_limit, p, with(userspace));
    if (!reset_dst) ::shutdown(r.dst(), SHUT_WR);
    reader.join();
    const auto rest = reset_dst ? test::read_all(r.src()) : std::string();
    writer.join();
    if (reset_dst) {
      CHECK(res.bytes >= reader_got);  // what the reader took before its reset was delivered
      CHECK(res.bytes + res.unsent + rest.size() == total);
      if (res.error) CHECK((res.error == std::errc::connection_reset || res.error == std::errc::broken_pipe));
    } else {
      CHECK(res.bytes == reader_got);
      CHECK(res.unsent == 0);
      CHECK(res.bytes <= cut);
      if (orderly) CHECK(res.bytes == cut);  // a FIN after cut bytes: every one of them delivered
      if (orderly) CHECK_FALSE(res.error);
      if (res.error) CHECK(res.error == std::errc::connection_reset);
    }
  }
  std::signal(SIGPIPE, old);
}

TEST_CASE("a proxy survives resets at random points and delivers a prefix", "[reliability][property][proxy]") {
  auto old = std::signal(SIGPIPE, SIG_DFL);
  const bool userspace = GENERATE(false, true);
  const bool reset_client = GENERATE(false, true);
  std::mt19937 rng(11);
  for (int round = 0; round < 5; ++round) {
    const std::size_t total = 4 << 20, cut = 1 + rng() % total;
    CAPTURE(userspace, reset_client, cut);
    const auto data = test::payload(total, unsigned(round) + 40);
    auto front = test::make_tcp(), back = test::make_tcp();  // client=front.a, proxy front.b|back.a, server=back.b
    std::string server_got;
    std::thread client([&] {
      test::write_all(front.a.get(), reset_client ? data.substr(0, cut) : data);
      if (reset_client) {
        std::this_thread::sleep_for(20ms);
        test::reset(front.a);
      } else {
        ::shutdown(front.a.get(), SHUT_WR);
        test::read_all(front.a.get());
      }
    });
    std::thread server([&] {
      server_got = test::read_all(back.b.get(), reset_client ? SIZE_MAX : cut);
      if (!reset_client) test::reset(back.b);
    });
    splice::proxy_options opt;
    opt.copy = with(userspace);
    opt.idle_timeout = 5s;
    const auto res = splice::proxy(front.b.get(), back.a.get(), opt);
    back.a.reset();  // the server sees end of file after what the proxy delivered
    front.b.reset();
    client.join();
    server.join();
    CHECK((server_got == data.substr(0, server_got.size())));
    CHECK(res.error != std::errc::timed_out);
    if (reset_client) {
      CHECK(server_got.size() == res.a_to_b.bytes);
      CHECK(res.a_to_b.bytes <= cut);
    } else {
      CHECK(res.a_to_b.bytes >= server_got.size());
      CHECK(res.error);
    }
  }
  std::signal(SIGPIPE, old);
}
