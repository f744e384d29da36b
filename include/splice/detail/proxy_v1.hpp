// SPDX-License-Identifier: MIT
// PROXY protocol v1, the text line `PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n`: read
// strictly, from bytes that may stop short, and written canonically.
#ifndef SPLICE_DETAIL_PROXY_V1_HPP_
#define SPLICE_DETAIL_PROXY_V1_HPP_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <arpa/inet.h>

#include "proxy_wire.hpp"

namespace splice_lib::detail {

/// The longest v1 line, CRLF included, and the shortest (`PROXY UNKNOWN\r\n`).
inline constexpr std::size_t v1_max = 107, v1_min = 15;

/// fit is how far a field of a line that may stop short checks out: it cannot be one (bad), it is
/// the start of one (partial: its end has not arrived), or it is one (whole).
enum class fit { bad, partial, whole };

inline bool is_digit(unsigned c) noexcept { return c - '0' < 10; }
inline int hex_value(unsigned c) noexcept {
  if (is_digit(c)) return int(c - '0');
  c |= 0x20u;
  return c - 'a' < 6 ? int(c - 'a' + 10) : -1;
}

/// scan_ipv4 checks dotted-decimal IPv4 text: four parts of 0-255, no leading zero (so that "010"
/// never means 8 to one reader and 10 to another). ended says whether the field's end was seen.
inline fit scan_ipv4(const unsigned char* s, std::size_t n, bool ended, unsigned char out[4]) noexcept {
  unsigned part = 0, digits = 0, dots = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (s[i] == '.') {
      if (digits == 0 || dots == 3) return fit::bad;
      out[dots++] = static_cast<unsigned char>(part), part = digits = 0;
    } else if (!is_digit(s[i]) || (digits > 0 && part == 0) || (part = part * 10 + (s[i] - '0')) > 255) {
      return fit::bad;
    } else {
      ++digits;
    }
  }
  if (!ended) return fit::partial;
  if (dots != 3 || digits == 0) return fit::bad;
  out[3] = static_cast<unsigned char>(part);
  return fit::whole;
}

/// scan_ipv6 checks IPv6 text (RFC 4291 2.2): eight groups of 1-4 hex digits, or fewer around one
/// "::" that stands for at least one zero group, the last two optionally as dotted IPv4. A prefix
/// is partial only while some ending can still make it an address.
inline fit scan_ipv6(const unsigned char* s, std::size_t n, bool ended, unsigned char out[16]) noexcept {
  std::uint16_t g[8] = {};
  int count = 0, gap = -1;  // groups read; where "::" stands, in groups
  std::size_t i = 0;
  bool need_group = true;  // at the start, or after a single ':'
  if (n >= 1 && s[0] == ':') {
    if (n == 1) return ended ? fit::bad : fit::partial;
    if (s[1] != ':') return fit::bad;
    gap = 0, i = 2, need_group = false;
  }
  for (;;) {
    const int most = gap < 0 ? 8 : 7;
    if (i == n) {
      if (!ended) return fit::partial;
      if (need_group) return fit::bad;
      break;
    }
    std::size_t j = i;
    unsigned v = 0;
    for (int h; j < n && j - i < 5 && (h = hex_value(s[j])) >= 0; ++j) v = v * 16 + unsigned(h);
    if (j - i > 4) return fit::bad;
    if (j < n && s[j] == '.') {  // dotted IPv4 for the last two groups
      if (gap < 0 ? count != 6 : count + 2 > most) return fit::bad;
      unsigned char v4[4];
      const fit f = scan_ipv4(s + i, n - i, ended, v4);
      if (f != fit::whole) return f;
      g[count++] = std::uint16_t(v4[0] << 8 | v4[1]), g[count++] = std::uint16_t(v4[2] << 8 | v4[3]);
      break;
    }
    if (j == i || count == most) return fit::bad;
    g[count++] = std::uint16_t(v), need_group = false;
    if (j == n) {
      if (!ended) return fit::partial;
      break;
    }
    if (s[j] != ':') return fit::bad;
    if (j + 1 < n && s[j + 1] == ':') {
      if (gap >= 0 || count == 8) return fit::bad;
      gap = count, i = j + 2;
    } else {
      if (count == most) return fit::bad;
      i = j + 1, need_group = true;
    }
  }
  if (gap < 0 ? count != 8 : count > 7) return fit::bad;
  std::memset(out, 0, 16);
  const int tail = gap < 0 ? 0 : count - gap;
  for (int k = 0; k < count; ++k) {
    const int at = (gap >= 0 && k >= gap) ? 8 - tail + (k - gap) : k;
    store16(out + 2 * std::size_t(at), g[k]);
  }
  return fit::whole;
}

/// scan_port checks a decimal port: 0-65535, digits only, no sign and no leading zero.
inline fit scan_port(const unsigned char* s, std::size_t n, bool ended, unsigned char out[2]) noexcept {
  unsigned v = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (!is_digit(s[i]) || (i > 0 && v == 0) || (v = v * 10 + (s[i] - '0')) > 65535) return fit::bad;
  if (!ended) return fit::partial;
  if (n == 0) return fit::bad;
  store16(out, v);
  return fit::whole;
}

/// v1_line walks the fields of a v1 line that may stop short, from byte `at` on. Positions count
/// from the line's start. Invariant: at_ <= n_ <= v1_max.
class v1_line {
 public:
  v1_line(const unsigned char* p, std::size_t n, std::size_t at = 0) noexcept
      : p_(p), n_(std::min(n, v1_max)), at_(std::min(at, n_)), cut_(n >= v1_max) {}

  /// field is a run of bytes from the cursor, and whether the byte that ends it has arrived.
  struct field {
    const unsigned char* s;
    std::size_t n;
    bool ended;
  };
  /// until returns the bytes before the first one that stop(byte) is true of, and moves the
  /// cursor onto that byte.
  template <class Stop>
  field until(Stop stop) noexcept {
    std::size_t e = at_;
    while (e < n_ && !stop(p_[e])) ++e;
    const field f{p_ + at_, e - at_, e < n_};
    at_ = e;
    return f;
  }
  /// next returns the bytes up to the first `end`, and moves the cursor onto it.
  field next(unsigned char end) noexcept {
    return until([end](unsigned char c) { return c == end; });
  }
  bool at_end() const noexcept { return at_ == n_; }
  unsigned char peek() const noexcept { return p_[at_]; }
  void skip() noexcept { ++at_; }
  std::size_t pos() const noexcept { return at_; }

  /// short_of is the verdict on a line that is valid so far but has no CRLF yet.
  pp_verdict short_of() const noexcept {
    if (cut_) return pp_bad("v1 header longer than 107 bytes");
    const std::size_t ending = n_ > 0 && p_[n_ - 1] == '\r' ? 1 : 2;
    return pp_more(std::max(n_ < v1_min ? v1_min - n_ : 0, ending));
  }
  /// crlf is the verdict at the byte after a field that must end the line.
  pp_verdict crlf(const char* why) noexcept {
    if (at_end()) return short_of();
    if (peek() != '\r') return pp_bad(why);
    skip();
    if (at_end()) return short_of();
    if (peek() != '\n') return pp_bad(why);
    return pp_complete(at_ + 1);
  }

 private:
  const unsigned char* p_;
  std::size_t n_, at_;
  bool cut_;
};

/// v1_address reads one address field of family af, ended by a space, into addr.
inline fit v1_address(v1_line& line, int af, unsigned char* addr) noexcept {
  const auto f = line.next(' ');
  const fit r = af == AF_INET ? scan_ipv4(f.s, f.n, f.ended, addr) : scan_ipv6(f.s, f.n, f.ended, addr);
  if (r == fit::whole) line.skip();
  return r;
}

/// The reason for an empty field.
inline constexpr const char* v1_spaces = "v1 fields must be separated by single spaces";

/// parse_v1 reads the v1 line at the start of p[0..n). Invariant: p[0] == 'P'.
inline pp_verdict parse_v1(const unsigned char* p, std::size_t n, pp_fields& out) noexcept {
  static const char magic[] = "PROXY ";
  for (std::size_t i = 0; i < 6; ++i) {
    if (i == n) return v1_line(p, n).short_of();
    if (p[i] != static_cast<unsigned char>(magic[i])) return pp_bad(not_a_header);
  }
  v1_line line(p, n, 6);
  const auto proto = line.until([](unsigned char c) { return c == ' ' || c == '\r'; });
  if (proto.ended && proto.n == 0 && line.peek() == ' ') return pp_bad(v1_spaces);
  const char* const names[] = {"TCP4", "TCP6", "UNKNOWN"};
  int kind = -1;
  for (int k = 0; k < 3; ++k) {
    const std::size_t len = std::strlen(names[k]);
    if (proto.n <= len && std::memcmp(proto.s, names[k], proto.n) == 0 && (!proto.ended || proto.n == len)) kind = k;
  }
  if (kind < 0) return pp_bad("v1 unknown protocol");
  if (!proto.ended) return line.short_of();
  if (kind == 2 && line.peek() == '\r') {  // "UNKNOWN\r\n"
    const pp_verdict v = line.crlf("v1 expected CRLF");
    if (v.state == pp_state::complete) out = pp_fields{}, out.version = 1;
    return v;
  }
  if (line.peek() != ' ') return pp_bad("v1 expected a space after the protocol");
  line.skip();
  if (kind == 2) {  // "UNKNOWN ": anything up to the first CRLF
    for (;;) {
      line.next('\r');
      if (line.at_end()) return line.short_of();
      line.skip();
      if (line.at_end()) return line.short_of();
      if (line.peek() == '\n') {
        out = pp_fields{};
        out.version = 1;
        return pp_complete(line.pos() + 1);
      }
    }
  }
  const int af = kind == 0 ? AF_INET : AF_INET6;
  const auto space_next = [&line] { return !line.at_end() && line.peek() == ' '; };
  // A field that is whole goes on; a bad one is refused for why; a partial one waits for more.
  const auto stop = [&line](fit r, const char* why) { return r == fit::bad ? pp_bad(why) : line.short_of(); };
  unsigned char src[16], dst[16], ports[4];
  if (space_next()) return pp_bad(v1_spaces);
  fit r = v1_address(line, af, src);
  if (r != fit::whole) return stop(r, "v1 bad source address");
  if (space_next()) return pp_bad(v1_spaces);
  r = v1_address(line, af, dst);
  if (r != fit::whole) return stop(r, "v1 bad destination address");
  if (space_next()) return pp_bad(v1_spaces);
  const auto sp = line.next(' ');
  r = scan_port(sp.s, sp.n, sp.ended, ports);
  if (r != fit::whole) return stop(r, "v1 bad source port");
  line.skip();
  if (space_next()) return pp_bad(v1_spaces);
  const auto dp = line.until([](unsigned char c) { return !is_digit(c); });
  r = scan_port(dp.s, dp.n, dp.ended, ports + 2);
  if (r != fit::whole) return stop(r, "v1 bad destination port");
  const pp_verdict v = line.crlf("v1 expected CRLF after the destination port");
  if (v.state != pp_state::complete) return v;
  pp_fields f;
  f.version = 1;
  store_ip(f.src, af, src, ports);
  store_ip(f.dst, af, dst, ports + 2);
  out = f;
  return v;
}

/// put_text appends s to out[at..cap); false if it does not fit.
inline bool put_text(char* out, std::size_t cap, std::size_t& at, const char* s) noexcept {
  const std::size_t n = std::strlen(s);
  if (n > cap - at) return false;
  std::copy(s, s + n, out + at);  // no NUL: a header line is counted, not terminated
  at += n;
  return true;
}

/// put_v1 writes the v1 line for a connection from src to dst into out[0..cap) and returns its
/// length, or 0 if it does not fit: TCP4 or TCP6 as ip_pair says, UNKNOWN for AF_UNSPEC.
inline std::size_t put_v1(char* out, std::size_t cap, const sockaddr* src, const sockaddr* dst) noexcept {
  char line[v1_max + 1];
  std::size_t at = 0;
  ip_endpoint s, d;
  if (ip_pair(src, dst, s, d) == AF_UNSPEC) {
    put_text(line, sizeof line, at, "PROXY UNKNOWN\r\n");
  } else {
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN], ports[16];
    if (!::inet_ntop(s.family, s.addr, a, sizeof a) || !::inet_ntop(d.family, d.addr, b, sizeof b)) return 0;
    std::size_t k = sizeof ports;
    ports[--k] = '\0';
    for (unsigned v = d.port, first = 1; first || v; first = 0, v /= 10) ports[--k] = char('0' + v % 10);
    ports[--k] = ' ';
    for (unsigned v = s.port, first = 1; first || v; first = 0, v /= 10) ports[--k] = char('0' + v % 10);
    if (!put_text(line, sizeof line, at, s.family == AF_INET ? "PROXY TCP4 " : "PROXY TCP6 ") ||
        !put_text(line, sizeof line, at, a) || !put_text(line, sizeof line, at, " ") ||
        !put_text(line, sizeof line, at, b) || !put_text(line, sizeof line, at, " ") ||
        !put_text(line, sizeof line, at, ports + k) || !put_text(line, v1_max, at, "\r\n"))
      return 0;
  }
  if (at > cap) return 0;
  std::memcpy(out, line, at);
  return at;
}

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_PROXY_V1_HPP_
