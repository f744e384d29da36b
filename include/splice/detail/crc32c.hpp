// SPDX-License-Identifier: MIT
// CRC-32C (Castagnoli), the checksum of a PROXY protocol v2 header's PP2_TYPE_CRC32C TLV.
//
// Written here rather than taken from a package: Debian has no CRC-32C library for C or C++ (the
// only candidate is Boost.CRC's generic template, in libboost-dev), and the core of this library
// depends on the C++ standard library and POSIX alone; Boost is for the optional asio add-on. A
// byte-at-a-time table is enough for headers of a few hundred bytes.
#ifndef SPLICE_DETAIL_CRC32C_HPP_
#define SPLICE_DETAIL_CRC32C_HPP_

#include <cstddef>
#include <cstdint>

namespace splice_lib::detail {

/// crc32c_table holds the CRC of every byte value under the reflected Castagnoli polynomial.
struct crc32c_table {
  std::uint32_t v[256];
};

/// make_crc32c_table computes the table at compile time, one bit at a time.
constexpr crc32c_table make_crc32c_table() noexcept {
  crc32c_table t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t.v[i] = c;
  }
  return t;
}

inline constexpr crc32c_table crc32c_lookup = make_crc32c_table();

/// crc32c returns the CRC-32C of n bytes at p, continuing from crc (the CRC of the bytes before
/// them; 0 to start): crc32c(b, m, crc32c(a, n)) is the CRC of a followed by b.
inline std::uint32_t crc32c(const unsigned char* p, std::size_t n, std::uint32_t crc = 0) noexcept {
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = crc32c_lookup.v[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_CRC32C_HPP_
