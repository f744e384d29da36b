// SPDX-License-Identifier: MIT
// What the PROXY protocol v1 and v2 codecs share: the verdict on bytes that may stop short, the
// fields a header carries, and socket addresses taken apart and put together.
#ifndef SPLICE_DETAIL_PROXY_WIRE_HPP_
#define SPLICE_DETAIL_PROXY_WIRE_HPP_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace splice_lib::detail {

/// pp_state says what bytes that may stop short hold: the start of a header (more), a whole
/// header (complete), or something no more bytes can make a header (bad).
enum class pp_state { more, complete, bad };

/// pp_verdict is a codec's answer: for more, n is a lower bound on the bytes still to come (at
/// least 1); for complete, n is the header's length; for bad, reason says why.
struct pp_verdict {
  pp_state state = pp_state::more;
  std::size_t n = 1;
  const char* reason = "";
};

inline pp_verdict pp_more(std::size_t n) noexcept { return {pp_state::more, std::max<std::size_t>(n, 1), ""}; }
inline pp_verdict pp_complete(std::size_t n) noexcept { return {pp_state::complete, n, ""}; }
inline pp_verdict pp_bad(const char* why) noexcept { return {pp_state::bad, 0, why}; }

/// The reason given for bytes that cannot start a header at all.
inline constexpr const char* not_a_header = "not a PROXY protocol header";

/// pp_fields is what a whole header says. src and dst are AF_UNSPEC when it carries no address;
/// tlv points into the parsed bytes.
struct pp_fields {
  int version = 0;
  bool local = false;
  sockaddr_storage src{}, dst{};
  const unsigned char* tlv = nullptr;
  std::size_t tlv_len = 0;
};

/// ip_endpoint is an IP socket address taken apart: 4 or 16 address bytes in network order and
/// the port in host order; family AF_UNSPEC for anything that is not IP.
struct ip_endpoint {
  int family = AF_UNSPEC;
  unsigned char addr[16]{};
  std::uint16_t port = 0;
};

inline std::uint16_t load16(const unsigned char* p) noexcept { return std::uint16_t(p[0] << 8 | p[1]); }
inline void store16(unsigned char* p, std::uint32_t v) noexcept { p[0] = (v >> 8) & 0xFFu, p[1] = v & 0xFFu; }

/// ip_of takes sa apart. sa must point to a whole sockaddr_in or sockaddr_in6 when its family says
/// so; it may be null.
inline ip_endpoint ip_of(const sockaddr* sa) noexcept {
  ip_endpoint e;
  if (sa && sa->sa_family == AF_INET) {
    sockaddr_in in;
    std::memcpy(&in, sa, sizeof in);
    e.family = AF_INET;
    std::memcpy(e.addr, &in.sin_addr, 4);
    e.port = load16(reinterpret_cast<const unsigned char*>(&in.sin_port));
  } else if (sa && sa->sa_family == AF_INET6) {
    sockaddr_in6 in6;
    std::memcpy(&in6, sa, sizeof in6);
    e.family = AF_INET6;
    std::memcpy(e.addr, &in6.sin6_addr, 16);
    e.port = load16(reinterpret_cast<const unsigned char*>(&in6.sin6_port));
  }
  return e;
}

/// v4_mapped says whether e is an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
inline bool v4_mapped(const ip_endpoint& e) noexcept {
  static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  return e.family == AF_INET6 && std::memcmp(e.addr, prefix, 12) == 0;
}

/// ip_pair takes the ends of a connection apart and returns the family a header gives them:
/// AF_INET when both are IPv4 or IPv4-mapped IPv6 (then both come out as IPv4), AF_INET6 when both
/// are IPv6 (one may be mapped), AF_UNSPEC otherwise (not IP, or IPv4 beside real IPv6).
inline int ip_pair(const sockaddr* src, const sockaddr* dst, ip_endpoint& s, ip_endpoint& d) noexcept {
  s = ip_of(src), d = ip_of(dst);
  const bool v4s = s.family == AF_INET || v4_mapped(s), v4d = d.family == AF_INET || v4_mapped(d);
  if (v4s && v4d) {
    for (ip_endpoint* e : {&s, &d})
      if (e->family == AF_INET6) std::memmove(e->addr, e->addr + 12, 4), e->family = AF_INET;
    return AF_INET;
  }
  return s.family == AF_INET6 && d.family == AF_INET6 ? AF_INET6 : AF_UNSPEC;
}

/// store_ip puts an IPv4 (4 bytes) or IPv6 (16 bytes) address and a port in network order into ss.
inline void store_ip(sockaddr_storage& ss, int family, const unsigned char* addr, const unsigned char* port) noexcept {
  ss = sockaddr_storage{};
  if (family == AF_INET) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    std::memcpy(&in.sin_addr, addr, 4);
    std::memcpy(&in.sin_port, port, 2);
    std::memcpy(&ss, &in, sizeof in);
  } else {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    std::memcpy(&in6.sin6_addr, addr, 16);
    std::memcpy(&in6.sin6_port, port, 2);
    std::memcpy(&ss, &in6, sizeof in6);
  }
}

/// The bytes of one address in a v2 AF_UNIX block; sun_path may be shorter elsewhere (104 bytes on
/// the BSDs), and then only what fits is kept.
inline constexpr std::size_t unix_path_bytes = 108;
inline constexpr std::size_t sun_path_size = sizeof(sockaddr_un{}.sun_path);

/// store_unix puts the 108-byte v2 path at p into ss as a sockaddr_un.
inline void store_unix(sockaddr_storage& ss, const unsigned char* p) noexcept {
  ss = sockaddr_storage{};
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path, p, std::min(unix_path_bytes, sun_path_size));
  std::memcpy(&ss, &un, sizeof un);
}

/// unix_path copies the path of sa (a whole sockaddr_un) into the 108 bytes at out: a pathname up
/// to its NUL, zeros after it; an abstract name (first byte NUL) whole.
inline void unix_path(const sockaddr* sa, unsigned char* out) noexcept {
  sockaddr_un un;
  std::memcpy(&un, sa, sizeof un);
  std::memset(out, 0, unix_path_bytes);
  const std::size_t n = std::min(unix_path_bytes, sun_path_size);
  const std::size_t keep = un.sun_path[0] ? std::find(un.sun_path, un.sun_path + n, '\0') - un.sun_path : n;
  std::memcpy(out, un.sun_path, keep);
}

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_PROXY_WIRE_HPP_
