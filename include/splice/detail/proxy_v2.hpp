// SPDX-License-Identifier: MIT
// PROXY protocol v2, the binary header: a 16-byte fixed part (signature, version and command,
// family and transport, length), the addresses, then TLVs. Read from bytes that may stop short.
#ifndef SPLICE_DETAIL_PROXY_V2_HPP_
#define SPLICE_DETAIL_PROXY_V2_HPP_

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "crc32c.hpp"
#include "proxy_wire.hpp"

namespace splice_lib::detail {

inline constexpr unsigned char v2_signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
/// The fixed part's length, and the length the longest header may declare.
inline constexpr std::size_t v2_fixed = 16, v2_max_length = 0xFFFF;
inline constexpr unsigned char v2_local = 0x20, v2_proxy = 0x21, tlv_crc32c = 0x03;
/// The family and transport bytes allowed: UNSPEC, and TCP over IPv4, TCP over IPv6, unix stream.
inline constexpr unsigned char v2_unspec = 0x00, v2_inet = 0x11, v2_inet6 = 0x21, v2_unix = 0x31;

/// v2_address_size returns the bytes the addresses of family-and-transport byte f take, or -1 for
/// a byte that is not allowed (datagrams, and values the specification leaves unassigned).
inline int v2_address_size(unsigned char f) noexcept {
  switch (f) {
    case v2_unspec: return 0;
    case v2_inet: return 12;
    case v2_inet6: return 36;
    case v2_unix: return 216;
    default: return -1;
  }
}

/// v2_tlvs checks the TLVs in p[at..total) as far as n bytes have arrived, and finds the
/// value of the CRC32C TLV (crc: its offset, 0 if none). A TLV that overruns total, a CRC32C TLV
/// whose value is not 4 bytes, and a second one are bad.
inline const char* v2_tlvs(const unsigned char* p, std::size_t n, std::size_t at, std::size_t total,
                           std::size_t& crc) noexcept {
  crc = 0;
  while (at < total) {
    if (total - at < 3) return "v2 TLV overruns the header";
    if (n < at + 3) return nullptr;
    const std::size_t len = load16(p + at + 1);
    if (total - at - 3 < len) return "v2 TLV overruns the header";
    if (p[at] == tlv_crc32c) {
      if (len != 4) return "v2 CRC32C TLV is not 4 bytes";
      if (crc) return "v2 more than one CRC32C TLV";
      crc = at + 3;
    }
    at += 3 + len;
  }
  return nullptr;
}

/// v2_crc returns the CRC-32C of the header in p[0..total) with the 4 bytes at crc taken as zeros.
inline std::uint32_t v2_crc(const unsigned char* p, std::size_t total, std::size_t crc) noexcept {
  static const unsigned char zeros[4] = {};
  std::uint32_t c = crc32c(p, crc);
  c = crc32c(zeros, 4, c);
  return crc32c(p + crc + 4, total - crc - 4, c);
}

inline std::uint32_t load32(const unsigned char* p) noexcept {
  return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}

/// parse_v2 reads the v2 header at the start of p[0..n), rejecting one longer than max_total
/// bytes in all. It says bad at the first byte that cannot belong to a header. A LOCAL header's
/// addresses are ignored, as the specification says; a block shorter than its family's is then
/// allowed, and holds no TLVs. Invariant: p[0] == '\r'.
inline pp_verdict parse_v2(const unsigned char* p, std::size_t n, std::size_t max_total, pp_fields& out) noexcept {
  for (std::size_t i = 0; i < 12 && i < n; ++i)
    if (p[i] != v2_signature[i]) return pp_bad(not_a_header);
  if (n > 12 && (p[12] >> 4) != 2) return pp_bad("v2 unsupported version");
  if (n > 12 && p[12] != v2_local && p[12] != v2_proxy) return pp_bad("v2 unknown command");
  const int asz = n > 13 ? v2_address_size(p[13]) : 0;
  if (asz < 0) return pp_bad("v2 unsupported address family or transport");
  if (n < v2_fixed) return pp_more(v2_fixed - n);
  const std::size_t len = load16(p + 14), total = v2_fixed + len;
  if (total > max_total) return pp_bad("v2 header longer than the maximum");
  const bool local = p[12] == v2_local;
  if (!local && len < std::size_t(asz)) return pp_bad("v2 length too short for the addresses");
  const std::size_t tlv_at = len < std::size_t(asz) ? total : v2_fixed + std::size_t(asz);
  std::size_t crc = 0;
  if (const char* why = v2_tlvs(p, n, tlv_at, total, crc)) return pp_bad(why);
  if (n < total) return pp_more(total - n);
  if (crc && v2_crc(p, total, crc) != load32(p + crc)) return pp_bad("v2 CRC32C mismatch");
  pp_fields f;
  f.version = 2, f.local = local;
  const unsigned char* a = p + v2_fixed;
  if (!local && p[13] == v2_inet) {
    store_ip(f.src, AF_INET, a, a + 8);
    store_ip(f.dst, AF_INET, a + 4, a + 10);
  } else if (!local && p[13] == v2_inet6) {
    store_ip(f.src, AF_INET6, a, a + 32);
    store_ip(f.dst, AF_INET6, a + 16, a + 34);
  } else if (!local && p[13] == v2_unix) {
    store_unix(f.src, a);
    store_unix(f.dst, a + unix_path_bytes);
  }
  f.tlv = p + tlv_at, f.tlv_len = total - tlv_at;
  out = f;
  return pp_complete(total);
}

/// v2_block is the family byte and the address block of a PROXY header.
struct v2_block {
  unsigned char family = v2_unspec;
  std::size_t size = 0;
  unsigned char bytes[216] = {};
};

/// v2_block_of lays out the addresses of a connection from src to dst: INET or INET6 as ip_pair
/// says, UNIX for two unix ends, and UNSPEC with no address for anything else.
inline v2_block v2_block_of(const sockaddr* src, const sockaddr* dst) noexcept {
  v2_block b;
  ip_endpoint s, d;
  if (ip_pair(src, dst, s, d) != AF_UNSPEC) {
    const std::size_t w = s.family == AF_INET ? 4 : 16;
    b.family = s.family == AF_INET ? v2_inet : v2_inet6, b.size = 2 * w + 4;
    std::memcpy(b.bytes, s.addr, w);
    std::memcpy(b.bytes + w, d.addr, w);
    store16(b.bytes + 2 * w, s.port);
    store16(b.bytes + 2 * w + 2, d.port);
  } else if (src && dst && src->sa_family == AF_UNIX && dst->sa_family == AF_UNIX) {
    b.family = v2_unix, b.size = 2 * unix_path_bytes;
    unix_path(src, b.bytes);
    unix_path(dst, b.bytes + unix_path_bytes);
  }
  return b;
}

/// put_tlv writes one TLV at out and returns its length. Invariant: out has room for 3 + n bytes.
inline std::size_t put_tlv(unsigned char* out, unsigned char type, const void* value, std::size_t n) noexcept {
  out[0] = type;
  store16(out + 1, std::uint32_t(n));
  if (n) std::memcpy(out + 3, value, n);
  return 3 + n;
}

/// put_v2 writes a v2 header into out[0..cap) and returns its length, or 0 if it does not fit or
/// cannot be said: command (v2_local or v2_proxy), the address block b, then the count TLVs at
/// tlvs (each with members type, length and value, as splice_lib::proxy_tlv), then, if crc, a
/// CRC32C TLV over the whole header. A given TLV of type CRC32C is refused when crc is asked for.
template <class Tlv>
std::size_t put_v2(unsigned char* out, std::size_t cap, unsigned char command, const v2_block& b, const Tlv* tlvs,
                   std::size_t count, bool crc) noexcept {
  std::size_t len = b.size + (crc ? 7 : 0);
  for (std::size_t i = 0; i < count; ++i) {
    if ((tlvs[i].length && !tlvs[i].value) || (crc && tlvs[i].type == tlv_crc32c)) return 0;
    len += 3 + std::size_t(tlvs[i].length);
  }
  if (len > v2_max_length || len > cap || cap - len < v2_fixed) return 0;
  std::memcpy(out, v2_signature, 12);
  out[12] = command, out[13] = b.family;
  store16(out + 14, std::uint32_t(len));
  std::memcpy(out + v2_fixed, b.bytes, b.size);
  std::size_t at = v2_fixed + b.size;
  for (std::size_t i = 0; i < count; ++i) at += put_tlv(out + at, tlvs[i].type, tlvs[i].value, tlvs[i].length);
  if (crc) {
    static const unsigned char zeros[4] = {};
    at += put_tlv(out + at, tlv_crc32c, zeros, 4);
    const std::uint32_t c = v2_crc(out, at, at - 4);
    out[at - 4] = std::uint8_t(c >> 24), out[at - 3] = std::uint8_t(c >> 16);
    out[at - 2] = std::uint8_t(c >> 8), out[at - 1] = std::uint8_t(c);
  }
  return at;
}

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_PROXY_V2_HPP_
