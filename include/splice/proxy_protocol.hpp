// SPDX-License-Identifier: MIT
// The PROXY protocol, v1 and v2 (haproxy's proxy-protocol.txt): headers parsed from bytes that may
// stop short, and built into a caller's buffer. Pure: no system call, no allocation.
// proxy_header_reader.hpp reads a header off a socket without taking a byte of what follows.
#ifndef SPLICE_PROXY_PROTOCOL_HPP_
#define SPLICE_PROXY_PROTOCOL_HPP_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <system_error>

#include <sys/socket.h>

#include "detail/crc32c.hpp"
#include "detail/proxy_v1.hpp"
#include "detail/proxy_v2.hpp"
#include "error.hpp"

namespace splice_lib {

/// proxy_tlv_type names the v2 TLV types the specification registers.
struct proxy_tlv_type {
  static constexpr std::uint8_t alpn = 0x01, authority = 0x02, crc32c = 0x03, noop = 0x04, unique_id = 0x05,
                                ssl = 0x20, netns = 0x30;
};

/// proxy_tlv is one v2 TLV: its type, and its value, `length` bytes at `value`.
struct proxy_tlv {
  std::uint8_t type = 0;
  std::uint16_t length = 0;
  const unsigned char* value = nullptr;
};

/// proxy_tlvs views a run of v2 TLVs in memory it does not own: valid while that memory is.
/// Iterating yields each TLV in order, and stops before one that would overrun the run (a header
/// that parse_proxy_header accepted has none). Also views the sub-TLVs of a PP2_TYPE_SSL value.
class proxy_tlvs {
 public:
  /// iterator walks the TLVs; *it is a proxy_tlv by value.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = proxy_tlv;
    using difference_type = std::ptrdiff_t;
    using pointer = const proxy_tlv*;
    using reference = proxy_tlv;

    iterator() noexcept = default;
    proxy_tlv operator*() const noexcept {
      return {at_[0], detail::load16(at_ + 1), at_ + 3};
    }
    iterator& operator++() noexcept {
      at_ += 3 + detail::load16(at_ + 1);
      settle();
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.at_ == b.at_; }
    friend bool operator!=(const iterator& a, const iterator& b) noexcept { return a.at_ != b.at_; }

   private:
    friend class proxy_tlvs;
    iterator(const unsigned char* at, const unsigned char* end) noexcept : at_(at), end_(end) { settle(); }
    // settle moves to the end when no whole TLV starts at at_.
    void settle() noexcept {
      const auto left = std::size_t(end_ - at_);
      if (left < 3 || left - 3 < detail::load16(at_ + 1)) at_ = end_;
    }
    const unsigned char* at_ = nullptr;
    const unsigned char* end_ = nullptr;
  };

  proxy_tlvs() noexcept = default;
  /// Views the TLVs in the n bytes at p.
  proxy_tlvs(const unsigned char* p, std::size_t n) noexcept : p_(p), n_(p ? n : 0) {}

  iterator begin() const noexcept { return {p_, p_ + n_}; }
  iterator end() const noexcept { return {p_ + n_, p_ + n_}; }
  /// Returns true when there is no TLV.
  bool empty() const noexcept { return begin() == end(); }
  /// Returns the first TLV of type t, or one whose value is nullptr.
  proxy_tlv find(std::uint8_t t) const noexcept {
    const iterator it = std::find_if(begin(), end(), [t](const proxy_tlv& x) { return x.type == t; });
    return it == end() ? proxy_tlv{} : *it;
  }
  /// Returns the bytes viewed.
  const unsigned char* data() const noexcept { return p_; }
  std::size_t size() const noexcept { return n_; }

 private:
  const unsigned char* p_ = nullptr;
  std::size_t n_ = 0;
};

/// proxy_header is what a header says. It holds no memory of its own but for tlvs, which views
/// the bytes it was parsed from.
struct proxy_header {
  /// 1 or 2; 0 until a header is parsed.
  int version = 0;
  /// True for a v2 LOCAL: the proxy's own connection (a health check); use the socket's addresses.
  bool local = false;
  /// The client's address (sockaddr_in, sockaddr_in6 or sockaddr_un, with the port) and the one it
  /// connected to; both AF_UNSPEC when the header carries none (LOCAL, UNKNOWN, v2 UNSPEC).
  sockaddr_storage src{}, dst{};
  /// The v2 TLVs after the addresses, checked; empty for v1.
  proxy_tlvs tlvs;
  /// The header's length in bytes.
  std::size_t size = 0;

  /// Returns true when the header carries addresses.
  bool has_address() const noexcept { return src.ss_family != AF_UNSPEC; }
};

/// proxy_header_options says which headers are accepted.
struct proxy_header_options {
  /// The longest v2 header accepted, fixed part, addresses and TLVs, in bytes; a longer one is an
  /// error. The protocol allows 65,551; a reader allocates up to this much for a header longer
  /// than 256 bytes.
  std::size_t max_size = 4096;
  bool accept_v1 = true;
  bool accept_v2 = true;
};

/// What parse_proxy_header found.
enum class proxy_status {
  need_more,  ///< the bytes are the start of a header: give more
  complete,   ///< a whole header, `size` bytes long; the bytes after it are not part of it
  error,      ///< no more bytes can make these a header
};

/// proxy_parse_result is parse_proxy_header's answer.
struct proxy_parse_result {
  proxy_status status = proxy_status::need_more;
  /// complete: the header's length in bytes.
  std::size_t size = 0;
  /// need_more: at least this many more bytes are needed (exact for v2 once its length is in).
  std::size_t need = 0;
  /// error: errc::bad_proxy_header. Retrying does not help: the connection carries no header.
  std::error_code error;
  /// error: why, in a few words ("v1 bad source address"); "" otherwise. Static storage.
  const char* reason = "";
};

/// Returns the CRC-32C (Castagnoli) of n bytes at data, continuing from crc (0 to start).
inline std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0) noexcept {
  return detail::crc32c(static_cast<const unsigned char*>(data), n, crc);
}

/// parse_proxy_header reads the header at the start of the n bytes at data: v1 if they start with
/// 'P', v2 if with '\r', an error otherwise. It is strict, and says error at the first byte that no
/// header can have there, however few bytes have come. v1: single spaces; TCP4 addresses
/// dotted-decimal without leading zeros, TCP6 addresses RFC 4291 text; ports 0-65535 in decimal
/// without sign or leading zero; CRLF; at most 107 bytes; UNKNOWN may carry anything up to the
/// CRLF. v2: version 2, command LOCAL or PROXY, family UNSPEC or TCP over IPv4 or IPv6 or unix
/// stream, a length that holds the addresses (LOCAL's are ignored) and at most
/// opt.max_size bytes in all, TLVs that fit it, and a CRC32C TLV, if any, that matches. out is
/// written only when complete; its tlvs then view data.
inline proxy_parse_result parse_proxy_header(const void* data, std::size_t n, proxy_header& out,
                                             const proxy_header_options& opt = {}) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  detail::pp_fields f;
  const bool v1 = n > 0 && p[0] == 'P', v2 = n > 0 && p[0] == '\r';
  const detail::pp_verdict v = n == 0                ? detail::pp_more(detail::v1_min)
                               : v1 && opt.accept_v1 ? detail::parse_v1(p, n, f)
                               : v2 && opt.accept_v2 ? detail::parse_v2(p, n, opt.max_size, f)
                               : v1                  ? detail::pp_bad("v1 header not accepted")
                               : v2                  ? detail::pp_bad("v2 header not accepted")
                                                     : detail::pp_bad(detail::not_a_header);
  proxy_parse_result r;
  if (v.state == detail::pp_state::more) {
    r.need = v.n;
  } else if (v.state == detail::pp_state::bad) {
    r.status = proxy_status::error, r.error = errc::bad_proxy_header, r.reason = v.reason;
  } else {
    r.status = proxy_status::complete, r.size = v.n;
    out.version = f.version, out.local = f.local, out.src = f.src, out.dst = f.dst, out.size = v.n;
    out.tlvs = proxy_tlvs(f.tlv, f.tlv_len);
  }
  return r;
}

/// build_proxy_v1 writes the v1 line for a connection from src to dst into out[0..cap) and returns
/// its length (at most 107), or 0 if it does not fit. Two IPv4 ends give TCP4, IPv4-mapped IPv6
/// ones included; two IPv6 ends TCP6 (one of them may be mapped); anything else (IPv4 beside real
/// IPv6, another family, null) UNKNOWN. src and dst point to a whole sockaddr_in or sockaddr_in6
/// when their family says so.
inline std::size_t build_proxy_v1(void* out, std::size_t cap, const sockaddr* src, const sockaddr* dst) noexcept {
  return detail::put_v1(static_cast<char*>(out), cap, src, dst);
}

/// proxy_v2_extras is what a v2 header carries after its addresses.
struct proxy_v2_extras {
  /// count TLVs to write, in order.
  const proxy_tlv* tlvs = nullptr;
  std::size_t count = 0;
  /// Appends a PP2_TYPE_CRC32C TLV, computed over the whole header (then tlvs may hold none).
  bool crc32c = false;
};

/// build_proxy_v2 writes a v2 PROXY header for a connection from src to dst into out[0..cap) and
/// returns its length, or 0 if it does not fit or a TLV is invalid (null value with a length, a
/// CRC32C one beside extras.crc32c). The ends give INET or INET6 as in build_proxy_v1, two unix
/// ends UNIX (a pathname up to its NUL, an abstract name whole), anything else UNSPEC, which
/// carries no address. src and dst point to a whole sockaddr of their family.
inline std::size_t build_proxy_v2(void* out, std::size_t cap, const sockaddr* src, const sockaddr* dst,
                                  const proxy_v2_extras& extras = {}) noexcept {
  return detail::put_v2(static_cast<unsigned char*>(out), cap, detail::v2_proxy, detail::v2_block_of(src, dst),
                        extras.tlvs, extras.count, extras.crc32c);
}

/// build_proxy_v2_local writes a v2 LOCAL header (family UNSPEC, no address), as build_proxy_v2.
inline std::size_t build_proxy_v2_local(void* out, std::size_t cap, const proxy_v2_extras& extras = {}) noexcept {
  return detail::put_v2(static_cast<unsigned char*>(out), cap, detail::v2_local, detail::v2_block{}, extras.tlvs,
                        extras.count, extras.crc32c);
}

}  // namespace splice_lib

#endif  // SPLICE_PROXY_PROTOCOL_HPP_
