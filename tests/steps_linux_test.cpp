// SPDX-License-Identifier: MIT
// What advance() says an event loop should wait for, exactly: step::either when a direct splice's
// EAGAIN cannot be pinned on one end, and step::again when one busy stream has had its share.
#include <functional>
#include <string>
#include <thread>

#include <sys/epoll.h>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

namespace {

/// The real system calls, counting the zero-timeout polls of a pipe end and running a hook just
/// before the first one: it changes the pipe as another process could between the splice that
/// said EAGAIN and the poll that looks at the pipe.
struct racing_poll : splice::system_calls {
  std::function<void()>* hook;
  int* polls;
  int poll(pollfd* f, nfds_t n, int t) {
    ++*polls;
    if (*hook) std::exchange(*hook, nullptr)();
    return splice::system_calls::poll(f, n, t);
  }
};

/// Fills f (a non-blocking socket or pipe write end) until it says EAGAIN; returns the bytes.
std::size_t fill(int f) {
  static const std::string block(65536, 'f');
  std::size_t n = 0;
  for (ssize_t k; (k = ::write(f, block.data(), block.size())) > 0;) n += std::size_t(k);
  return n;
}

}  // namespace

TEST_CASE("a pipe src that fills between the splice and the poll gives step::either", "[steps]") {
  auto [pr, pw] = test::make_pipe();  // src: the caller's pipe, empty
  auto out = test::make_tcp();        // dst: a socket with room
  test::set_nonblocking(pr.get());
  test::set_nonblocking(out.a.get());
  std::function<void()> hook = [&] { test::write_all(pw.get(), "late"); };
  int polls = 0;
  splice::copier<racing_poll> c(out.a.get(), pr.get(), splice::no_limit, {}, racing_poll{{}, &hook, &polls});
  // The splice found the pipe empty, the poll finds it readable: dst never said EAGAIN, so waiting
  // only for dst to become writable could wait for an edge that never comes.
  CHECK(c.advance() == splice::step::either);
  CHECK(c.advance() == splice::step::read);  // moves "late", then the pipe is empty for sure
  CHECK(c.result().bytes == 4);
  CHECK(test::read_all(out.b.get(), 4) == "late");
}

TEST_CASE("a pipe src with bytes and a full dst names dst on the next call without another poll", "[steps]") {
  auto [pr, pw] = test::make_pipe();
  auto out = test::make_tcp();
  test::set_nonblocking(pr.get());
  test::set_nonblocking(out.a.get());
  test::set_buffers(out.a.get(), 4096);
  test::set_buffers(out.b.get(), 4096);
  fill(out.a.get());                // dst full
  test::write_all(pw.get(), "xyz");  // src has bytes
  std::function<void()> hook;
  int polls = 0;
  splice::copier<racing_poll> c(out.a.get(), pr.get(), splice::no_limit, {}, racing_poll{{}, &hook, &polls});
  CHECK(c.advance() == splice::step::either);  // the poll cannot rule out a change since the splice
  CHECK(polls == 1);
  // The pipe had bytes and the copier is its only reader: it still has them, so this EAGAIN is dst's.
  CHECK(c.advance() == splice::step::write);
  CHECK(polls == 1);
  CHECK(c.result().bytes == 0);
}

TEST_CASE("a pipe dst drained between the splice and the poll gives step::either", "[steps]") {
  auto in = test::make_tcp();         // src: a socket with bytes
  auto [pr, pw] = test::make_pipe();  // dst: the caller's pipe, full
  test::set_nonblocking(in.b.get());
  test::set_nonblocking(pw.get());
  test::set_nonblocking(pr.get());
  REQUIRE(::fcntl(pw.get(), F_SETPIPE_SZ, 8192) >= 8192);
  const std::size_t full = fill(pw.get());
  test::write_all(in.a.get(), "data");
  std::function<void()> hook = [&, full] { CHECK(test::read_all(pr.get(), full).size() == full); };
  int polls = 0;
  splice::copier<racing_poll> c(pw.get(), in.b.get(), splice::no_limit, {}, racing_poll{{}, &hook, &polls});
  CHECK(c.advance() == splice::step::either);  // src never said EAGAIN: it has bytes
  CHECK(c.result().bytes == 0);
  // Moves "data"; the next EAGAIN is ambiguous again (the pipe has room, as far as a poll can tell).
  CHECK(c.advance() == splice::step::either);
  CHECK(c.result().bytes == 4);
  CHECK(c.advance() == splice::step::read);  // no byte moved since: the room is still there
  CHECK(polls == 2);
  CHECK(test::read_all(pr.get(), 4) == "data");
}

TEST_CASE("an edge-triggered loop that waits on both fds for step::either loses no wakeup", "[steps][epoll]") {
  // The race above, end to end: a writer fills the pipe while the copier looks at it.
  auto [pr, pw] = test::make_pipe();
  auto out = test::make_tcp();
  test::set_nonblocking(pr.get());
  test::set_nonblocking(out.a.get());
  std::function<void()> hook = [&] { test::write_all(pw.get(), "late"); };
  int polls = 0;
  splice::copier<racing_poll> c(out.a.get(), pr.get(), splice::no_limit, {}, racing_poll{{}, &hook, &polls});
  test::fd ep(::epoll_create1(EPOLL_CLOEXEC));
  for (int fd : {pr.get(), out.a.get()}) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.fd = fd;
    REQUIRE(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) == 0);
  }
  epoll_event ev[2];
  while (::epoll_wait(ep.get(), ev, 2, 0) > 0) {  // consume the edges of the registration
  }
  CHECK(c.advance() == splice::step::either);
  CHECK(::epoll_wait(ep.get(), ev, 2, 5000) > 0);  // the late bytes gave src an edge
  CHECK(c.advance() == splice::step::read);
  CHECK(test::read_all(out.b.get(), 4) == "late");
}

TEST_CASE("advance() returns step::again after max_advance bytes, and the rest follows", "[steps]") {
  const bool userspace = GENERATE(false, true);
  auto file = test::make_file();  // always ready: only the bound can stop an advance early
  const auto data = test::payload(16 << 20, 5);
  REQUIRE(test::write_all(file.get(), data));
  ::lseek(file.get(), 0, SEEK_SET);
  auto [x, y] = test::make_unix();
  test::set_nonblocking(x.get());
  std::string got;
  std::thread reader([&, &peer = y] { got = test::read_all(peer.get()); });
  splice::options opt;
  opt.userspace = userspace;
  opt.max_advance = 64 << 10;
  splice::copier<> c(x.get(), file.get(), splice::no_limit, opt);
  int agains = 0;
  for (;;) {
    const auto before = c.result().bytes;
    const splice::step s = c.advance();
    if (s == splice::step::done) break;
    if (s == splice::step::again) {
      ++agains;
      CHECK(c.result().bytes - before >= opt.max_advance);
      continue;
    }
    REQUIRE(s == splice::step::write);
    pollfd p{x.get(), POLLOUT, 0};
    ::poll(&p, 1, 5000);
  }
  x.reset();
  reader.join();
  CHECK_FALSE(c.result().error);
  CHECK((got == data));
  CHECK(agains >= 8);
}

TEST_CASE("a busy stream takes turns with a quiet one on the same loop", "[steps]") {
  // A file-to-file copy is always ready, so only max_advance can make it yield.
  auto src = test::make_file(), dst = test::make_file();
  REQUIRE(test::write_all(src.get(), test::payload(64 << 20, 6)));
  ::lseek(src.get(), 0, SEEK_SET);
  test::relay quiet;
  test::set_nonblocking(quiet.src());
  test::set_nonblocking(quiet.dst());
  test::write_all(quiet.in.a.get(), "ping");
  ::shutdown(quiet.in.a.get(), SHUT_WR);
  splice::copier<> busy(dst.get(), src.get()), small(quiet.dst(), quiet.src());
  std::uint64_t busy_bytes_when_small_done = 0;
  splice::step sb = splice::step::again, ss = splice::step::again;
  // The loop's ready queue: each turn, every copier that is not waiting runs once.
  while (sb != splice::step::done || ss != splice::step::done) {
    if (sb != splice::step::done) sb = busy.advance();
    REQUIRE((sb == splice::step::again || sb == splice::step::done));  // never waits on a file
    if (ss != splice::step::done && (ss = small.advance()) == splice::step::done)
      busy_bytes_when_small_done = busy.result().bytes;
  }
  CHECK(small.result().bytes == 4);
  CHECK(test::read_all(quiet.out.b.get(), 4) == "ping");
  CHECK(busy.result().bytes == (64u << 20));
  CHECK(::lseek(dst.get(), 0, SEEK_CUR) == (64 << 20));
  CHECK(busy_bytes_when_small_done <= (2u << 20));  // one turn of the busy copy, not all of it
}
