// SPDX-License-Identifier: MIT
#include "splice/copy.hpp"  // first: the header must be self-contained

#include <csignal>
#include <fcntl.h>  // after the library: ::splice and splice:: must coexist in either order

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

using test::payload;
using test::relay;
using test::through;

using test::counting_poller;

namespace {

constexpr bool kernel = splice_lib::detail::can_splice;

static_assert(splice_lib::is_poller_v<counting_poller>);
static_assert(!splice_lib::is_poller_v<int>);

/// Options that take the splice path from the first byte, where the kernel has it.
splice::options eager(bool userspace = false) {
  splice::options o;
  o.userspace = userspace;
  o.splice_after = 0;
  return o;
}

splice::result copy_relay(relay& r, std::uint64_t limit = splice::no_limit, splice::options opt = eager()) {
  splice::poll_poller p;
  return splice::copy(r.dst(), r.src(), limit, p, opt);
}

}  // namespace

TEST_CASE("copy moves a small message between TCP sockets", "[copy]") {
  relay r;
  const auto data = payload(5);
  splice::result res;
  CHECK((through(r, data, [&] { res = copy_relay(r); }) == data));
  CHECK(res.bytes == 5);
  CHECK_FALSE(res.error);
  CHECK(res.spliced == kernel);
  relay r2;
  CHECK((through(r2, data, [&] { res = splice::copy(r2.dst(), r2.src()); }) == data));
  CHECK(res.bytes == 5);
  CHECK(res.spliced == kernel);  // a socket-to-socket copy starts on a pipe by default
  CHECK(std::string(res.op).empty());
}

TEST_CASE("copy moves several writes in order", "[copy]") {
  relay r;
  std::string data;
  for (int i = 0; i < 300; ++i) data += payload(std::size_t(1 + i * 7), std::uint32_t(i));
  splice::result res;
  CHECK((through(r, data, [&] { res = copy_relay(r); }, 1000) == data));
  CHECK(res.bytes == data.size());
  CHECK_FALSE(res.error);
}

TEST_CASE("copy moves 32 MiB on both paths", "[copy]") {
  const bool userspace = GENERATE(false, true);
  relay r;
  const auto data = payload(32 << 20, 7);
  splice::result res;
  CHECK((through(r, data, [&] { res = copy_relay(r, splice::no_limit, eager(userspace)); }) == data));
  CHECK(res.bytes == data.size());
  CHECK_FALSE(res.error);
  CHECK(res.spliced == (kernel && !userspace));
  CHECK(std::string(res.fallback) == (userspace ? "option" : kernel ? "" : "fd pair"));
}

TEST_CASE("copy moves 2 GiB", "[.stress]") {
  relay r;
  const auto block = payload(1 << 20, 3);
  std::uint64_t total = std::uint64_t(2) << 30, got = 0;
  bool same = true;
  std::thread writer([&] {
    for (std::uint64_t i = 0; i < total; i += block.size()) test::write_all(r.in.a.get(), block);
    ::shutdown(r.in.a.get(), SHUT_WR);
  });
  std::thread reader([&] {
    std::string buf(1 << 20, '\0');
    std::size_t pos = 0;
    for (ssize_t n; (n = ::read(r.out.b.get(), &buf[0], buf.size())) > 0; got += std::uint64_t(n)) {
      for (ssize_t i = 0; i < n; ++i, pos = (pos + 1) % block.size()) same &= buf[std::size_t(i)] == block[pos];
    }
  });
  const auto res = splice::copy(r.dst(), r.src());
  ::shutdown(r.dst(), SHUT_WR);
  writer.join();
  reader.join();
  CHECK(res.bytes == total);
  CHECK(got == total);
  CHECK(same);
}

TEST_CASE("copy honours the limit and leaves the rest readable from src", "[copy]") {
  const bool userspace = GENERATE(false, true);
  const std::uint64_t limit = GENERATE(1, 4095, 4096, 65535, 65536, 65537, 1048575, 1048576, 1048577, 1500000);
  relay r;
  const auto data = payload(1500001, 9);
  std::thread writer([&] {
    test::write_all(r.in.a.get(), data);
    ::shutdown(r.in.a.get(), SHUT_WR);
  });
  std::string got;
  std::thread reader([&] { got = test::read_all(r.out.b.get()); });
  const auto res = copy_relay(r, limit, eager(userspace));
  ::shutdown(r.dst(), SHUT_WR);
  const auto rest = test::read_all(r.src());
  writer.join();
  reader.join();
  CHECK(res.bytes == limit);  // updatesN: the result says exactly what was moved
  CHECK_FALSE(res.error);
  CHECK((got == data.substr(0, limit)));
  CHECK((rest == data.substr(limit)));
}

TEST_CASE("copy with limit 0 touches neither fd", "[copy]") {
  CHECK(splice::copy(-1, -1, 0).bytes == 0);
  CHECK_FALSE(splice::copy(-1, -1, 0).error);
  relay r;
  test::write_all(r.in.a.get(), "abc");
  const auto res = splice::copy(r.dst(), r.src(), 0);
  CHECK(res.bytes == 0);
  CHECK_FALSE(res.error);
  CHECK(test::read_all(r.src(), 3) == "abc");
}

TEST_CASE("copy from a source at end of file returns 0 and no error", "[copy]") {
  relay r;
  ::shutdown(r.in.a.get(), SHUT_WR);
  const auto res = splice::copy(r.dst(), r.src());
  CHECK(res.bytes == 0);
  CHECK_FALSE(res.error);
}

TEST_CASE("copy reports EBADF for invalid fds, with the failing call", "[copy][errors]") {
  relay r;
  int closed = ::dup(r.src());
  ::close(closed);
  for (auto [dst, src] : {std::pair{-1, r.src()}, std::pair{r.dst(), -1}, std::pair{r.dst(), closed},
                          std::pair{closed, r.src()}, std::pair{r.dst(), 100000}}) {
    test::write_all(r.in.a.get(), "x");
    const auto res = splice::copy(dst, src, 1);
    CHECK(res.error == std::errc::bad_file_descriptor);
    CHECK(res.bytes == 0);
    CHECK_FALSE(std::string(res.op).empty());
    if (src != -1 && src != closed && src != 100000) CHECK(test::read_all(r.src(), 1) == "x");
  }
}

TEST_CASE("copy works between non-blocking sockets that say EAGAIN on both sides", "[copy]") {
  const bool userspace = GENERATE(false, true);
  relay r;
  test::set_nonblocking(r.src());
  test::set_nonblocking(r.dst());
  test::set_buffers(r.dst(), 65536);
  test::set_buffers(r.out.b.get(), 65536);
  const auto data = payload(4 << 20, 11);
  counting_poller p;
  splice::result res;
  const splice::options opt = eager(userspace);
  std::thread writer([&] {  // a source that pauses: src runs dry
    test::write_all(r.in.a.get(), data.substr(0, 2 << 20));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    test::write_all(r.in.a.get(), data.substr(2 << 20));
    ::shutdown(r.in.a.get(), SHUT_WR);
  });
  std::string got;
  std::thread reader([&] {  // a late sink: dst fills up
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    got = test::read_all(r.out.b.get());
  });
  res = splice::copy(r.dst(), r.src(), splice::no_limit, p, opt);
  ::shutdown(r.dst(), SHUT_WR);
  writer.join();
  reader.join();
  CHECK(res.bytes == data.size());
  CHECK_FALSE(res.error);
  CHECK((got == data));
  CHECK(p.reads > 0);
  CHECK(p.writes > 0);
}

TEST_CASE("a poller deadline ends a copy with timed_out", "[copy][errors]") {
  relay r;
  test::write_all(r.in.a.get(), "hello");
  splice::poll_poller p(std::chrono::milliseconds(50));
  test::set_nonblocking(r.src());
  const auto res = splice::copy(r.dst(), r.src(), splice::no_limit, p);
  CHECK(res.error == std::errc::timed_out);
  CHECK(std::string(res.op) == "poll");
  CHECK(res.bytes == 5);
  CHECK(res.unsent == 0);
  CHECK(test::read_all(r.out.b.get(), 5) == "hello");
}

namespace {

enum class kind { tcp, unix_socket, pipe, file };

const char* name(kind k) {
  switch (k) {
    case kind::tcp: return "tcp";
    case kind::unix_socket: return "unix";
    case kind::pipe: return "pipe";
    default: return "file";
  }
}

// An end of a copy: the fd the copy uses, and the peer fd a test writes into or reads from.
struct end {
  test::fd mine, peer;
};

end make_end(kind k, bool source) {
  switch (k) {
    case kind::tcp: {
      auto p = test::make_tcp();
      return {std::move(p.b), std::move(p.a)};
    }
    case kind::unix_socket: {
      auto [x, y] = test::make_unix();
      return {std::move(x), std::move(y)};
    }
    case kind::pipe: {
      auto [rd, wr] = test::make_pipe();
      return source ? end{std::move(rd), std::move(wr)} : end{std::move(wr), std::move(rd)};
    }
    default:
      return {test::make_file(), {}};
  }
}

}  // namespace

TEST_CASE("copy works for every pair of TCP, unix socket, pipe and regular file", "[copy][ends]") {
  const kind s = GENERATE(kind::tcp, kind::unix_socket, kind::pipe, kind::file);
  const kind d = GENERATE(kind::tcp, kind::unix_socket, kind::pipe, kind::file);
  const std::uint64_t limit = GENERATE(as<std::uint64_t>{}, splice::no_limit, 300001);  // values, not references
  const bool from_unix = GENERATE(false, true);
  const bool nonblocking = GENERATE(false, true);
  CAPTURE(name(s), name(d), limit, from_unix, nonblocking);
  auto src = make_end(s, true), dst = make_end(d, false);
  const auto data = payload(1 << 20, 5);
  const auto want = data.substr(0, std::size_t(std::min<std::uint64_t>(limit, data.size())));
  if (s == kind::file) {
    REQUIRE(test::write_all(src.mine.get(), data));
    ::lseek(src.mine.get(), 0, SEEK_SET);
  }
  std::thread writer([&] {
    if (s == kind::file) return;
    test::write_all(src.peer.get(), data);
    src.peer.reset();
  });
  std::string got;
  std::thread reader([&] {
    if (d != kind::file) got = test::read_all(dst.peer.get());
  });
  if (nonblocking) test::set_nonblocking(src.mine.get()), test::set_nonblocking(dst.mine.get());
  splice::options opt = eager();
  opt.splice_from_unix = from_unix;
  splice::poll_poller p;
  const auto res = splice::copy(dst.mine.get(), src.mine.get(), limit, p, opt);
  const auto rest = test::read_all(src.mine.get());  // also lets a blocked writer finish
  if (d == kind::file) {
    ::lseek(dst.mine.get(), 0, SEEK_SET);
    got = test::read_all(dst.mine.get());
  }
  dst.mine.reset();
  writer.join();
  reader.join();
  CHECK_FALSE(res.error);
  CHECK(res.bytes == want.size());
  CHECK((got == want));
  // A unix socket is spliced into as TCP is; out of only with splice_from_unix. A regular file goes
  // by sendfile into a socket, copy_file_range into a file, splice to and from pipes.
  const bool in = d == kind::tcp || d == kind::unix_socket;
  const bool out = s == kind::tcp || (from_unix && s == kind::unix_socket);
  const bool direct = s == kind::pipe && (in || d == kind::pipe || d == kind::file);
  const bool to_pipe = d == kind::pipe && (out || s == kind::file);
  const bool from_file = s == kind::file && (in || d == kind::file);
  CHECK(res.spliced == (kernel && ((out && (in || d == kind::file)) || direct || to_pipe || from_file)));
  CHECK((rest == data.substr(want.size())));  // the copy never reads past the limit
}

TEST_CASE("splicing into a reader-less pipe reports EPIPE and the process survives SIGPIPE", "[copy][sigpipe]") {
  const bool userspace = GENERATE(false, true);
  auto old = std::signal(SIGPIPE, SIG_DFL);  // the host's default disposition kills on SIGPIPE
  auto t = test::make_tcp();
  auto [rd, wr] = test::make_pipe();
  rd.reset();
  test::write_all(t.a.get(), payload(1000));
  splice::poll_poller p;
  const auto res = splice::copy(wr.get(), t.b.get(), 1000, p, eager(userspace));
  CHECK(res.error == std::errc::broken_pipe);
  CHECK(res.bytes == 0);
  // A direct splice takes nothing it cannot deliver; read(2) took the bytes before write(2) failed.
  CHECK(res.unsent == (userspace || !kernel ? 1000u : 0u));
  sigset_t pending;
  sigpending(&pending);
  CHECK_FALSE(sigismember(&pending, SIGPIPE));  // the library consumed the signal it caused
  std::signal(SIGPIPE, old);
}

TEST_CASE("a SIGPIPE the host left pending is not consumed", "[copy][sigpipe]") {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  pthread_kill(pthread_self(), SIGPIPE);  // the host's own, pending
  auto t = test::make_tcp();
  auto [rd, wr] = test::make_pipe();
  rd.reset();
  test::write_all(t.a.get(), "x");
  CHECK(splice::copy(wr.get(), t.b.get(), 1).error == std::errc::broken_pipe);
  sigset_t pending;
  sigpending(&pending);
  CHECK(sigismember(&pending, SIGPIPE));  // still the host's to take
  const timespec zero{};
  CHECK(sigtimedwait(&set, nullptr, &zero) == SIGPIPE);
  sigpending(&pending);
  CHECK_FALSE(sigismember(&pending, SIGPIPE));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

TEST_CASE("a reset destination ends the copy with ECONNRESET or EPIPE and exact accounting", "[copy][errors]") {
  const bool userspace = GENERATE(false, true);
  auto old = std::signal(SIGPIPE, SIG_DFL);
  relay r;
  const auto data = payload(64 << 20, 13);
  std::thread writer([&] {
    test::write_all(r.in.a.get(), data);
    ::shutdown(r.in.a.get(), SHUT_WR);
  });
  std::size_t read_before_reset = 0;
  std::thread reader([&] {
    read_before_reset = test::read_all(r.out.b.get(), 3 << 20).size();
    test::reset(r.out.b);
  });
  const auto res = copy_relay(r, splice::no_limit, eager(userspace));
  reader.join();
  const auto rest = test::read_all(r.src());  // what the copy never took
  writer.join();
  CHECK((res.error == std::errc::connection_reset || res.error == std::errc::broken_pipe));
  CHECK(res.bytes >= read_before_reset);
  CHECK(res.bytes + res.unsent + rest.size() == data.size());
  CHECK((rest == data.substr(data.size() - rest.size())));
  std::signal(SIGPIPE, old);
}

TEST_CASE("a reset source ends the copy with ECONNRESET and every byte read is delivered", "[copy][errors]") {
  const bool userspace = GENERATE(false, true);
  relay r;
  const auto data = payload(8 << 20, 17);
  std::thread writer([&] {
    test::write_all(r.in.a.get(), data.substr(0, 5 << 20));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    test::reset(r.in.a);
  });
  std::string got;
  std::thread reader([&] { got = test::read_all(r.out.b.get()); });
  const auto res = copy_relay(r, splice::no_limit, eager(userspace));
  ::shutdown(r.dst(), SHUT_WR);
  writer.join();
  reader.join();
  CHECK(res.error == std::errc::connection_reset);
  CHECK(res.unsent == 0);
  CHECK(got.size() == res.bytes);
  CHECK((got == data.substr(0, got.size())));
}

TEST_CASE("many copies leak no fd", "[copy][fds]") {
  splice::pipe_pool::config cfg;
  cfg.max_idle = 0;  // every pipe is closed at the end of its copy
  splice::pipe_pool pool(cfg);
  splice::options opt = eager();
  opt.pool = &pool;
  relay r;
  const int before = test::open_fds();
  for (int i = 0; i < 300; ++i) {
    test::write_all(r.in.a.get(), "ping");
    splice::poll_poller p;
    REQUIRE(splice::copy(r.dst(), r.src(), 4, p, opt).bytes == 4);
    REQUIRE(test::read_all(r.out.b.get(), 4) == "ping");
  }
  CHECK(test::open_fds() == before);
  CHECK(pool.stats().in_use == 0);
  CHECK(pool.stats().created == (kernel ? 300u : 0u));
}

TEST_CASE("copies run concurrently from several threads", "[copy][threads]") {
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 4; ++i) {
        relay r;
        const auto data = payload(std::size_t(1 + (t * 4 + i) * 40000), std::uint32_t(t * 100 + i));
        splice::result res;
        if (through(r, data, [&] { res = splice::copy(r.dst(), r.src()); }) == data && res.bytes == data.size() &&
            !res.error)
          ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(good == 32);
  CHECK(splice::pipe_pool::shared().stats().in_use == 0);
}

namespace {
/// A poller whose waits all fail, counting them; with_either adds wait_either.
template <bool with_either>
struct failing_poller {
  int waits = 0;
  std::error_code fail() { return ++waits, std::make_error_code(std::errc::not_enough_memory); }
  std::error_code wait_readable(int) { return fail(); }
  std::error_code wait_writable(int) { return fail(); }
};
template <>
struct failing_poller<true> : failing_poller<false> {
  int eithers = 0;
  std::error_code wait_either(int, int) { return ++eithers, fail(); }
};
static_assert(!splice_lib::detail::has_wait_either<failing_poller<false>>);
static_assert(splice_lib::detail::has_wait_either<failing_poller<true>>);
}  // namespace

TEST_CASE("copy ends with the error of a failed wait, from poll, after one wait", "[copy][poller]") {
  relay r;
  test::set_nonblocking(r.src());  // empty: the copy must wait for it
  failing_poller<false> p;
  const auto res = splice::copy(r.dst(), r.src(), splice::no_limit, p);
  CHECK(res.error == std::errc::not_enough_memory);
  CHECK(std::string(res.op) == "poll");
  CHECK(p.waits == 1);
}

TEST_CASE("copy waits on both ends with wait_either when the copier cannot tell which is stuck", "[copy][poller]") {
  if (!kernel) {
    WARN("SKIP: step::either comes from splicing out of a pipe, which the portable build does not do");
    return;
  }
  // An empty TCP src and a pipe dst with room: the splice says EAGAIN, and the pipe end is ready,
  // so the copier cannot tell which end said it.
  auto in = test::make_tcp();
  auto [pr, pw] = test::make_pipe();
  test::set_nonblocking(in.b.get());
  test::set_nonblocking(pw.get());
  failing_poller<true> p;
  const auto res = splice::copy(pw.get(), in.b.get(), splice::no_limit, p);
  CHECK(res.error == std::errc::not_enough_memory);
  CHECK(std::string(res.op) == "poll");
  CHECK(p.eithers == 1);
  CHECK(p.waits == 1);
  CHECK(res.bytes == 0);
}
