// SPDX-License-Identifier: MIT
#include "splice/proxy_protocol.hpp"  // first: the header must be self-contained

#include <cstring>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"

using splice_lib::proxy_header;
using splice_lib::proxy_header_options;
using splice_lib::proxy_parse_result;
using splice_lib::proxy_status;
using splice_lib::proxy_tlv;
using splice_lib::proxy_tlv_type;
using splice_lib::proxy_v2_extras;
using namespace std::string_literals;

namespace {

sockaddr_storage ip(const char* text, std::uint16_t port) {
  sockaddr_storage ss{};
  auto* in = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, text, &in->sin_addr) == 1) {
    in->sin_family = AF_INET, in->sin_port = htons(port);
  } else {
    REQUIRE(::inet_pton(AF_INET6, text, &in6->sin6_addr) == 1);
    in6->sin6_family = AF_INET6, in6->sin6_port = htons(port);
  }
  return ss;
}

sockaddr_storage unix_addr(const char* path, std::size_t n) {
  sockaddr_storage ss{};
  auto* un = reinterpret_cast<sockaddr_un*>(&ss);
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path, n);
  return ss;
}

const sockaddr* sa(const sockaddr_storage& ss) { return reinterpret_cast<const sockaddr*>(&ss); }

/// Returns "address port" of an IP sockaddr.
std::string text(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    return std::string(buf) + " " + std::to_string(ntohs(in->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    return std::string(buf) + " " + std::to_string(ntohs(in6->sin6_port));
  }
  if (ss.ss_family == AF_UNIX) return std::string("unix ") + reinterpret_cast<const sockaddr_un*>(&ss)->sun_path;
  return "none";
}

proxy_parse_result parse(const std::string& s, proxy_header& h, const proxy_header_options& opt = {}) {
  return splice_lib::parse_proxy_header(s.data(), s.size(), h, opt);
}

/// Returns the reason s is refused for, or "accepted" / "needs more".
std::string verdict(const std::string& s, const proxy_header_options& opt = {}) {
  proxy_header h;
  const auto r = parse(s, h, opt);
  if (r.status == proxy_status::complete) return "accepted";
  if (r.status == proxy_status::need_more) return "needs more";
  CHECK(r.error == splice_lib::errc::bad_proxy_header);
  CHECK(r.error == std::errc::protocol_error);
  return r.reason;
}

std::string v1(const sockaddr_storage& src, const sockaddr_storage& dst) {
  char buf[107];
  const std::size_t n = splice_lib::build_proxy_v1(buf, sizeof buf, sa(src), sa(dst));
  REQUIRE(n > 0);
  return std::string(buf, n);
}

std::string v2(const sockaddr_storage* src, const sockaddr_storage* dst, const proxy_v2_extras& x = {}) {
  unsigned char buf[1024];
  const std::size_t n = src ? splice_lib::build_proxy_v2(buf, sizeof buf, sa(*src), sa(*dst), x)
                            : splice_lib::build_proxy_v2_local(buf, sizeof buf, x);
  REQUIRE(n > 0);
  return std::string(reinterpret_cast<char*>(buf), n);
}

/// A v2 header made by hand: the fixed part with version/command vc, family f, and body.
std::string raw_v2(unsigned vc, unsigned f, const std::string& body, std::size_t len = std::string::npos) {
  if (len == std::string::npos) len = body.size();
  std::string s("\r\n\r\n\0\r\nQUIT\n", 12);
  s += char(vc), s += char(f), s += char(len >> 8), s += char(len & 0xFF);
  return s + body;
}

/// Checks that every proper prefix of a header asks for more, and for no more than it lacks.
void every_prefix_needs_more(const std::string& s) {
  for (std::size_t k = 0; k < s.size(); ++k) {
    proxy_header h;
    const auto r = splice_lib::parse_proxy_header(s.data(), k, h);
    INFO("prefix of " << k << " bytes");
    REQUIRE(r.status == proxy_status::need_more);
    REQUIRE(r.need >= 1);
    REQUIRE(k + r.need <= s.size());
  }
}

const proxy_tlv alpn{proxy_tlv_type::alpn, 2, reinterpret_cast<const unsigned char*>("h2")};
const proxy_tlv authority{proxy_tlv_type::authority, 11, reinterpret_cast<const unsigned char*>("example.com")};

}  // namespace

TEST_CASE("crc32c matches the Castagnoli check value and continues across pieces", "[proxy_protocol]") {
  CHECK(splice_lib::crc32c("123456789", 9) == 0xE3069283u);
  CHECK(splice_lib::crc32c("", 0) == 0u);
  CHECK(splice_lib::crc32c("6789", 4, splice_lib::crc32c("12345", 5)) == 0xE3069283u);
  CHECK(splice::crc32c("123456789", 9) == 0xE3069283u);
}

TEST_CASE("v1 TCP4, TCP6 and UNKNOWN round trip", "[proxy_protocol]") {
  const auto a4 = ip("192.0.2.1", 56324), b4 = ip("198.51.100.2", 443);
  const auto a6 = ip("2001:db8::1", 1), b6 = ip("2001:db8:0:0:1::2", 65535);
  const std::string tcp4 = v1(a4, b4), tcp6 = v1(a6, b6);
  CHECK(tcp4 == "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n");
  CHECK(tcp6 == "PROXY TCP6 2001:db8::1 2001:db8::1:0:0:2 1 65535\r\n");
  for (const std::string& s : {tcp4, tcp6}) {
    proxy_header h;
    const std::string bytes = s + "payload";
    const auto r = parse(bytes, h);
    REQUIRE(r.status == proxy_status::complete);
    CHECK(r.size == s.size());
    CHECK(h.size == s.size());
    CHECK(h.version == 1);
    CHECK(h.has_address());
    CHECK_FALSE(h.local);
    CHECK(h.tlvs.empty());
    every_prefix_needs_more(s);
  }
  proxy_header h;
  REQUIRE(parse(tcp4, h).status == proxy_status::complete);
  CHECK(text(h.src) == "192.0.2.1 56324");
  CHECK(text(h.dst) == "198.51.100.2 443");
  REQUIRE(parse(tcp6, h).status == proxy_status::complete);
  CHECK(text(h.src) == "2001:db8::1 1");
  CHECK(text(h.dst) == "2001:db8::1:0:0:2 65535");

  // Not two IP ends of one family: UNKNOWN, which carries no address.
  const auto u = unix_addr("/run/a.sock", 11);
  CHECK(v1(u, u) == "PROXY UNKNOWN\r\n");
  CHECK(v1(a4, b6) == "PROXY UNKNOWN\r\n");
  CHECK(splice_lib::build_proxy_v1(nullptr, 0, nullptr, nullptr) == 0);  // does not fit
  for (const std::string s : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN anything \r at all\r\n"}) {
    const auto r = parse(s, h);
    REQUIRE(r.status == proxy_status::complete);
    CHECK(r.size == s.size());
    CHECK(h.version == 1);
    CHECK_FALSE(h.has_address());
    CHECK(h.src.ss_family == AF_UNSPEC);
    every_prefix_needs_more(s);
  }
}

TEST_CASE("IPv4-mapped IPv6 ends are sent as TCP4 and INET", "[proxy_protocol]") {
  const auto a = ip("::ffff:10.0.0.1", 1234), b = ip("::ffff:10.0.0.2", 80);
  CHECK(v1(a, b) == "PROXY TCP4 10.0.0.1 10.0.0.2 1234 80\r\n");
  const std::string s = v2(&a, &b);
  CHECK(s.size() == 16 + 12);
  CHECK(static_cast<unsigned char>(s[13]) == 0x11);
  proxy_header h;
  REQUIRE(parse(s, h).status == proxy_status::complete);
  CHECK(text(h.src) == "10.0.0.1 1234");
  CHECK(text(h.dst) == "10.0.0.2 80");
  const auto c = ip("10.0.0.3", 7);  // mapped beside plain IPv4 is still two IPv4 ends
  CHECK(v1(a, c) == "PROXY TCP4 10.0.0.1 10.0.0.3 1234 7\r\n");
  const auto d = ip("2001:db8::9", 9);  // mapped beside real IPv6 stays IPv6: nothing is lost
  CHECK(v1(a, d) == "PROXY TCP6 ::ffff:10.0.0.1 2001:db8::9 1234 9\r\n");
  CHECK(static_cast<unsigned char>(v2(&a, &d)[13]) == 0x21);
}

TEST_CASE("v2 PROXY over INET, INET6 and UNIX, and LOCAL, round trip with TLVs", "[proxy_protocol]") {
  const proxy_tlv tlvs[] = {alpn, authority, {proxy_tlv_type::noop, 0, nullptr}};
  proxy_v2_extras x;
  x.tlvs = tlvs, x.count = 3;
  const auto a4 = ip("192.0.2.1", 56324), b4 = ip("198.51.100.2", 443);
  const auto a6 = ip("2001:db8::1", 1), b6 = ip("fe80::2", 2);
  const auto ua = unix_addr("/run/client.sock", 16), ub = unix_addr("\0abstract", 9);
  struct want {
    const sockaddr_storage *src, *dst;
    std::size_t addresses;
    unsigned family;
    std::string src_text, dst_text;
  };
  const want cases[] = {{&a4, &b4, 12, 0x11, "192.0.2.1 56324", "198.51.100.2 443"},
                        {&a6, &b6, 36, 0x21, "2001:db8::1 1", "fe80::2 2"},
                        {&ua, &ub, 216, 0x31, "unix /run/client.sock", "unix "},
                        {nullptr, nullptr, 0, 0x00, "none", "none"}};
  for (const want& w : cases) {
    INFO("family " << w.family);
    const std::string s = v2(w.src, w.dst, x);
    const std::size_t tlv_bytes = 3 + 2 + 3 + 11 + 3;
    CHECK(s.size() == 16 + w.addresses + tlv_bytes);
    CHECK(static_cast<unsigned char>(s[12]) == (w.src ? 0x21 : 0x20));
    CHECK(static_cast<unsigned char>(s[13]) == w.family);
    proxy_header h;
    const std::string bytes = s + "after";  // h.tlvs views these
    const auto r = parse(bytes, h);
    REQUIRE(r.status == proxy_status::complete);
    CHECK(r.size == s.size());
    CHECK(h.version == 2);
    CHECK(h.local == !w.src);
    CHECK(h.has_address() == (w.src != nullptr));
    CHECK(text(h.src) == w.src_text);
    CHECK(text(h.dst) == w.dst_text);
    std::vector<std::string> seen;
    for (const proxy_tlv t : h.tlvs) seen.push_back(std::to_string(t.type) + "=" + std::string(reinterpret_cast<const char*>(t.value), t.length));
    CHECK(seen == std::vector<std::string>{"1=h2", "2=example.com", "4="});
    CHECK(h.tlvs.find(proxy_tlv_type::authority).length == 11);
    CHECK(h.tlvs.find(proxy_tlv_type::unique_id).value == nullptr);
    every_prefix_needs_more(s);
  }
  proxy_header h;
  REQUIRE(parse(v2(&ua, &ub), h).status == proxy_status::complete);  // the abstract name, whole
  CHECK(std::memcmp(reinterpret_cast<const sockaddr_un*>(&h.dst)->sun_path, "\0abstract\0", 10) == 0);
  // Two ends a header cannot say together: UNSPEC, no address.
  const std::string mixed = v2(&a4, &ua);
  CHECK(static_cast<unsigned char>(mixed[13]) == 0x00);
  REQUIRE(parse(mixed, h).status == proxy_status::complete);
  CHECK_FALSE(h.local);
  CHECK_FALSE(h.has_address());
}

TEST_CASE("v2 CRC32C is filled in, checked, and a wrong one refused", "[proxy_protocol]") {
  const auto a = ip("2001:db8::1", 1000), b = ip("2001:db8::2", 2000);
  proxy_v2_extras x;
  x.tlvs = &alpn, x.count = 1, x.crc32c = true;
  const std::string s = v2(&a, &b, x);
  proxy_header h;
  REQUIRE(parse(s, h).status == proxy_status::complete);
  const proxy_tlv crc = h.tlvs.find(proxy_tlv_type::crc32c);
  REQUIRE(crc.length == 4);
  std::string zeroed = s;  // the stored value is the CRC32C of the header with the field zeroed
  const std::size_t at = std::size_t(crc.value - reinterpret_cast<const unsigned char*>(s.data()));
  zeroed.replace(at, 4, 4, '\0');
  const std::uint32_t c = splice_lib::crc32c(zeroed.data(), zeroed.size());
  CHECK(std::uint32_t(crc.value[0]) << 24 == (c & 0xFF000000u));
  CHECK(crc.value[3] == (c & 0xFFu));
  for (std::size_t i : {std::size_t(0) + 20, at + 2, s.size() - 8}) {  // an address byte, the CRC, ALPN
    std::string bad = s;
    bad[i] = char(bad[i] ^ 0x01);
    INFO("byte " << i);
    CHECK(verdict(bad) == "v2 CRC32C mismatch");
  }
  proxy_v2_extras twice = x;  // a CRC32C TLV given beside crc32c = true is refused
  const proxy_tlv own{proxy_tlv_type::crc32c, 4, reinterpret_cast<const unsigned char*>("abcd")};
  twice.tlvs = &own;
  unsigned char buf[256];
  CHECK(splice_lib::build_proxy_v2(buf, sizeof buf, sa(a), sa(b), twice) == 0);
  CHECK(splice_lib::build_proxy_v2(buf, 16 + 36 + 5 + 6, sa(a), sa(b), x) == 0);  // one byte short
  CHECK(splice_lib::build_proxy_v2(buf, 16 + 36 + 5 + 7, sa(a), sa(b), x) == s.size());
}

TEST_CASE("v1 strictness: each malformed line is refused with its reason", "[proxy_protocol]") {
  struct bad {
    std::string in, reason;
  };
  const std::string ok = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
  const bad cases[] = {
      {"GET / HTTP/1.1\r\n", "not a PROXY protocol header"},
      {"G", "not a PROXY protocol header"},  // from the first byte on
      {"PROXZ", "not a PROXY protocol header"},
      {"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "v1 unknown protocol"},
      {"PROXY TCP4\r\n", "v1 expected a space after the protocol"},
      {"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "v1 fields must be separated by single spaces"},
      {"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "v1 fields must be separated by single spaces"},
      {"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "v1 fields must be separated by single spaces"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n", "v1 fields must be separated by single spaces"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n", "v1 fields must be separated by single spaces"},
      {"PROXY TCP4 999.1.1.1 5.6.7.8 1 2\r\n", "v1 bad source address"},
      {"PROXY TCP4 999", "v1 bad source address"},  // before the line has ended
      {"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "v1 bad source address"},
      {"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "v1 bad source address"},
      {"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", "v1 bad source address"},
      {"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "v1 bad source address"},  // not the family's
      {"PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n", "v1 bad destination address"},
      {"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "v1 bad source address"},
      {"PROXY TCP6 ::1 1:2:3:4:5:6:7:8:9 1 2\r\n", "v1 bad destination address"},
      {"PROXY TCP6 1::2::3 ::1 1 2\r\n", "v1 bad source address"},
      {"PROXY TCP6 ::12345 ::1 1 2\r\n", "v1 bad source address"},
      {"PROXY TCP6 ::ffff:1.2.3.04 ::1 1 2\r\n", "v1 bad source address"},
      {"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "v1 bad source address"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "v1 bad source port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "v1 bad source port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "v1 bad source port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", "v1 bad destination port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n", "v1 bad destination port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "v1 expected CRLF after the destination port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "v1 expected CRLF after the destination port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "v1 expected CRLF after the destination port"},
      {"PROXY UNKNOWN\rx", "v1 expected CRLF"},
      {"PROXY UNKNOWN " + std::string(92, 'x') + "\r\n", "v1 header longer than 107 bytes"},
      {"PROXY UNKNOWN " + std::string(200, 'x'), "v1 header longer than 107 bytes"},
  };
  for (const bad& b : cases) {
    INFO(b.in);
    CHECK(verdict(b.in) == b.reason);
  }
  CHECK(verdict(ok) == "accepted");
  CHECK(verdict("PROXY UNKNOWN " + std::string(91, 'x') + "\r\n") == "accepted");  // 107 bytes
  CHECK(verdict("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n") == "accepted");
  CHECK(verdict("PROXY TCP6 ::ffff:1.2.3.4 1:2:3:4:5:6:7:: 1 2\r\n") == "accepted");
  CHECK(verdict("PROXY TCP6 ABCD:EF01::0 0:0:0:0:0:0:0:1 1 2\r\n") == "accepted");
  proxy_header_options no_v1;
  no_v1.accept_v1 = false;
  CHECK(verdict(ok, no_v1) == "v1 header not accepted");
  proxy_header h;
  const auto r = parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", h);
  CHECK(r.status == proxy_status::need_more);
  CHECK(r.need == 1);
  CHECK(parse("", h).need == 15);
}

TEST_CASE("v2 strictness: each malformed header is refused with its reason", "[proxy_protocol]") {
  struct bad {
    std::string in, reason;
  };
  const std::string inet(12, '\1');
  std::string sig("\r\n\r\n\0\r\nQUIT\n", 12);
  const bad cases[] = {
      {sig.substr(0, 4) + "X", "not a PROXY protocol header"},
      {"\r\n\r\n\1", "not a PROXY protocol header"},
      {raw_v2(0x11, 0x11, inet), "v2 unsupported version"},
      {raw_v2(0x31, 0x11, inet), "v2 unsupported version"},
      {raw_v2(0x22, 0x11, inet), "v2 unknown command"},
      {raw_v2(0x2F, 0x11, inet), "v2 unknown command"},
      {raw_v2(0x21, 0x12, inet), "v2 unsupported address family or transport"},  // UDP
      {raw_v2(0x21, 0x10, inet), "v2 unsupported address family or transport"},
      {raw_v2(0x21, 0x41, inet), "v2 unsupported address family or transport"},
      {raw_v2(0x20, 0x32, ""), "v2 unsupported address family or transport"},
      {raw_v2(0x21, 0x11, std::string(11, '\1')), "v2 length too short for the addresses"},
      {raw_v2(0x21, 0x21, std::string(35, '\1')), "v2 length too short for the addresses"},
      {raw_v2(0x21, 0x31, std::string(215, '\1')), "v2 length too short for the addresses"},
      {raw_v2(0x21, 0x11, "", 4096 - 16 + 1), "v2 header longer than the maximum"},  // before the body comes
      {raw_v2(0x21, 0x11, inet + "\x04\x00\x02" "a"s), "v2 TLV overruns the header"},
      {raw_v2(0x21, 0x11, inet + "\x04\x00\x02"s, 12 + 4), "v2 TLV overruns the header"},  // at its header
      {raw_v2(0x21, 0x11, inet + "\x04\x00"s), "v2 TLV overruns the header"},
      {raw_v2(0x21, 0x11, inet + "\x04"), "v2 TLV overruns the header"},
      {raw_v2(0x21, 0x11, inet + "\x03\x00\x03" "abc"s), "v2 CRC32C TLV is not 4 bytes"},
      {raw_v2(0x21, 0x11, inet + "\x03\x00\x04" "abcd" "\x03\x00\x04" "abcd"s), "v2 more than one CRC32C TLV"},
  };
  for (const bad& b : cases) {
    INFO(b.reason << " for " << b.in.size() << " bytes");
    CHECK(verdict(b.in) == b.reason);
  }
  CHECK(verdict(raw_v2(0x21, 0x11, inet + "\x04\x00\x01" "a"s)) == "accepted");
  CHECK(verdict(raw_v2(0x20, 0x11, "")) == "accepted");  // LOCAL's addresses are ignored
  CHECK(verdict(raw_v2(0x21, 0x11, "", 4096 - 16)) == "needs more");
  proxy_header_options small;
  small.max_size = 16 + 12;
  CHECK(verdict(raw_v2(0x21, 0x11, inet), small) == "accepted");
  CHECK(verdict(raw_v2(0x21, 0x11, inet + "\x04\x00\x00"s), small) == "v2 header longer than the maximum");
  small.accept_v2 = false;
  CHECK(verdict(raw_v2(0x21, 0x11, inet), small) == "v2 header not accepted");
  proxy_header h;
  auto r = parse(sig, h);
  CHECK(r.need == 4);
  r = parse(raw_v2(0x21, 0x11, "abc"), h);  // a length of 3 is too short for INET
  CHECK(r.status == proxy_status::error);
  r = parse(raw_v2(0x21, 0x11, "abc", 12 + 5), h);
  CHECK(r.status == proxy_status::need_more);
  CHECK(r.need == 14);
}

TEST_CASE("the splice struct exposes the PROXY protocol API", "[proxy_protocol]") {
  const auto a = ip("192.0.2.1", 1), b = ip("192.0.2.2", 2);
  char buf[107];
  const std::size_t n = splice::build_proxy_v1(buf, sizeof buf, sa(a), sa(b));
  splice::proxy_header h;
  const splice::proxy_parse_result r = splice::parse_proxy_header(buf, n, h);
  CHECK(r.status == splice::proxy_status::complete);
  unsigned char v2buf[64];
  CHECK(splice::build_proxy_v2(v2buf, sizeof v2buf, sa(a), sa(b)) == 28);
  CHECK(splice::build_proxy_v2_local(v2buf, sizeof v2buf) == 16);
  CHECK(splice::proxy_header_timeout == std::chrono::seconds(1));
}
