// SPDX-License-Identifier: MIT
#include "splice/proxy_header_reader.hpp"  // first: the header must be self-contained

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <catch2/catch.hpp>

#include "splice/copy.hpp"
#include "splice/splice.hpp"
#include "support.hpp"

using splice_lib::proxy_header_reader;
using splice_lib::step;
using namespace std::chrono_literals;

namespace {

/// What a fault_sys saw and is to do, shared by the copies of it.
struct faults {
  std::vector<int> errors;  // errno for call i (0: the real call)
  std::size_t max_peek = SIZE_MAX, max_take = SIZE_MAX;
  int peeks = 0, takes = 0;
  std::size_t taken = 0;
};

/// The real system calls, but for recv, which counts, fails as told, and cuts counts short.
struct fault_sys : splice_lib::system_calls {
  std::shared_ptr<faults> f = std::make_shared<faults>();
  ssize_t recv(int fd, void* buf, std::size_t n, int flags) {
    const std::size_t call = std::size_t(f->peeks + f->takes);
    ((flags & MSG_PEEK) ? f->peeks : f->takes)++;
    if (call < f->errors.size() && f->errors[call]) return errno = f->errors[call], -1;
    const ssize_t r = splice_lib::system_calls::recv(fd, buf, std::min(n, (flags & MSG_PEEK) ? f->max_peek : f->max_take), flags);
    if (r > 0 && !(flags & MSG_PEEK)) f->taken += std::size_t(r);
    return r;
  }
};

sockaddr_storage ip(const char* text, std::uint16_t port) {
  sockaddr_storage ss{};
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  in6->sin6_family = AF_INET6, in6->sin6_port = htons(port);
  REQUIRE(::inet_pton(AF_INET6, text, &in6->sin6_addr) == 1);
  return ss;
}

const sockaddr* sa(const sockaddr_storage& ss) { return reinterpret_cast<const sockaddr*>(&ss); }

/// A v2 header over IPv6 with an ALPN TLV of alpn_len bytes and a CRC32C.
std::string v2_header(std::size_t alpn_len = 2) {
  static const std::string value(4096, 'h');
  const auto a = ip("2001:db8::1", 4000), b = ip("2001:db8::2", 443);
  const splice_lib::proxy_tlv alpn{splice_lib::proxy_tlv_type::alpn, std::uint16_t(alpn_len),
                                   reinterpret_cast<const unsigned char*>(value.data())};
  splice_lib::proxy_v2_extras x;
  x.tlvs = &alpn, x.count = 1, x.crc32c = true;
  std::string s(8192, '\0');
  s.resize(splice_lib::build_proxy_v2(&s[0], s.size(), sa(a), sa(b), x));
  REQUIRE(!s.empty());
  return s;
}

const std::string v1_header = "PROXY TCP4 203.0.113.7 192.0.2.80 51234 8080\r\n";

/// Returns true when f has something to read now (what a level-triggered poll would wake for).
bool readable_now(int f) {
  pollfd p{f, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

/// Waits, with a deadline that only a broken test reaches, until f is readable.
void wait_readable(int f) {
  pollfd p{f, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 10000) == 1);
}

void send_all(int f, const std::string& s) { REQUIRE(test::write_all(f, s)); }

/// Drives r with poll(2), as an event loop would; returns the wakeups it took.
template <class R>
int drive(R& r) {
  int wakeups = 0;
  while (r.advance() == step::read) wait_readable(r.fd()), ++wakeups;
  return wakeups;
}

}  // namespace

TEST_CASE("a header written one byte at a time costs one wakeup a byte, and the stream after it stays", "[proxy_reader]") {
  for (const std::string& header : {v1_header, v2_header()}) {
    auto t = test::make_tcp();
    const int one = 1;
    ::setsockopt(t.a.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // a segment per byte
    fault_sys sys;
    proxy_header_reader<fault_sys> r(t.b.get(), {}, sys);
    int wakeups = 0;
    REQUIRE(r.advance() == step::read);
    for (std::size_t i = 0; i < header.size(); ++i) {
      INFO("byte " << i);
      REQUIRE_FALSE(readable_now(t.b.get()));  // nothing seen is left: a level-triggered poll sleeps
      send_all(t.a.get(), header.substr(i, 1));
      wait_readable(t.b.get());
      ++wakeups;
      REQUIRE(r.advance() == (i + 1 < header.size() ? step::read : step::done));
    }
    CHECK(wakeups == int(header.size()));
    CHECK(sys.f->peeks + sys.f->takes <= 3 * int(header.size()));  // peek, take, peek (EAGAIN)
    REQUIRE_FALSE(r.error());
    CHECK(r.header().size == header.size());
    CHECK(r.consumed() == header.size());
    CHECK(r.header().has_address());
    send_all(t.a.get(), "after");
    CHECK(test::read_all(t.b.get(), 5) == "after");
  }
}

TEST_CASE("a header followed by payload in one write leaves the payload in the socket", "[proxy_reader]") {
  const std::string payload = test::payload(100000);
  for (const std::string& header : {v1_header, v2_header(), v2_header(1000)}) {
    INFO("header of " << header.size() << " bytes");
    auto t = test::make_tcp();
    std::thread writer([&] { test::write_all(t.a.get(), header + payload); ::shutdown(t.a.get(), SHUT_WR); });
    fault_sys sys;
    proxy_header_reader<fault_sys> r(t.b.get(), {}, sys);
    drive(r);
    REQUIRE_FALSE(r.error());
    CHECK(r.header().size == header.size());
    CHECK(sys.f->taken == header.size());
    CHECK(r.header().tlvs.find(splice_lib::proxy_tlv_type::alpn).length == (header[0] == 'P' ? 0 : header.size() > 200 ? 1000 : 2));
    CHECK(test::read_all(t.b.get()) == payload);
    writer.join();
  }
}

TEST_CASE("the payload after a header can be spliced", "[proxy_reader]") {
  const std::string payload = test::payload(300000, 7);
  auto t = test::make_tcp();
  auto out = test::make_tcp();
  std::thread writer([&] { test::write_all(t.a.get(), v1_header + payload); ::shutdown(t.a.get(), SHUT_WR); });
  std::string got;
  std::thread reader([&] { got = test::read_all(out.b.get()); });
  auto r = splice_lib::read_proxy_header(t.b.get(), 10s);
  REQUIRE_FALSE(r.error());
  CHECK(r.header().size == v1_header.size());
  const splice_lib::result copied = splice_lib::copy(out.a.get(), t.b.get());
  ::shutdown(out.a.get(), SHUT_WR);
  writer.join();
  reader.join();
  CHECK_FALSE(copied.error);
  CHECK(copied.bytes == payload.size());
  CHECK(got == payload);
}

TEST_CASE("a bad header ends the read with its reason and takes nothing", "[proxy_reader]") {
  struct bad {
    std::string in, reason;
  };
  const bad cases[] = {{"GET / HTTP/1.1\r\n\r\n", "not a PROXY protocol header"},
                       {"PROXY TCP4 1.2.3.4 999.0.0.1 1 2\r\n", "v1 bad destination address"}};
  for (const bad& b : cases) {
    auto t = test::make_tcp();
    send_all(t.a.get(), b.in);
    proxy_header_reader<> r(t.b.get());
    drive(r);
    CHECK(r.done());
    CHECK(r.error() == splice_lib::errc::bad_proxy_header);
    CHECK(std::string(r.op()) == "proxy header");
    CHECK(std::string(r.reason()) == b.reason);
    CHECK(r.advance() == step::done);
  }
  auto t = test::make_tcp();  // bad from its first byte: nothing is taken
  send_all(t.a.get(), "SSH-2.0-x\r\n");
  wait_readable(t.b.get());
  proxy_header_reader<> r(t.b.get());
  CHECK(r.advance() == step::done);
  CHECK(r.consumed() == 0);
  ::shutdown(t.a.get(), SHUT_WR);
  CHECK(test::read_all(t.b.get()) == "SSH-2.0-x\r\n");
}

TEST_CASE("end of file before or inside the header is an error", "[proxy_reader]") {
  auto t = test::make_tcp();
  send_all(t.a.get(), v1_header.substr(0, 20));
  ::shutdown(t.a.get(), SHUT_WR);
  proxy_header_reader<> r(t.b.get());
  drive(r);
  CHECK(r.error() == splice_lib::errc::bad_proxy_header);
  CHECK(std::string(r.reason()) == "connection closed inside the header");
  CHECK(r.consumed() == 20);

  auto u = test::make_tcp();
  u.a.reset();
  proxy_header_reader<> s(u.b.get());
  drive(s);
  CHECK(s.error() == splice_lib::errc::bad_proxy_header);
  CHECK(std::string(s.reason()) == "connection closed before the header");
}

TEST_CASE("faults through the seam: EINTR retried, EAGAIN waited for, short counts resumed, errors from recv", "[proxy_reader]") {
  const std::string header = v2_header(), payload = "payload";
  SECTION("EINTR on the peek and on the take") {
    auto t = test::make_tcp();
    send_all(t.a.get(), header + payload);
    test::wait_acked(t.a.get());
    fault_sys sys;
    sys.f->errors = {EINTR, 0, EINTR};
    proxy_header_reader<fault_sys> r(t.b.get(), {}, sys);
    CHECK(r.advance() == step::done);
    CHECK_FALSE(r.error());
    CHECK(sys.f->peeks + sys.f->takes == 4);
  }
  SECTION("EAGAIN says wait, and the next call goes on") {
    auto t = test::make_tcp();
    send_all(t.a.get(), header + payload);
    test::wait_acked(t.a.get());
    fault_sys sys;
    sys.f->errors = {EAGAIN};
    proxy_header_reader<fault_sys> r(t.b.get(), {}, sys);
    CHECK(r.advance() == step::read);
    CHECK(r.consumed() == 0);
    CHECK(r.advance() == step::done);
    CHECK_FALSE(r.error());
  }
  SECTION("short peeks and takes") {
    for (const std::string& h : {header, v1_header}) {
      auto t = test::make_tcp();
      send_all(t.a.get(), h + payload);
      test::wait_acked(t.a.get());
      fault_sys sys;
      sys.f->max_peek = 3, sys.f->max_take = 1;
      proxy_header_reader<fault_sys> r(t.b.get(), {}, sys);
      CHECK(r.advance() == step::done);  // all of it had arrived: no wait
      CHECK_FALSE(r.error());
      CHECK(r.header().size == h.size());
      CHECK(sys.f->takes == int(h.size()));
      CHECK(test::read_all(t.b.get(), payload.size()) == payload);
    }
  }
  SECTION("an error from recv") {
    auto t = test::make_tcp();
    send_all(t.a.get(), header);
    test::wait_acked(t.a.get());
    fault_sys sys;
    sys.f->errors = {0, ECONNRESET};
    proxy_header_reader<fault_sys> r(t.b.get(), {}, sys);
    CHECK(r.advance() == step::done);
    CHECK(r.error() == std::errc::connection_reset);
    CHECK(std::string(r.op()) == "recv");
    CHECK(std::string(r.reason()).empty());
  }
  SECTION("not a socket") {
    auto p = test::make_pipe();
    proxy_header_reader<> r(p.first.get());
    CHECK(r.advance() == step::done);
    CHECK(r.error() == std::errc::not_a_socket);
    CHECK(std::string(r.op()) == "recv");
  }
}

TEST_CASE("the poller form: a deadline ends the read with timed_out; the header when it is there", "[proxy_reader]") {
  auto t = test::make_tcp();
  splice_lib::poll_poller past(std::chrono::steady_clock::now() - 1s);
  auto r = splice_lib::read_proxy_header(t.b.get(), past);
  CHECK(r.error() == std::errc::timed_out);
  CHECK(std::string(r.op()) == "poll");
  auto z = splice::read_proxy_header(t.b.get(), 0ms);
  CHECK(z.error() == std::errc::timed_out);

  send_all(t.a.get(), v1_header.substr(0, 10));  // a header that never ends, with the deadline passed
  wait_readable(t.b.get());
  proxy_header_reader<> part(t.b.get());
  CHECK(splice_lib::read_proxy_header(part, past) == std::errc::timed_out);
  CHECK(part.consumed() == 10);

  auto u = test::make_tcp();
  send_all(u.a.get(), v2_header() + "x");
  test::wait_acked(u.a.get());
  test::counting_poller counting;
  auto ok = splice::read_proxy_header(u.b.get(), counting);
  CHECK_FALSE(ok.error());
  CHECK(counting.waits() == 0);
  CHECK(ok.header().version == 2);
}

TEST_CASE("a moved reader keeps its header, TLVs included, short and long", "[proxy_reader]") {
  for (std::size_t alpn : {std::size_t(5), std::size_t(600)}) {
    auto t = test::make_tcp();
    send_all(t.a.get(), v2_header(alpn));
    proxy_header_reader<> r(t.b.get());
    drive(r);
    REQUIRE_FALSE(r.error());
    proxy_header_reader<> moved(std::move(r));
    CHECK(r.done());
    const auto tlv = moved.header().tlvs.find(splice_lib::proxy_tlv_type::alpn);
    REQUIRE(tlv.length == alpn);
    CHECK(std::string(reinterpret_cast<const char*>(tlv.value), tlv.length) == std::string(alpn, 'h'));
    CHECK(moved.header().tlvs.find(splice_lib::proxy_tlv_type::crc32c).length == 4);
  }
}

TEST_CASE("a v2 header longer than max_size is refused before it is read", "[proxy_reader]") {
  auto t = test::make_tcp();
  const std::string header = v2_header(300);
  send_all(t.a.get(), header);
  splice_lib::proxy_header_options opt;
  opt.max_size = 256;
  proxy_header_reader<> r(t.b.get(), opt);
  drive(r);
  CHECK(std::string(r.reason()) == "v2 header longer than the maximum");
  CHECK(r.consumed() <= 16);
}
