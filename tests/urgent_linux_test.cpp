// SPDX-License-Identifier: MIT
// TCP urgent data: splice never reads across the urgent mark, so a spliced copy must cross it the
// way read(2) does. Every test compares the copy with a read(2) loop on a second connection fed
// the same sends, with every byte queued before either starts reading.
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

namespace {

/// One send of a script: urgent pieces are one byte sent with MSG_OOB (only the last byte of such a
/// send is urgent).
struct piece {
  std::string bytes;
  bool urgent = false;
};

std::vector<piece> script(int which) {
  const std::string bulk = test::payload(100000, std::uint32_t(which));
  switch (which) {
    case 0: return {{"hello"}, {"!", true}, {"world" + bulk}};  // the case: mark at 5
    case 1: {  // many urgent bytes: Linux keeps only the latest out of band
      std::vector<piece> s;
      for (char c = 'a'; c < 'k'; ++c) s.push_back({std::string(3, c)}), s.push_back({std::string(1, char(c - 32)), true});
      s.push_back({bulk});
      return s;
    }
    case 2: return {{"!", true}, {bulk}};       // urgent first: the mark at offset 0
    default: return {{bulk}, {"!", true}};      // urgent last, then end of file
  }
}

std::size_t total(const std::vector<piece>& s) {
  std::size_t n = 0;
  for (const auto& p : s) n += p.bytes.size();
  return n;
}

void send_script(int fd, const std::vector<piece>& s) {
  for (const auto& p : s)
    for (std::size_t off = 0; off < p.bytes.size();) {
      const ssize_t n = ::send(fd, p.bytes.data() + off, p.bytes.size() - off, p.urgent ? MSG_OOB : 0);
      test::check(n > 0, "send");
      off += std::size_t(n);
    }
}

void set_oobinline(int fd, bool on) {
  const int v = on;
  test::check(::setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &v, sizeof v) == 0, "SO_OOBINLINE");
}

/// A source connection and a reference connection that got the same sends. `close` ends both with
/// a FIN after the script; otherwise they stay open.
struct fed {
  test::tcp_pair src = test::make_tcp(), ref = test::make_tcp();
  fed(const std::vector<piece>& s, bool close, bool oobinline) {
    set_oobinline(src.b.get(), oobinline);
    set_oobinline(ref.b.get(), oobinline);
    send_script(src.a.get(), s);
    send_script(ref.a.get(), s);
    if (close) ::shutdown(src.a.get(), SHUT_WR), ::shutdown(ref.a.get(), SHUT_WR);
    test::wait_acked(src.a.get());
    test::wait_acked(ref.a.get());
  }
};

/// A destination: TCP (the copy splices through a pooled pipe) or a pipe (one splice per chunk).
struct sink {
  test::fd mine, peer;
  std::string got;
  std::thread reader;
  explicit sink(bool pipe) {
    if (pipe) {
      auto [r, w] = test::make_pipe();
      mine = std::move(w), peer = std::move(r);
    } else {
      auto t = test::make_tcp();
      mine = std::move(t.a), peer = std::move(t.b);
    }
    reader = std::thread([this] { got = test::read_all(peer.get()); });
  }
  std::string finish() {
    mine.reset();  // end of file for the reader
    reader.join();
    return got;
  }
};

splice::options opts(bool userspace) {
  splice::options o;
  o.userspace = userspace;
  o.splice_after = 0;
  return o;
}

}  // namespace

TEST_CASE("a copy delivers what a read(2) loop reads, whatever the urgent pointer does", "[urgent]") {
  const int which = GENERATE(0, 1, 2, 3);
  const bool oobinline = GENERATE(false, true);
  const bool userspace = GENERATE(false, true);
  const bool to_pipe = GENERATE(false, true);
  const bool nonblocking = GENERATE(false, true);
  CAPTURE(which, oobinline, userspace, to_pipe, nonblocking);
  const auto s = script(which);
  fed f(s, true, oobinline);
  const std::string want = test::read_all(f.ref.b.get());
  REQUIRE(want.size() >= total(s) - 11);  // at most the urgent bytes are left out
  sink d(to_pipe);
  if (nonblocking) test::set_nonblocking(f.src.b.get()), test::set_nonblocking(d.mine.get());
  splice::poll_poller p(std::chrono::seconds(10));
  const auto res = splice::copy(d.mine.get(), f.src.b.get(), splice::no_limit, p, opts(userspace));
  const std::string got = d.finish();
  CHECK_FALSE(res.error);
  CHECK(res.bytes == want.size());
  CHECK(got.size() == want.size());
  CHECK((got == want));
}

TEST_CASE("a limit before, at or after the urgent mark stops exactly there", "[urgent]") {
  const std::uint64_t limit = GENERATE(3, 5, 6, 7, 1000);
  const bool userspace = GENERATE(false, true);
  const bool nonblocking = GENERATE(false, true);
  CAPTURE(limit, userspace, nonblocking);
  fed f(script(0), true, false);
  const std::string want = test::read_all(f.ref.b.get(), limit);
  const std::string want_rest = test::read_all(f.ref.b.get());
  sink d(false);
  if (nonblocking) test::set_nonblocking(f.src.b.get()), test::set_nonblocking(d.mine.get());
  splice::poll_poller p(std::chrono::seconds(10));
  const auto res = splice::copy(d.mine.get(), f.src.b.get(), limit, p, opts(userspace));
  const std::string got = d.finish();
  const std::string rest = test::read_all(f.src.b.get());
  CHECK_FALSE(res.error);
  CHECK(res.bytes == limit);
  CHECK((got == want));
  CHECK((rest == want_rest));
}

namespace {

/// Drives a copier as an event loop does, until it ends or waits for readiness that does not come
/// within 100 ms (every byte is queued before the loop starts, so nothing more can arrive).
/// edge: epoll, edge-triggered, registered once; else poll(2), level-triggered. Returns the
/// number of advance() calls, or -1 past 1000 (a copier that spins).
int drive(splice::copier<>& c, bool edge) {
  test::fd ep(::epoll_create1(EPOLL_CLOEXEC));
  for (int fd : {c.src(), c.dst()}) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.fd = fd;
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev);
  }
  for (int calls = 1; calls <= 1000; ++calls) {
    const splice::step s = c.advance();
    if (s == splice::step::done) return calls;
    if (s == splice::step::again) continue;
    if (edge) {
      epoll_event ev[4];
      if (::epoll_wait(ep.get(), ev, 4, 100) == 0) return calls;
    } else {
      pollfd p[2] = {{c.src(), POLLIN, 0}, {c.dst(), POLLOUT, 0}};
      if (s == splice::step::read) p[1].fd = -1;
      if (s == splice::step::write) p[0].fd = -1;
      if (::poll(p, 2, 100) == 0) return calls;
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("a copier gets past the urgent mark by itself and never spins there", "[urgent][copier]") {
  const bool edge = GENERATE(true, false);
  const bool userspace = GENERATE(false, true);
  const bool to_pipe = GENERATE(false, true);
  CAPTURE(edge, userspace, to_pipe);
  const auto s = script(0);
  fed f(s, false, false);  // the peer keeps the connection open
  test::set_nonblocking(f.ref.b.get());
  const std::string want = test::read_available(f.ref.b.get());
  REQUIRE(want.size() == total(s) - 1);
  sink d(to_pipe);
  test::set_nonblocking(f.src.b.get());
  test::set_nonblocking(d.mine.get());
  splice::copier<> c(d.mine.get(), f.src.b.get(), splice::no_limit, opts(userspace));
  const int calls = drive(c, edge);
  CHECK(calls > 0);   // waits quietly instead of spinning
  CHECK(calls < 50);
  CHECK(c.result().bytes == want.size());
  ::shutdown(f.src.a.get(), SHUT_WR);  // now the peer ends the stream
  CHECK(drive(c, edge) > 0);
  CHECK_FALSE(c.result().error);
  CHECK((d.finish() == want));
}

TEST_CASE("proxy relays a stream with urgent data whole and passes no early end of file", "[urgent][proxy]") {
  const bool userspace = GENERATE(false, true);
  const int which = GENERATE(0, 1);
  const auto s = script(which);
  // client -> (a | proxy | b) -> server, and a reference connection fed the same sends.
  auto front = test::make_tcp(), back = test::make_tcp(), ref = test::make_tcp();
  send_script(front.a.get(), s);
  send_script(ref.a.get(), s);
  ::shutdown(front.a.get(), SHUT_WR);
  ::shutdown(ref.a.get(), SHUT_WR);
  test::wait_acked(front.a.get());
  test::wait_acked(ref.a.get());
  const std::string want = test::read_all(ref.b.get());
  std::string got;
  std::thread server([&] {
    got = test::read_all(back.b.get());
    ::shutdown(back.b.get(), SHUT_WR);
  });
  splice::proxy_options o;
  o.copy = opts(userspace);
  o.idle_timeout = std::chrono::seconds(10);
  const auto res = splice::proxy(front.b.get(), back.a.get(), o);
  server.join();
  CHECK_FALSE(res.error);
  CHECK(res.a_to_b.bytes == want.size());
  CHECK((got == want));
}

namespace {

/// Drives d with edge-triggered epoll on both fds, as examples/epoll_proxy.cpp does, from the edge
/// that reported the queued bytes; marks: ask for EPOLLPRI and EPOLLRDHUP and pass them on. Returns
/// false when a wait of 300 ms saw nothing while the duplex was not done (every byte, and the end,
/// was queued before: a stall).
bool drive_edge(splice::duplex<>& d, bool marks) {
  test::fd ep(::epoll_create1(EPOLL_CLOEXEC));
  for (int fd : {d.a(), d.b()}) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET | (marks ? EPOLLPRI | EPOLLRDHUP : 0u);
    ev.data.fd = fd;
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev);
  }
  unsigned came = splice::ready::all;
  for (int wait_ms = 0;; wait_ms = d.busy() ? 0 : 300) {
    epoll_event ev[4];
    const int n = ::epoll_wait(ep.get(), ev, 4, wait_ms);
    if (n == 0 && wait_ms > 0) return false;
    for (int i = 0; i < n; ++i) came |= splice::ready::of(ev[i].data.fd == d.a(), ev[i].events);
    d.advance(came);
    if (d.done()) return true;
    came = 0;
  }
}

}  // namespace

TEST_CASE("with short_read_drains, an edge-triggered duplex told of marks crosses an urgent mark and an end",
          "[urgent][duplex]") {
  const bool marks = GENERATE(true, false);
  const bool urgent = GENERATE(true, false);
  CAPTURE(marks, urgent);
  // Urgent: "hello", the urgent "!", then more: a read stops short at the mark. Else "hello" and the
  // end of file, queued together: a read gives "hello" and the next one 0.
  const std::vector<piece> s = urgent ? script(0) : std::vector<piece>{{"hello"}};
  fed f(s, true, false);
  const std::string want = test::read_all(f.ref.b.get());
  auto back = test::make_tcp();
  std::string got;
  std::thread server([&] {
    got = test::read_all(back.b.get());
    ::shutdown(back.b.get(), SHUT_WR);
  });
  splice::proxy_options o;
  o.copy = opts(true);  // the user-space route, where a short read is taken for drained
  o.copy.short_read_drains = true;
  splice::duplex<> d(f.src.b.get(), back.a.get(), o);
  const bool finished = drive_edge(d, marks);
  if (!finished) d.stop(std::make_error_code(std::errc::timed_out), "test");
  ::shutdown(back.a.get(), SHUT_RDWR);
  server.join();
  // Told of the marks, the copy crosses them; without, what is behind a mark would wait for an
  // edge that never comes: the reason the option asks for them.
  CHECK(finished == marks);
  if (marks) CHECK((got == want));
  if (!marks) CHECK(got == want.substr(0, 5));
}
