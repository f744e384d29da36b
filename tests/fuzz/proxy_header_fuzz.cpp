// SPDX-License-Identifier: MIT
// libFuzzer target for the PROXY protocol parser, builders and reader. Build and run: .ci/fuzz
// [SECONDS] (which runs copier_fuzz too); seeds: tests/fuzz/make_proxy_seeds.py.
//
// Input: byte 0 picks the options (max_size 4096, 28, 300 or 65551; now and then v1 or v2 refused),
// byte 1 seeds the sizes of the pieces, the rest is the stream. Checked on every input:
// - parse_proxy_header on the whole never reads past it (ASan), and says need_more with need >= 1,
//   complete with 0 < size <= n, or error with errc::bad_proxy_header and a reason;
// - fed in growing prefixes of random sizes it says the same: need_more (asking for no more than
//   the header lacks) until the whole verdict, complete with the same size from then on, or error
//   with the same reason from the first byte that can be no header's on;
// - an accepted header, rebuilt from what it says (build_proxy_v1, build_proxy_v2 or _local, its
//   TLVs and its CRC32C), parses again to the same version, command, addresses and TLVs;
// - proxy_header_reader over a scripted socket that hands the stream over in random pieces (EAGAIN
//   between them, end of file after the last) reaches the same verdict, takes exactly the header
//   and nothing after it, and whenever it says step::read has taken every byte it peeked at (so a
//   level-triggered poll would sleep);
// - the address scanners agree with inet_pton(3) on each space-separated word of the first bytes.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "splice/proxy_header_reader.hpp"
#include "splice/proxy_protocol.hpp"

namespace {

using namespace splice_lib;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "proxy_header_fuzz: %s\n", what);
    std::abort();
  }
}

struct rng {
  std::uint32_t x;
  std::uint32_t next() { return x ^= x << 13, x ^= x >> 17, x ^= x << 5; }
};

/// An address reduced to what it means: family, the bytes that count, the port.
std::string canonical(const sockaddr_storage& ss) {
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    return "4:" + std::string(reinterpret_cast<const char*>(&in->sin_addr), 4) + std::to_string(in->sin_port);
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    const auto* a = reinterpret_cast<const char*>(&in6->sin6_addr);
    if (std::memcmp(a, mapped, 12) == 0) return "4:" + std::string(a + 12, 4) + std::to_string(in6->sin6_port);
    return "6:" + std::string(a, 16) + std::to_string(in6->sin6_port);
  }
  if (ss.ss_family == AF_UNIX) {
    unsigned char path[detail::unix_path_bytes];
    detail::unix_path(reinterpret_cast<const sockaddr*>(&ss), path);
    return "unix" + std::string(reinterpret_cast<const char*>(path), sizeof path);
  }
  check(ss.ss_family == AF_UNSPEC, "an address of another family");
  return "none";
}

std::vector<std::string> tlv_list(const proxy_tlvs& t) {
  std::vector<std::string> out;
  for (const proxy_tlv x : t)
    if (x.type != proxy_tlv_type::crc32c)
      out.push_back(std::to_string(x.type) + ":" + std::string(reinterpret_cast<const char*>(x.value), x.length));
  return out;
}

/// rebuild writes the header h says, and checks that it parses to the same.
void rebuild(const proxy_header& h) {
  static unsigned char buf[70000];
  std::vector<proxy_tlv> tlvs;
  for (const proxy_tlv x : h.tlvs)
    if (x.type != proxy_tlv_type::crc32c) tlvs.push_back(x);
  proxy_v2_extras x;
  x.tlvs = tlvs.data(), x.count = tlvs.size(), x.crc32c = h.tlvs.find(proxy_tlv_type::crc32c).value != nullptr;
  const sockaddr* src = h.has_address() ? reinterpret_cast<const sockaddr*>(&h.src) : nullptr;
  const sockaddr* dst = h.has_address() ? reinterpret_cast<const sockaddr*>(&h.dst) : nullptr;
  const std::size_t n = h.version == 1 ? build_proxy_v1(buf, sizeof buf, src, dst)
                        : h.local      ? build_proxy_v2_local(buf, sizeof buf, x)
                                       : build_proxy_v2(buf, sizeof buf, src, dst, x);
  check(n > 0, "an accepted header cannot be rebuilt");
  proxy_header again;
  proxy_header_options any;
  any.max_size = 16 + 0xFFFF;
  const proxy_parse_result r = parse_proxy_header(buf, n, again, any);
  check(r.status == proxy_status::complete && r.size == n, "a rebuilt header does not parse whole");
  check(again.version == h.version && again.local == h.local, "rebuilt: another version or command");
  check(canonical(again.src) == canonical(h.src) && canonical(again.dst) == canonical(h.dst), "rebuilt: other addresses");
  check(tlv_list(again.tlvs) == tlv_list(h.tlvs), "rebuilt: other TLVs");
}

/// The socket a reader reads: the stream, of which `avail` bytes have arrived.
struct script {
  const unsigned char* data;
  std::size_t n, pos = 0, avail = 0;
  std::size_t peeked_to = 0;  // the furthest byte a peek has seen
};

struct script_sys {
  script* s;
  ssize_t recv(int, void* buf, std::size_t len, int flags) {
    if (s->pos == s->avail) {
      if (s->avail == s->n) return 0;
      errno = EAGAIN;
      return -1;
    }
    const std::size_t k = std::min(len, s->avail - s->pos);
    std::memcpy(buf, s->data + s->pos, k);
    if (flags & MSG_PEEK) s->peeked_to = std::max(s->peeked_to, s->pos + k);
    else s->pos += k;
    return ssize_t(k);
  }
};

void read_in_pieces(const unsigned char* p, std::size_t n, const proxy_header_options& opt, rng& g,
                    const proxy_parse_result& whole) {
  script s{p, n};
  proxy_header_reader<script_sys> r(3, opt, script_sys{&s});
  for (int calls = 0; r.advance() == step::read; ++calls) {
    check(s.pos == s.peeked_to, "step::read with peeked bytes left in the socket");
    check(s.avail < n || n == 0, "step::read with the whole stream there");
    check(calls <= int(n) + 2, "more waits than bytes");
    s.avail = std::min(n, s.avail + 1 + (g.next() % 4 == 0 ? g.next() % 300 : g.next() % 4));
  }
  if (whole.status == proxy_status::complete) {
    check(!r.error() && r.header().size == whole.size, "the reader disagrees: complete");
    check(s.pos == whole.size && r.consumed() == whole.size, "the reader took other than the header");
  } else if (whole.status == proxy_status::error) {
    check(r.error() == errc::bad_proxy_header && std::strcmp(r.reason(), whole.reason) == 0, "the reader disagrees: error");
    check(s.pos <= n, "the reader took too much");
  } else {
    check(r.error() == errc::bad_proxy_header && s.pos == n, "the reader disagrees: end inside the header");
  }
}

void pieces(const unsigned char* p, std::size_t n, const proxy_header_options& opt, rng& g, const proxy_parse_result& whole) {
  bool erred = false;
  for (std::size_t k = 0; k < n; k += 1 + (g.next() % 3 == 0 ? g.next() % 64 : 0)) {
    proxy_header h;
    const proxy_parse_result r = parse_proxy_header(p, k, h, opt);
    if (whole.status == proxy_status::complete && k >= whole.size) {
      check(r.status == proxy_status::complete && r.size == whole.size, "a prefix past the header: another size");
    } else if (r.status == proxy_status::need_more) {
      check(!erred, "need_more after error");
      check(r.need >= 1, "need_more with need 0");
      if (whole.status == proxy_status::complete) check(k + r.need <= whole.size, "need past the header's end");
      if (whole.status == proxy_status::need_more) check(k + r.need <= n + whole.need, "need past the need");
    } else {
      check(r.status == proxy_status::error && whole.status == proxy_status::error, "a prefix refused, the whole not");
      check(std::strcmp(r.reason, whole.reason) == 0, "a prefix refused for another reason");
      erred = true;
    }
  }
}

/// scanners compares the v1 address scanners with inet_pton on text t, and with its prefixes.
void scanners(const unsigned char* t, std::size_t n) {
  n = std::min<std::size_t>(n, 48);
  if (n && std::memchr(t, 0, n)) return;
  const std::string text(reinterpret_cast<const char*>(t), n);
  unsigned char mine[16], theirs[16];
  const detail::fit f4 = detail::scan_ipv4(t, n, true, mine);
  check((f4 == detail::fit::whole) == (::inet_pton(AF_INET, text.c_str(), theirs) == 1), "scan_ipv4 and inet_pton disagree");
  if (f4 == detail::fit::whole) check(std::memcmp(mine, theirs, 4) == 0, "scan_ipv4: another address");
  const detail::fit f6 = detail::scan_ipv6(t, n, true, mine);
  check((f6 == detail::fit::whole) == (::inet_pton(AF_INET6, text.c_str(), theirs) == 1), "scan_ipv6 and inet_pton disagree");
  if (f6 == detail::fit::whole) check(std::memcmp(mine, theirs, 16) == 0, "scan_ipv6: another address");
  for (std::size_t k = 0; k < n; ++k) {
    if (f4 == detail::fit::whole) check(detail::scan_ipv4(t, k, false, mine) == detail::fit::partial, "an IPv4 prefix refused");
    if (f6 == detail::fit::whole) check(detail::scan_ipv6(t, k, false, mine) == detail::fit::partial, "an IPv6 prefix refused");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  proxy_header_options opt;
  static const std::size_t max_sizes[] = {4096, 28, 300, 16 + 0xFFFF};
  opt.max_size = max_sizes[data[0] & 3];
  opt.accept_v1 = (data[0] & 0x1C) != 0x1C;
  opt.accept_v2 = (data[0] & 0xE0) != 0xE0;
  rng g{0x9E3779B9u ^ data[1] ^ std::uint32_t(size) << 8};
  const unsigned char* p = data + 2;
  const std::size_t n = size - 2;
  // A copy of exactly n bytes, so that ASan sees any read past the end.
  std::vector<unsigned char> exact(p, p + n);
  p = exact.data();

  proxy_header h;
  const proxy_parse_result whole = parse_proxy_header(p, n, h, opt);
  if (whole.status == proxy_status::complete) {
    check(whole.size > 0 && whole.size <= n && h.size == whole.size, "complete: a bad size");
    check(h.version == 1 || h.version == 2, "complete: a bad version");
    rebuild(h);
  } else if (whole.status == proxy_status::error) {
    check(whole.error == errc::bad_proxy_header && *whole.reason, "error: no reason");
  } else {
    check(whole.need >= 1, "need_more with need 0");
  }
  pieces(p, n, opt, g, whole);
  read_in_pieces(p, n, opt, g, whole);
  for (std::size_t at = 0, end; at < std::min<std::size_t>(n, 120); at = end + 1) {  // each word
    end = std::size_t(std::find(p + at, p + n, ' ') - p);
    scanners(p + at, end - at);
  }
  return 0;
}
