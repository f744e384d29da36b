// SPDX-License-Identifier: MIT
// splice::async_copy and splice::async_proxy, built twice: against standalone asio (splice_asio_tests)
// and, with SPLICE_TEST_BOOST defined, against Boost.Asio (splice_boost_asio_tests). Real TCP and unix
// sockets and pipes; the copier's steps (again, either) and the readiness check after each wait are
// reached through the system-call seam and a copier wrapper.
#if defined(SPLICE_TEST_BOOST)
#include "splice/boost_asio.hpp"  // first: the header must be self-contained

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
namespace net = boost::asio;
namespace netx = boost::asio;  // deferred and as_tuple left experimental in Boost 1.80
using error_code = boost::system::error_code;
using net_traits = splice_lib::boost_asio_net;
#else
#include "splice/asio.hpp"  // first: the header must be self-contained

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/deferred.hpp>
namespace net = asio;
namespace netx = asio::experimental;
using error_code = std::error_code;
using net_traits = splice_lib::asio_net;
#endif

#include <atomic>
#include <chrono>
#include <csignal>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

using test::payload;
using tcp = net::ip::tcp;
using local = net::local::stream_protocol;
using namespace std::chrono_literals;

namespace {

/// watch_sys makes the real system calls and counts the EAGAINs the copier meets on src (empty)
/// and on dst (full). After one, the operation queues its wait before the handler returns, so a
/// test that steps the io_context with run_one() then knows what the copy waits for.
struct watch_sys : splice_lib::system_calls {
  struct state {
    int src = -1, dst = -1;
    std::atomic<int> src_empty{0}, dst_full{0};
  };
  std::shared_ptr<state> s = std::make_shared<state>();
  watch_sys(int src, int dst) { s->src = src, s->dst = dst; }

  ssize_t note(ssize_t r, int fd) {
    if (r < 0 && errno == EAGAIN) {
      ++(fd == s->dst ? s->dst_full : s->src_empty);
      errno = EAGAIN;
    }
    return r;
  }
  ssize_t read(int fd, void* buf, std::size_t n) { return note(splice_lib::system_calls::read(fd, buf, n), fd); }
  ssize_t send(int fd, const void* buf, std::size_t n, int flags) {
    return note(splice_lib::system_calls::send(fd, buf, n, flags), fd);
  }
  ssize_t splice(int in, int out, std::size_t n, unsigned flags) {
    return note(splice_lib::system_calls::splice(in, out, n, flags), out == s->dst ? out : in);
  }
};

/// forcing_copier is a copier whose advance() also says step::again (every other call, before
/// doing any work) and step::either (instead of read or write), which the copier itself says only
/// after options::max_advance bytes and on routes that cannot tell which end is not ready.
template <class Sys>
struct forcing_copier : splice_lib::copier<Sys> {
  using splice_lib::copier<Sys>::copier;
  static inline std::atomic<int> calls{0}, agains{0}, eithers{0};
  bool skip = false;
  splice::step advance(splice::sigpipe_scope& scope) {
    ++calls;
    if ((skip = !skip)) {
      ++agains;
      return splice::step::again;
    }
    const auto s = splice_lib::copier<Sys>::advance(scope);
    if (s != splice::step::read && s != splice::step::write) return s;
    ++eithers;
    return splice::step::either;
  }
};

/// thief_sys: the first time reading src says EAGAIN, it first has the writer send more and gives
/// the io_context's other thread 50 ms to take the readiness edge that sending makes, while no wait
/// is queued for it; only then does the copier see the EAGAIN and queue its wait. No later edge
/// comes: the wait must complete on the readiness that is already there.
struct thief_sys : splice_lib::system_calls {
  struct state {
    int src = -1, peer = -1;
    std::string data;
    std::atomic<bool> armed{true}, fired{false};
  };
  std::shared_ptr<state> s = std::make_shared<state>();

  ssize_t after(ssize_t r, int fd) {
    if (r < 0 && errno == EAGAIN && fd == s->src && s->armed.exchange(false)) {
      test::write_all(s->peer, s->data);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      s->fired = true;
      errno = EAGAIN;
    }
    return r;
  }
  ssize_t read(int fd, void* buf, std::size_t n) { return after(splice_lib::system_calls::read(fd, buf, n), fd); }
  ssize_t splice(int in, int out, std::size_t n, unsigned flags) {
    return after(splice_lib::system_calls::splice(in, out, n, flags), in);
  }
};

/// A copy under test: a writer thread sends into in.a, the operation copies src (in.b) to dst
/// (out.a), a reader thread drains out.b.
struct relay {
  explicit relay(net::io_context& ctx) : ctx(ctx) {}
  net::io_context& ctx;
  test::tcp_pair in = test::make_tcp(), out = test::make_tcp();
  tcp::socket src{ctx, tcp::v4(), in.b.release()}, dst{ctx, tcp::v4(), out.a.release()};
};

/// through runs run() (which starts the copy and runs the io_context) while a writer sends data
/// and a reader drains dst; dst's write side is shut down when run() returns. Returns what arrived.
template <class F>
std::string through(relay& r, const std::string& data, F run) {
  std::thread writer([&] {
    test::write_all(r.in.a.get(), data);
    ::shutdown(r.in.a.get(), SHUT_WR);
  });
  std::string got;
  std::thread reader([&] { got = test::read_all(r.out.b.get()); });
  run();
  ::shutdown(r.dst.native_handle(), SHUT_WR);
  writer.join();
  reader.join();
  return got;
}

/// Runs the io_context until pred() holds, one handler at a time.
template <class Pred>
void run_until(net::io_context& ctx, Pred pred) {
  while (!pred() && ctx.run_one()) {
  }
  REQUIRE(pred());
}

error_code aborted() { return net::error::operation_aborted; }

}  // namespace

TEST_CASE("async_copy with a callback runs it once, never inside the initiating call", "[asio]") {
  net::io_context ctx;
  relay r(ctx);
  const auto data = payload(3 << 20);
  int calls = 0;
  error_code ec;
  splice::result res;
  const auto got = through(r, data, [&] {
    splice::async_copy(r.dst, r.src, [&](error_code e, splice::result x) { ++calls, ec = e, res = x; });
    CHECK(calls == 0);
    ctx.run();
  });
  CHECK(calls == 1);
  CHECK_FALSE(ec);
  CHECK(res.bytes == data.size());
  CHECK(res.spliced);
  CHECK((got == data));
  CHECK_FALSE(r.src.non_blocking());  // the user-visible mode is left alone
  CHECK(r.src.native_non_blocking());
}

namespace {
/// An allocator that counts what it hands out, for a handler to carry.
template <class T>
struct counting_allocator {
  using value_type = T;
  int* count;
  explicit counting_allocator(int* c) : count(c) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& o) : count(o.count) {}
  T* allocate(std::size_t n) { return ++*count, std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
  template <class U>
  bool operator==(const counting_allocator<U>& o) const { return count == o.count; }
  template <class U>
  bool operator!=(const counting_allocator<U>& o) const { return count != o.count; }
};

/// A handler whose associated allocator is a counting_allocator.
struct allocating_handler {
  using allocator_type = counting_allocator<void>;
  int* count;
  splice::result* out;
  allocator_type get_allocator() const noexcept { return allocator_type(count); }
  void operator()(error_code, splice::result r) { *out = r; }
};
}  // namespace

TEST_CASE("async_copy allocates its operation with the handler's associated allocator", "[asio]") {
  net::io_context ctx;
  relay r(ctx);
  const auto data = payload(1 << 20, 40);
  int allocations = 0;
  splice::result res;
  const auto got = through(r, data, [&] {
    splice::async_copy(r.dst, r.src, allocating_handler{&allocations, &res});
    CHECK(allocations == 1);  // the operation, once
    ctx.run();
  });
  CHECK(res.bytes == data.size());
  CHECK((got == data));
}

TEST_CASE("async_copy with use_awaitable and as_tuple(use_awaitable) in a coroutine", "[asio]") {
  net::io_context ctx;
  relay r(ctx);
  const auto data = payload(2 << 20, 2);
  const bool tuple = GENERATE(false, true);
  splice::result res;
  error_code ec = aborted();
  const auto got = through(r, data, [&] {
    net::co_spawn(
        ctx,
        [&]() -> net::awaitable<void> {
          if (tuple) {
            std::tie(ec, res) = co_await splice::async_copy(r.dst, r.src, netx::as_tuple(net::use_awaitable));
          } else {
            res = co_await splice::async_copy(r.dst, r.src, net::use_awaitable);
            ec = {};
          }
        },
        net::detached);
    ctx.run();
  });
  CHECK_FALSE(ec);
  CHECK(res.bytes == data.size());
  CHECK((got == data));
}

TEST_CASE("async_copy with use_future, the io_context on another thread", "[asio][threads]") {
  net::io_context ctx;
  relay r(ctx);
  const auto data = payload(2 << 20, 3);
  splice::result res;
  std::string rest;
  const auto got = through(r, data, [&] {
    auto f = splice::async_copy(r.dst, r.src, 1000000, net::use_future);
    std::thread t([&] { ctx.run(); });
    res = f.get();
    t.join();
    rest = test::read_all(r.src.native_handle());
  });
  CHECK(res.bytes == 1000000);
  CHECK((got == data.substr(0, 1000000)));
  CHECK((rest == data.substr(1000000)));
}

TEST_CASE("async_copy with deferred starts only when the deferred operation is invoked", "[asio]") {
  net::io_context ctx;
  relay r(ctx);
  const auto data = payload(1 << 20, 4);
  int calls = 0;
  splice::result res;
  const auto got = through(r, data, [&] {
    auto op = splice::async_copy(r.dst, r.src, netx::deferred);
    ctx.poll();
    ctx.restart();
    CHECK_FALSE(r.src.native_non_blocking());  // nothing has started
    std::move(op)([&](error_code, splice::result x) { ++calls, res = x; });
    ctx.run();
  });
  CHECK(calls == 1);
  CHECK(res.bytes == data.size());
  CHECK((got == data));
}

TEST_CASE("async_copy stops at the limit and leaves the rest in src", "[asio]") {
  net::io_context ctx;
  relay r(ctx);
  const auto data = payload(300000, 5);
  const std::uint64_t limit = GENERATE(0, 1, 65536, 100000);
  splice::result res;
  std::string rest;
  const auto got = through(r, data, [&] {
    splice::async_copy(r.dst, r.src, limit, [&](error_code ec, splice::result x) {
      CHECK_FALSE(ec);
      res = x;
    });
    ctx.run();
    rest = test::read_all(r.src.native_handle());
  });
  CHECK(res.bytes == limit);
  CHECK((got == data.substr(0, limit)));
  CHECK((rest == data.substr(limit)));
}

TEST_CASE("async_copy over unix sockets and pipes", "[asio]") {
  net::io_context ctx;
  const auto data = payload(3 << 20, 6);
  std::string got;
  splice::result res;
  std::thread writer, reader;
  const auto start = [&](int to, int from) {
    writer = std::thread([&, to] {
      test::write_all(to, data);
      ::close(to);
    });
    reader = std::thread([&, from] { got = test::read_all(from); });
  };
  const auto copy = [&](auto& dst, auto& src) {
    splice::async_copy(dst, src, [&](error_code ec, splice::result x) {
      CHECK_FALSE(ec);
      res = x;
      dst.close();  // the reader sees end of file
    });
    ctx.run();
    writer.join();
    reader.join();
  };
  SECTION("unix socket to unix socket") {
    auto [w, s] = test::make_unix();
    auto [d, rd] = test::make_unix();
    local::socket src(ctx, local(), s.release()), dst(ctx, local(), d.release());
    start(w.release(), rd.get());
    copy(dst, src);
  }
  SECTION("pipe to TCP") {
    auto [pr, pw] = test::make_pipe();
    auto t = test::make_tcp();
    net::posix::stream_descriptor src(ctx, pr.release());
    tcp::socket dst(ctx, tcp::v4(), t.a.release());
    start(pw.release(), t.b.get());
    copy(dst, src);
    CHECK(res.spliced);
  }
  SECTION("TCP to pipe") {
    auto t = test::make_tcp();
    auto [pr, pw] = test::make_pipe();
    tcp::socket src(ctx, tcp::v4(), t.b.release());
    net::posix::stream_descriptor dst(ctx, pw.release());
    start(t.a.release(), pr.get());
    copy(dst, src);
    CHECK(res.spliced);
  }
  CHECK(res.bytes == data.size());
  CHECK((got == data));
}

TEST_CASE("async_copy reports a closed stream as an error through the handler", "[asio]") {
  net::io_context ctx;
  relay r(ctx);
  r.src.close();
  int calls = 0;
  error_code ec;
  splice::async_copy(r.dst, r.src, [&](error_code e, splice::result x) {
    ++calls, ec = e;
    CHECK(x.bytes == 0);
    CHECK(std::error_code(e) == x.error);
  });
  CHECK(calls == 0);
  ctx.run();
  CHECK(calls == 1);
  CHECK(ec == net::error::bad_descriptor);
}

TEST_CASE("terminal cancellation ends a copy at once; bytes, unsent and src account for every byte",
          "[asio][cancel]") {
  net::io_context ctx;
  relay r(ctx);
  test::set_buffers(r.dst.native_handle(), 16384);
  test::set_buffers(r.out.b.get(), 16384);
  const auto data = payload(8 << 20, 7);
  watch_sys sys(r.src.native_handle(), r.dst.native_handle());
  net::cancellation_signal cancel;
  std::optional<splice::result> res;
  error_code ec;
  std::thread writer([&] { test::write_all(r.in.a.get(), data); });
  splice::async_copy(r.dst, r.src, splice::no_limit, splice::options{}, sys,
                     net::bind_cancellation_slot(cancel.slot(), [&](error_code e, splice::result x) { ec = e, res = x; }));
  run_until(ctx, [&] { return sys.s->dst_full > 0; });  // dst is full: the copy holds bytes
  cancel.emit(net::cancellation_type::terminal);
  ctx.run();
  REQUIRE(res);
  CHECK(ec == aborted());
  CHECK(res->error == std::error_code(ec));
  CHECK(res->unsent > 0);
  ::shutdown(r.dst.native_handle(), SHUT_WR);
  const auto got = test::read_all(r.out.b.get());
  std::string rest;
  std::thread rest_reader([&] { rest = test::read_all(r.src.native_handle()); });
  writer.join();
  ::shutdown(r.in.a.get(), SHUT_WR);
  rest_reader.join();
  CHECK(got.size() == res->bytes);
  CHECK((got == data.substr(0, got.size())));
  CHECK(got.size() + res->unsent + rest.size() == data.size());
  CHECK((rest == data.substr(data.size() - rest.size())));
}

TEST_CASE("partial and total cancellation wait until nothing is held, then lose nothing", "[asio][cancel]") {
  const auto type = GENERATE(net::cancellation_type::partial, net::cancellation_type::total);
  net::io_context ctx;
  relay r(ctx);
  test::set_buffers(r.dst.native_handle(), 16384);
  test::set_buffers(r.out.b.get(), 16384);
  const auto data = payload(4 << 20, 8);
  watch_sys sys(r.src.native_handle(), r.dst.native_handle());
  net::cancellation_signal cancel;
  std::optional<splice::result> res;
  error_code ec;
  std::thread writer([&] { test::write_all(r.in.a.get(), data); });  // and then stays silent
  splice::async_copy(r.dst, r.src, splice::no_limit, splice::options{}, sys,
                     net::bind_cancellation_slot(cancel.slot(), [&](error_code e, splice::result x) { ec = e, res = x; }));
  run_until(ctx, [&] { return sys.s->dst_full > 0; });  // holding bytes, waiting for dst
  cancel.emit(type);
  ctx.poll();
  CHECK_FALSE(res);  // not while bytes are held
  std::string got;
  std::thread reader([&] { got = test::read_all(r.out.b.get()); });
  ctx.run();  // the copy writes what it holds, reads on until src is empty, then stops
  REQUIRE(res);
  CHECK(ec == aborted());
  CHECK(res->unsent == 0);
  ::shutdown(r.dst.native_handle(), SHUT_WR);
  reader.join();
  std::string rest;
  std::thread rest_reader([&] { rest = test::read_all(r.src.native_handle()); });
  writer.join();
  ::shutdown(r.in.a.get(), SHUT_WR);
  rest_reader.join();
  CHECK(got.size() == res->bytes);
  CHECK((got + rest == data));
}

TEST_CASE("cancellation of an idle copy, and socket cancel() and close(), end it with operation_aborted",
          "[asio][cancel]") {
  net::io_context ctx;
  relay r(ctx);
  watch_sys sys(r.src.native_handle(), r.dst.native_handle());
  net::cancellation_signal cancel;
  std::optional<splice::result> res;
  error_code ec;
  const auto small = payload(1000, 9);
  test::write_all(r.in.a.get(), small);
  splice::async_copy(r.dst, r.src, splice::no_limit, splice::options{}, sys,
                     net::bind_cancellation_slot(cancel.slot(), [&](error_code e, splice::result x) { ec = e, res = x; }));
  run_until(ctx, [&] { return sys.s->src_empty > 0; });  // moved what there was, waits for src
  const char* op = "";
  SECTION("partial") {
    cancel.emit(net::cancellation_type::partial);
    op = "cancel";
  }
  SECTION("terminal") {
    cancel.emit(net::cancellation_type::terminal);
    op = "cancel";
  }
  SECTION("socket cancel()") {
    r.src.cancel();
    op = "async_wait";
  }
  SECTION("socket close()") {
    r.src.close();
    op = "async_wait";
  }
  ctx.run();
  REQUIRE(res);
  CHECK(ec == aborted());
  CHECK(res->bytes == small.size());
  CHECK(res->unsent == 0);
  CHECK(std::string(res->op) == op);
  test::set_nonblocking(r.out.b.get());
  CHECK((test::read_available(r.out.b.get()) == small));
}

TEST_CASE("async_copy || a timer: the timer wins and the copy is cancelled", "[asio][cancel]") {
  using namespace net::experimental::awaitable_operators;
  net::io_context ctx;
  relay r(ctx);
  std::size_t winner = 9;
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        net::steady_timer timer(ctx, 1ms);
        auto v = co_await (splice::async_copy(r.dst, r.src, netx::as_tuple(net::use_awaitable)) ||
                           timer.async_wait(net::use_awaitable));
        winner = v.index();
      },
      net::detached);
  ctx.run();
  CHECK(winner == 1);
  const auto data = payload(1000, 10);  // src is untouched and still usable
  test::write_all(r.in.a.get(), data);
  ::shutdown(r.in.a.get(), SHUT_WR);
  CHECK((test::read_all(r.src.native_handle()) == data));
}

TEST_CASE("the handler runs on its own strand", "[asio][threads]") {
  net::io_context ctx;
  relay r(ctx);
  auto strand = net::make_strand(ctx);
  const auto data = payload(2 << 20, 11);
  bool on_strand = false;
  splice::result res;
  const auto got = through(r, data, [&] {
    splice::async_copy(r.dst, r.src, net::bind_executor(strand, [&](error_code, splice::result x) {
                         on_strand = strand.running_in_this_thread();
                         res = x;
                       }));
    std::thread t([&] { ctx.run(); });
    ctx.run();
    t.join();
  });
  CHECK(on_strand);
  CHECK(res.bytes == data.size());
  CHECK((got == data));
}

TEST_CASE("step::again posts and lets other work run; step::either waits on both fds", "[asio]") {
  net::io_context ctx;
  relay r(ctx);
  test::set_buffers(r.dst.native_handle(), 16384);  // the copy must wait for dst, again and again
  test::set_buffers(r.out.b.get(), 16384);
  const auto data = payload(4 << 20, 12);
  watch_sys sys(r.src.native_handle(), r.dst.native_handle());
  using forcing = forcing_copier<watch_sys>;
  forcing::calls = forcing::agains = forcing::eithers = 0;
  int ticks = 0, ticks_after_again = -1;
  bool done = false;
  std::function<void()> tick = [&] {
    ++ticks;
    if (!done) net::post(ctx, tick);
  };
  splice::result res;
  const auto got = through(r, data, [&] {
    net::post(ctx, tick);
    splice_lib::async_relay<net_traits, splice::result, forcing_copier>(
        r.src, r.dst, splice::no_limit, splice::proxy_options{}, sys, [&](error_code ec, splice::result x) {
          CHECK_FALSE(ec);
          res = x, done = true;
        });
    run_until(ctx, [&] { return forcing::calls == 1; });  // it said step::again
    ticks_after_again = ticks;
    run_until(ctx, [&] { return forcing::calls == 2; });
    CHECK(ticks > ticks_after_again);  // the tick, already queued, ran before the copy went on
    ctx.run();
  });
  CHECK(forcing::agains > 1);
  CHECK(forcing::eithers > 0);
  CHECK(res.bytes == data.size());
  CHECK((got == data));
}

TEST_CASE("a copy that never waits yields to the executor every options::max_advance bytes", "[asio]") {
  // 512 KiB in a pipe, then its end, into an empty 1 MiB pipe: the copy never meets EAGAIN, so only
  // max_advance makes it let the tick, queued all along, run.
  net::io_context ctx;
  auto [sr, sw] = test::make_pipe();
  auto [dr, dw] = test::make_pipe();
  for (int fd : {sw.get(), dw.get()}) REQUIRE(::fcntl(fd, F_SETPIPE_SZ, 1 << 20) >= (1 << 20));
  const auto data = payload(512 << 10, 21);
  REQUIRE(test::write_all(sw.get(), data));
  sw.reset();  // src ends after the 512 KiB
  net::posix::stream_descriptor src(ctx, sr.release()), dst(ctx, dw.release());
  splice::options opt;
  opt.max_advance = 32 << 10;
  opt.max_splice = 8 << 10;
  int ticks = 0;
  bool done = false;
  std::function<void()> tick = [&] {
    ++ticks;
    if (!done) net::post(ctx, tick);
  };
  net::post(ctx, tick);
  splice::result res;
  splice::async_copy(dst, src, splice::no_limit, opt, [&](error_code ec, splice::result x) {
    CHECK_FALSE(ec);
    res = x, done = true;
  });
  ctx.run();
  dst.close();
  CHECK(res.bytes == data.size());
  CHECK(ticks >= int(data.size() / opt.max_advance) - 1);
  CHECK((test::read_all(dr.get()) == data));
}

TEST_CASE("many copies on one io_context: one slow consumer starves none of the others", "[asio]") {
  net::io_context ctx;
  constexpr int n = 24;
  std::vector<std::unique_ptr<relay>> relays;
  std::vector<std::string> data(n), got(n);
  std::vector<std::optional<splice::result>> res(n);
  std::vector<std::unique_ptr<tcp::socket>> writers, readers;
  int finished = 0;
  const auto read_dst = [&](int i) {
    net::async_read(*readers[i], net::dynamic_buffer(got[i]), [](error_code, std::size_t) {});
  };
  for (int i = 0; i < n; ++i) {
    relays.push_back(std::make_unique<relay>(ctx));
    relay& r = *relays.back();
    data[i] = payload(i == 0 ? std::size_t(16) << 20 : std::size_t(i) << 17, 100 + i);
    if (i == 0) test::set_buffers(r.dst.native_handle(), 16384), test::set_buffers(r.out.b.get(), 16384);
    writers.push_back(std::make_unique<tcp::socket>(ctx, tcp::v4(), r.in.a.release()));
    readers.push_back(std::make_unique<tcp::socket>(ctx, tcp::v4(), r.out.b.release()));
    net::async_write(*writers[i], net::buffer(data[i]), [&, i](error_code, std::size_t) {
      writers[i]->shutdown(tcp::socket::shutdown_send);
    });
    splice::async_copy(r.dst, r.src, [&, i](error_code, splice::result x) {
      res[i] = x;
      relays[i]->dst.shutdown(tcp::socket::shutdown_send);
      ++finished;
    });
    if (i > 0) read_dst(i);  // relay 0's consumer reads nothing yet
  }
  run_until(ctx, [&] { return finished == n - 1; });
  CHECK_FALSE(res[0]);
  read_dst(0);
  ctx.run();
  for (int i = 0; i < n; ++i) {
    REQUIRE(res[i]);
    CHECK_FALSE(res[i]->error);
    CHECK(res[i]->bytes == data[i].size());
    CHECK((got[i] == data[i]));
  }
}

TEST_CASE("a readiness edge another thread takes before the wait is queued still wakes the copy",
          "[asio][threads]") {
  net::io_context ctx(2);
  relay r(ctx);
  thief_sys sys;
  sys.s->src = r.src.native_handle();
  sys.s->peer = r.in.a.get();
  sys.s->data = payload(5000, 20);
  std::promise<splice::result> done;
  splice::async_copy(r.dst, r.src, splice::no_limit, splice::options{}, sys,
                     [&](error_code, splice::result x) { done.set_value(x); });
  std::thread t1([&] { ctx.run(); }), t2([&] { ctx.run(); });
  pollfd p{r.out.b.get(), POLLIN, 0};
  const bool woke = ::poll(&p, 1, 20000) == 1;  // a lost wakeup: fail instead of hanging
  if (!woke) ctx.stop();
  CHECK(sys.s->fired);
  CHECK(woke);
  if (woke) {
    CHECK((test::read_all(r.out.b.get(), 5000) == sys.s->data));
    ::shutdown(r.in.a.get(), SHUT_WR);
    CHECK(done.get_future().get().bytes == 5000);
  }
  t1.join();
  t2.join();
}

TEST_CASE("copies on an io_context run by four threads lose no wakeup", "[asio][threads][stress]") {
  // Small socket buffers make every copy wait for dst and src again and again while the peers'
  // operations, on the same io_context, make other threads take readiness edges; a lost wakeup
  // leaves a copy (and its peers) stuck for good.
  net::io_context ctx(4);
  constexpr int n = 32, rounds = 3;
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::unique_ptr<relay>> relays;
    std::vector<std::string> data(n), got(n);
    std::vector<std::unique_ptr<tcp::socket>> writers, readers;
    std::vector<splice::result> res(n);
    std::atomic<int> finished{0};
    std::promise<void> all_done;
    for (int i = 0; i < n; ++i) {
      relays.push_back(std::make_unique<relay>(ctx));
      relay& r = *relays.back();
      for (int f : {r.in.a.get(), r.src.native_handle(), r.dst.native_handle(), r.out.b.get()}) test::set_buffers(f, 4096);
      data[i] = payload(256 << 10, 1000 * round + i);
      writers.push_back(std::make_unique<tcp::socket>(net::make_strand(ctx), tcp::v4(), r.in.a.release()));
      readers.push_back(std::make_unique<tcp::socket>(net::make_strand(ctx), tcp::v4(), r.out.b.release()));
    }
    for (int i = 0; i < n; ++i) {
      net::async_write(*writers[i], net::buffer(data[i]), [&, i](error_code, std::size_t) {
        writers[i]->shutdown(tcp::socket::shutdown_send);
      });
      net::async_read(*readers[i], net::dynamic_buffer(got[i]), [](error_code, std::size_t) {});
      splice::async_copy(relays[i]->dst, relays[i]->src, [&, i](error_code, splice::result x) {
        res[i] = x;
        relays[i]->dst.shutdown(tcp::socket::shutdown_send);
        if (++finished == n) all_done.set_value();
      });
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back([&] { ctx.run(); });
    const bool in_time = all_done.get_future().wait_for(120s) == std::future_status::ready;
    if (!in_time) ctx.stop();  // a lost wakeup: fail instead of hanging
    for (auto& t : threads) t.join();
    ctx.restart();
    REQUIRE(in_time);
    ctx.run();  // the readers' end of file
    ctx.restart();
    for (int i = 0; i < n; ++i) {
      CHECK_FALSE(res[i].error);
      CHECK(res[i].bytes == data[i].size());
      CHECK((got[i] == data[i]));
    }
  }
}

TEST_CASE("a copy into a reset socket or a reader-less pipe fails with EPIPE and the process lives",
          "[asio][sigpipe]") {
  const auto old = std::signal(SIGPIPE, SIG_DFL);
  net::io_context ctx;
  const auto data = payload(1 << 20, 14);
  std::optional<splice::result> res;
  const auto copy = [&](auto& dst, auto& src) {
    splice::async_copy(dst, src, [&](error_code, splice::result x) { res = x; });
    ctx.run();
  };
  auto in = test::make_tcp();
  test::write_all(in.a.get(), data);
  tcp::socket src(ctx, tcp::v4(), in.b.release());
  SECTION("reset TCP peer") {
    auto out = test::make_tcp();
    test::reset(out.b);
    while (::send(out.a.get(), "x", 1, MSG_NOSIGNAL) >= 0) {  // takes the ECONNRESET: the next write says EPIPE
    }
    tcp::socket dst(ctx, tcp::v4(), out.a.release());
    copy(dst, src);
    REQUIRE(res);
    CHECK(res->error == std::errc::broken_pipe);
  }
  SECTION("pipe without a reader") {
    auto [pr, pw] = test::make_pipe();
    pr.reset();
    net::posix::stream_descriptor dst(ctx, pw.release());
    copy(dst, src);
    REQUIRE(res);
    CHECK(res->error == std::errc::broken_pipe);
  }
  sigset_t pending;
  sigpending(&pending);
  CHECK_FALSE(sigismember(&pending, SIGPIPE));
  std::signal(SIGPIPE, old);
}

TEST_CASE("a destroyed io_context destroys a pending copy without calling it", "[asio]") {
  splice::pipe_pool::shared().clear();
  const int fds_before = test::open_fds();
  bool called = false;
  {
    net::io_context ctx;
    struct session {
      session(net::io_context& ctx, test::tcp_pair& in, test::tcp_pair& out)
          : src(ctx, tcp::v4(), in.b.release()), dst(ctx, tcp::v4(), out.a.release()) {}
      tcp::socket src, dst;
    };
    auto in = test::make_tcp(), out = test::make_tcp();
    auto s = std::make_shared<session>(ctx, in, out);
    watch_sys sys(s->src.native_handle(), s->dst.native_handle());
    splice::async_copy(s->dst, s->src, splice::no_limit, splice::options{}, sys,
                       [&called, s](error_code, splice::result) { called = true; });
    s.reset();  // the handler owns the sockets now
    run_until(ctx, [&] { return sys.s->src_empty > 0; });
  }
  CHECK_FALSE(called);
  splice::pipe_pool::shared().clear();
  CHECK(test::open_fds() == fds_before);
}

namespace {
/// A client and a server, with async_proxy between them: client <-> (a | b) <-> server.
struct rig {
  explicit rig(net::io_context& ctx) : ctx(ctx) {}
  net::io_context& ctx;
  test::tcp_pair front = test::make_tcp(), back = test::make_tcp();
  tcp::socket a{ctx, tcp::v4(), front.b.release()}, b{ctx, tcp::v4(), back.a.release()};
  int client() const { return front.a.get(); }
  int server() const { return back.b.get(); }
};
}  // namespace

TEST_CASE("async_proxy passes a half-close on and keeps the other direction open", "[asio][proxy]") {
  net::io_context ctx;
  rig r(ctx);
  const auto question = payload(100000, 15), answer = payload(3 << 20, 16);
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
  const bool forced = GENERATE(false, true);  // with step::again and step::either
  std::optional<splice::proxy_result> res;
  error_code ec = aborted();
  const auto done = [&](error_code e, splice::proxy_result x) { ec = e, res = x; };
  if (forced) {
    splice_lib::async_relay<net_traits, splice::proxy_result, forcing_copier>(
        r.a, r.b, splice::no_limit, splice::proxy_options{}, splice::system_calls{}, done);
  } else {
    splice::async_proxy(r.a, r.b, done);
  }
  std::thread t([&] { ctx.run(); });  // two threads: the directions still never race
  ctx.run();
  t.join();
  server.join();
  client.join();
  REQUIRE(res);
  CHECK_FALSE(ec);
  for (auto* s : {&r.a, &r.b}) {  // proxy_options::nodelay, as splice::proxy
    tcp::no_delay nodelay;
    s->get_option(nodelay);
    CHECK(nodelay.value());
  }
  CHECK(res->a_to_b.bytes == question.size());
  CHECK(res->b_to_a.bytes == answer.size());
  CHECK((got == answer));
}

TEST_CASE("async_proxy mirrors a -> b: an exact copy, or a stalled mirror cut alone", "[asio][proxy][mirror]") {
  net::io_context ctx;
  rig r(ctx);
  const auto up = payload(4 << 20, 40), down = payload(100000, 41);
  const bool stalled = GENERATE(false, true);  // nobody reads the mirror, small buffers
  test::tcp_pair m = test::make_tcp();
  if (stalled) test::set_buffers(m.a.get(), 16 << 10), test::set_buffers(m.b.get(), 16 << 10);
  splice::mirror::config c;
  c.lag = stalled ? 64 << 10 : up.size();  // a mirror that is read is never cut, however it is scheduled
  c.linger = stalled ? 0ms : 60s;
  splice::mirror mirror(m.a.release(), c);
  splice::proxy_options opt;
  opt.mirror_a_to_b = &mirror;
  std::string got_up, got_down, mirrored;
  const auto side = [](int fd, const std::string& out, std::string& in) {
    std::thread w([&] { test::write_all(fd, out), ::shutdown(fd, SHUT_WR); });
    in = test::read_all(fd);
    w.join();
  };
  std::thread client([&] { side(r.client(), up, got_down); }), server([&] { side(r.server(), down, got_up); });
  std::thread reader([&] { mirrored = stalled ? "" : test::read_all(m.b.get()); });
  std::optional<splice::proxy_result> res;
  error_code ec = aborted();
  splice::async_proxy(r.a, r.b, opt, [&](error_code e, splice::proxy_result x) { ec = e, res = x; });
  ctx.run();
  client.join(), server.join(), reader.join();
  REQUIRE(res);
  CHECK_FALSE(ec);
  CHECK((got_up == up));
  CHECK((got_down == down));
  if (stalled) mirrored = test::read_all(m.b.get());  // what it received before it was cut and closed
  CHECK(mirror.cut() == stalled);
  CHECK(mirrored.size() == mirror.bytes());
  CHECK((mirrored == (stalled ? up.substr(0, mirrored.size()) : up)));
}

TEST_CASE("async_proxy ends an idle pair with timed_out", "[asio][proxy]") {
  net::io_context ctx;
  rig r(ctx);
  splice::proxy_options opt;
  opt.idle_timeout = 50ms;
  std::optional<splice::proxy_result> res;
  error_code ec;
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        std::tie(ec, res) = co_await splice::async_proxy(r.a, r.b, opt, netx::as_tuple(net::use_awaitable));
      },
      net::detached);
  ctx.run();
  REQUIRE(res);
  CHECK(std::error_code(ec) == std::errc::timed_out);
  CHECK(std::string(res->op) == "idle");
  CHECK(res->a_to_b.error == std::errc::timed_out);
  CHECK(res->b_to_a.error == std::errc::timed_out);
}

TEST_CASE("async_proxy reports a reset peer as the first error and stops the other direction",
          "[asio][proxy]") {
  net::io_context ctx;
  rig r(ctx);
  const auto up = payload(100000, 17);
  test::write_all(r.client(), up);
  test::reset(r.back.b);  // the server resets
  std::optional<splice::proxy_result> res;
  error_code ec;
  splice::async_proxy(r.a, r.b, [&](error_code e, splice::proxy_result x) { ec = e, res = x; });
  ctx.run();
  REQUIRE(res);
  CHECK((res->error == std::errc::connection_reset || res->error == std::errc::broken_pipe));
  CHECK(std::error_code(ec) == res->error);
  const bool down_failed = res->b_to_a.error == res->error;
  CHECK((down_failed ? res->a_to_b.error : res->b_to_a.error) == std::errc::operation_canceled);
}

TEST_CASE("async_proxy || a timer cancels the proxy", "[asio][proxy][cancel]") {
  using namespace net::experimental::awaitable_operators;
  net::io_context ctx;
  rig r(ctx);
  std::size_t winner = 9;
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        net::steady_timer timer(ctx, 1ms);
        auto v = co_await (splice::async_proxy(r.a, r.b, netx::as_tuple(net::use_awaitable)) ||
                           timer.async_wait(net::use_awaitable));
        winner = v.index();
      },
      net::detached);
  ctx.run();
  CHECK(winner == 1);
}

TEST_CASE("async_proxy honours a drain: cut at its deadline with timed_out from drain", "[asio][proxy][drain]") {
  net::io_context ctx;
  rig r(ctx);
  splice::drain d;
  splice::proxy_options o;
  o.drain = &d;
  std::optional<splice::proxy_result> res;
  error_code ec;
  splice::async_proxy(r.a, r.b, o, [&](error_code e, splice::proxy_result x) { ec = e, res = x; });
  ctx.poll();  // started, waiting for bytes
  CHECK_FALSE(res);
  std::thread other([&] { d.request(std::chrono::steady_clock::now()); });  // from another thread
  other.join();
  ctx.run();
  REQUIRE(res);
  CHECK(std::error_code(ec) == std::errc::timed_out);
  CHECK(std::string(res->op) == "drain");
}

namespace {
/// A client connection (client, as a plain fd) and its accepted end as the framework's socket.
struct greeting {
  explicit greeting(net::io_context& ctx) : ctx(ctx) {
    const int one = 1;
    ::setsockopt(t.a.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // a segment per write
  }
  net::io_context& ctx;
  test::tcp_pair t = test::make_tcp();
  tcp::socket s{ctx, tcp::v4(), t.b.release()};
  int client() const { return t.a.get(); }
};

const std::string v1_line = "PROXY TCP4 203.0.113.7 192.0.2.80 51234 8080\r\n";
}  // namespace

TEST_CASE("async_read_proxy_header: a header sent a byte at a time is accepted, and what follows stays",
          "[asio][proxy_header]") {
  net::io_context ctx;
  greeting g(ctx);
  std::optional<splice::proxy_header_reader<>> got;
  error_code ec = aborted();
  int calls = 0;
  splice::async_read_proxy_header(g.s, 2000ms, [&](error_code e, splice::proxy_header_reader<> r) {
    ++calls, ec = e, got.emplace(std::move(r));
  });
  CHECK(calls == 0);  // never inside the initiating call
  std::thread client([&] {
    for (char c : v1_line) {
      test::write_all(g.client(), std::string(1, c));
      std::this_thread::sleep_for(2ms);
    }
    test::write_all(g.client(), "after the header");
  });
  ctx.run();
  client.join();
  CHECK(calls == 1);
  REQUIRE(got);
  CHECK_FALSE(ec);
  REQUIRE_FALSE(got->error());
  CHECK(got->header().version == 1);
  CHECK(got->header().size == v1_line.size());
  const auto* src = reinterpret_cast<const sockaddr_in*>(&got->header().src);
  CHECK(src->sin_family == AF_INET);
  CHECK(ntohs(src->sin_port) == 51234);
  CHECK_FALSE(g.s.non_blocking());  // the user-visible mode is left alone
  CHECK(test::read_all(g.s.native_handle(), 16) == "after the header");
}

TEST_CASE("async_read_proxy_header in a coroutine: a v2 header with TLVs, and a splice of what follows",
          "[asio][proxy_header]") {
  net::io_context ctx;
  greeting g(ctx);
  sockaddr_in a{}, b{};
  a.sin_family = b.sin_family = AF_INET;
  a.sin_port = htons(4000), b.sin_port = htons(443);
  a.sin_addr.s_addr = htonl(0xc0000201), b.sin_addr.s_addr = htonl(0xc0000202);
  const std::string alpn = "h2";
  const splice::proxy_tlv tlv{splice::proxy_tlv_type::alpn, 2, reinterpret_cast<const unsigned char*>(alpn.data())};
  splice::proxy_v2_extras x;
  x.tlvs = &tlv, x.count = 1, x.crc32c = true;
  std::string header(512, '\0');
  header.resize(splice::build_proxy_v2(&header[0], header.size(), reinterpret_cast<const sockaddr*>(&a),
                                       reinterpret_cast<const sockaddr*>(&b), x));
  const auto body = payload(1 << 20, 30);
  std::thread client([&] { test::write_all(g.client(), header + body), ::shutdown(g.client(), SHUT_WR); });
  auto sink = test::make_tcp();
  tcp::socket out(ctx, tcp::v4(), sink.a.release());
  std::string rest;
  std::thread reader([&] { rest = test::read_all(sink.b.get()); });
  std::optional<splice::proxy_header_reader<>> got;
  splice::result copied;
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        auto [ec, r] = co_await splice::async_read_proxy_header(g.s, 1000ms, netx::as_tuple(net::use_awaitable));
        got.emplace(std::move(r));
        if (ec) co_return;
        std::tie(std::ignore, copied) = co_await splice::async_copy(out, g.s, netx::as_tuple(net::use_awaitable));
        out.close();
      },
      net::detached);
  ctx.run();
  client.join();
  reader.join();
  REQUIRE(got);
  REQUIRE_FALSE(got->error());
  CHECK(got->header().version == 2);
  const splice::proxy_tlv t = got->header().tlvs.find(splice::proxy_tlv_type::alpn);
  REQUIRE(t.value);
  CHECK(std::string(reinterpret_cast<const char*>(t.value), t.length) == "h2");
  CHECK(copied.bytes == body.size());
  CHECK((rest == body));
}

TEST_CASE("async_read_proxy_header: a bad header ends the read with bad_proxy_header and its reason",
          "[asio][proxy_header]") {
  net::io_context ctx;
  greeting g(ctx);
  const std::string bad = GENERATE(std::string("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n"), std::string("GET / HTTP/1.1\r\n"));
  test::write_all(g.client(), bad);
  std::optional<splice::proxy_header_reader<>> got;
  error_code ec;
  splice::async_read_proxy_header(g.s, 1000ms, [&](error_code e, splice::proxy_header_reader<> r) {
    ec = e, got.emplace(std::move(r));
  });
  const auto start = std::chrono::steady_clock::now();
  ctx.run();
  CHECK(std::chrono::steady_clock::now() - start < 500ms);  // at once, not at the deadline
  REQUIRE(got);
  CHECK(got->error() == splice::errc::bad_proxy_header);
  CHECK(std::error_code(ec) == got->error());
  CHECK(std::string(got->op()) == "proxy header");
  CHECK(std::string(got->reason()) != "");
}

TEST_CASE("async_read_proxy_header: a silent client, or one that stops inside the header, times out",
          "[asio][proxy_header]") {
  net::io_context ctx;
  greeting g(ctx);
  const std::string part = GENERATE(std::string(), std::string("PROXY TCP4 1.2"));
  if (!part.empty()) test::write_all(g.client(), part);
  std::optional<splice::proxy_header_reader<>> got;
  error_code ec;
  const auto start = std::chrono::steady_clock::now();  // before the deadline's timer starts
  splice::async_read_proxy_header(g.s, 100ms, [&](error_code e, splice::proxy_header_reader<> r) {
    ec = e, got.emplace(std::move(r));
  });
  ctx.run();
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= 100ms);  // never before the deadline
  CHECK(took < 5000ms);  // and not hung
  REQUIRE(got);
  CHECK(got->error() == std::errc::timed_out);
  CHECK(std::error_code(ec) == std::errc::timed_out);
  CHECK(std::string(got->op()) == "deadline");
  CHECK(got->consumed() == part.size());
  CHECK(g.s.is_open());  // the caller closes it
}

TEST_CASE("async_read_proxy_header || a timer: the timer wins and the read is cancelled", "[asio][proxy_header][cancel]") {
  using namespace net::experimental::awaitable_operators;
  net::io_context ctx;
  greeting g(ctx);
  std::size_t winner = 9;
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        net::steady_timer timer(ctx, 1ms);
        auto v = co_await (splice::async_read_proxy_header(g.s, 5000ms, netx::as_tuple(net::use_awaitable)) ||
                           timer.async_wait(net::use_awaitable));
        winner = v.index();
      },
      net::detached);
  const auto start = std::chrono::steady_clock::now();
  ctx.run();
  CHECK(winner == 1);
  CHECK(std::chrono::steady_clock::now() - start < 1000ms);
}

TEST_CASE("async_read_proxy_header: close() during the wait ends it with operation_aborted", "[asio][proxy_header]") {
  net::io_context ctx;
  greeting g(ctx);
  test::write_all(g.client(), "PROXY TCP4 ");
  std::optional<splice::proxy_header_reader<>> got;
  error_code ec;
  splice::async_read_proxy_header(g.s, 5000ms, [&](error_code e, splice::proxy_header_reader<> r) {
    ec = e, got.emplace(std::move(r));
  });
  ctx.poll();  // started: the header's start taken, waiting for more
  CHECK_FALSE(got);
  g.s.close();
  ctx.run();
  REQUIRE(got);
  CHECK(ec == aborted());
  CHECK(got->error() == std::error_code(ec));
  CHECK(got->consumed() == 11);
}

TEST_CASE("async_read_proxy_header: many reads on an io_context run by two threads, headers in two pieces",
          "[asio][proxy_header][threads]") {
  net::io_context ctx;
  std::vector<std::unique_ptr<greeting>> conns;
  for (int i = 0; i < 40; ++i) conns.push_back(std::make_unique<greeting>(ctx));
  std::atomic<int> ok{0}, calls{0};
  for (auto& g : conns) {
    splice::async_read_proxy_header(g->s, 5000ms, [&](error_code e, splice::proxy_header_reader<> r) {
      ++calls;
      if (!e && r.header().size == v1_line.size()) ++ok;
    });
  }
  std::thread t([&] { ctx.run(); });
  std::thread client([&] {
    for (auto& g : conns) test::write_all(g->client(), v1_line.substr(0, 20));
    std::this_thread::sleep_for(5ms);
    for (auto& g : conns) test::write_all(g->client(), v1_line.substr(20) + "x");
  });
  ctx.run();
  t.join();
  client.join();
  CHECK(calls == 40);
  CHECK(ok == 40);
  for (auto& g : conns) CHECK(test::read_all(g->s.native_handle(), 1) == "x");
}
