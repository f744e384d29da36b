// SPDX-License-Identifier: MIT
// The umbrella header: the whole public API, reached as splice::copy(...), splice::options, ...
#ifndef SPLICE_SPLICE_HPP_
#define SPLICE_SPLICE_HPP_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "async_fwd.hpp"
#include "copier.hpp"
#include "copy.hpp"
#include "drain.hpp"
#include "duplex.hpp"
#include "error.hpp"
#include "fd.hpp"
#include "metrics.hpp"
#include "mirror.hpp"
#include "options.hpp"
#include "pipe_pool.hpp"
#include "poller.hpp"
#include "proxy.hpp"
#include "proxy_header_reader.hpp"
#include "proxy_protocol.hpp"
#include "rate_limit.hpp"
#include "result.hpp"
#include "sigpipe.hpp"
#include "system_calls.hpp"
#if defined(__linux__)
#include "epoll_poller_linux.hpp"
#endif

/// The library version: major * 10000 + minor * 100 + patch.
#define SPLICE_VERSION 100

/// The public face of the library. glibc declares the function ::splice in <fcntl.h>, so a
/// namespace named splice cannot exist beside it; a class may share its name with a function (as
/// struct stat does with stat()), and a name followed by :: finds only the class. So splice::copy
/// and ::splice both work, with <fcntl.h> included before or after this header. The code itself
/// lives in namespace splice_lib; these are aliases of it.
struct splice {
  splice() = delete;

  using result = splice_lib::result;
  using options = splice_lib::options;
  using step = splice_lib::step;
  using poll_poller = splice_lib::poll_poller;
#if defined(__linux__)
  using epoll_poller = splice_lib::epoll_poller;
#endif
  using pipe_pool = splice_lib::pipe_pool;
  using sigpipe_scope = splice_lib::sigpipe_scope;
  using proxy_result = splice_lib::proxy_result;
  using proxy_options = splice_lib::proxy_options;
  using system_calls = splice_lib::system_calls;
  using posix_calls = splice_lib::posix_calls;
  using linux_calls = splice_lib::linux_calls;
  using unique_fd = splice_lib::unique_fd;
  using pipe = splice_lib::pipe;
  using pipe_lease = splice_lib::pipe_lease;
  using errc = splice_lib::errc;
  using proxy_header = splice_lib::proxy_header;
  using proxy_header_options = splice_lib::proxy_header_options;
  using proxy_parse_result = splice_lib::proxy_parse_result;
  using proxy_status = splice_lib::proxy_status;
  using proxy_tlv = splice_lib::proxy_tlv;
  using proxy_tlvs = splice_lib::proxy_tlvs;
  using proxy_tlv_type = splice_lib::proxy_tlv_type;
  using proxy_v2_extras = splice_lib::proxy_v2_extras;
  template <class Sys = system_calls>
  using proxy_header_reader = splice_lib::proxy_header_reader<Sys>;
  using ready = splice_lib::ready;
  using rate_limit = splice_lib::rate_limit;
  using mirror = splice_lib::mirror;
  using drain = splice_lib::drain;
  using metrics = splice_lib::metrics;
  template <class Sys = system_calls>
  using copier = splice_lib::copier<Sys>;
  template <class Sys = system_calls>
  using duplex = splice_lib::duplex<Sys>;
  /// Returns the category of the library's own errors (errc).
  static const std::error_category& category() noexcept { return splice_lib::category(); }
  static constexpr splice_lib::allow_blocking_t allow_blocking{};
  static constexpr splice_lib::one_way_t one_way{};

  static constexpr std::uint64_t no_limit = splice_lib::no_limit;
  static constexpr std::chrono::milliseconds proxy_header_timeout = splice_lib::proxy_header_timeout;
  /// True when P meets the poller requirements (see poller.hpp); the C++20 concept is
  /// splice_lib::poller, since a class cannot hold a concept.
  template <class P>
  static constexpr bool is_poller_v = splice_lib::is_poller_v<P>;

  /// Copies at most limit bytes from src to dst; see splice_lib::copy.
  static result copy(int dst, int src, std::uint64_t limit = no_limit) noexcept {
    return splice_lib::copy(dst, src, limit);
  }
  /// Copies at most limit bytes, waiting on poller.
  template <class Poller>
  static result copy(int dst, int src, std::uint64_t limit, Poller& poller, const options& opt = {}) noexcept {
    return splice_lib::copy(dst, src, limit, poller, opt);
  }
  /// Copies at most limit bytes, waiting on poller, with sys as the system-call seam.
  template <class Poller, class Sys>
  static result copy(int dst, int src, std::uint64_t limit, Poller& poller, const options& opt, Sys sys) noexcept {
    return splice_lib::copy(dst, src, limit, poller, opt, std::move(sys));
  }

  /// Starts copying src to dst on an asio or Boost.Asio stream; see <splice/asio.hpp>.
  template <class Dst, class Src, class... Args>
  static decltype(auto) async_copy(Dst& dst, Src& src, Args&&... args) {
    return splice_lib::async_ops<Src>::copy(dst, src, std::forward<Args>(args)...);
  }
  /// Starts relaying a and b both ways on asio or Boost.Asio streams; see <splice/asio.hpp>.
  template <class A, class B, class... Args>
  static decltype(auto) async_proxy(A& a, B& b, Args&&... args) {
    return splice_lib::async_ops<A>::proxy(a, b, std::forward<Args>(args)...);
  }

  /// Starts reading the PROXY header at the start of an asio or Boost.Asio stream socket, completing
  /// with (error_code, proxy_header_reader<>); see <splice/asio.hpp>.
  template <class Stream, class... Args>
  static decltype(auto) async_read_proxy_header(Stream& s, Args&&... args) {
    return splice_lib::async_ops<Stream>::read_proxy_header(s, std::forward<Args>(args)...);
  }

  /// Relays a and b both ways until both directions end; see splice_lib::proxy.
  static proxy_result proxy(int a, int b, const proxy_options& opt = {}) noexcept {
    return splice_lib::proxy(a, b, opt);
  }
  /// The same, with sys as the system-call seam.
  template <class Sys>
  static proxy_result proxy(int a, int b, const proxy_options& opt, Sys sys) noexcept {
    return splice_lib::proxy(a, b, opt, std::move(sys));
  }

  /// Parses the PROXY protocol header at the start of n bytes; see splice_lib::parse_proxy_header.
  static proxy_parse_result parse_proxy_header(const void* data, std::size_t n, proxy_header& out,
                                               const proxy_header_options& opt = {}) noexcept {
    return splice_lib::parse_proxy_header(data, n, out, opt);
  }
  /// Writes a v1 header for a connection from src to dst; see splice_lib::build_proxy_v1.
  static std::size_t build_proxy_v1(void* out, std::size_t cap, const sockaddr* src, const sockaddr* dst) noexcept {
    return splice_lib::build_proxy_v1(out, cap, src, dst);
  }
  /// Writes a v2 PROXY header; see splice_lib::build_proxy_v2.
  static std::size_t build_proxy_v2(void* out, std::size_t cap, const sockaddr* src, const sockaddr* dst,
                                    const proxy_v2_extras& extras = {}) noexcept {
    return splice_lib::build_proxy_v2(out, cap, src, dst, extras);
  }
  /// Writes a v2 LOCAL header; see splice_lib::build_proxy_v2_local.
  static std::size_t build_proxy_v2_local(void* out, std::size_t cap, const proxy_v2_extras& extras = {}) noexcept {
    return splice_lib::build_proxy_v2_local(out, cap, extras);
  }
  /// Returns the CRC-32C of n bytes, continuing from crc.
  static std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0) noexcept {
    return splice_lib::crc32c(data, n, crc);
  }
  /// Reads the PROXY header at the start of fd, waiting on poller; see splice_lib::read_proxy_header.
  template <class Poller, class Sys = system_calls, std::enable_if_t<is_poller_v<Poller>, int> = 0>
  static proxy_header_reader<Sys> read_proxy_header(int fd, Poller& poller, const proxy_header_options& opt = {},
                                                    Sys sys = {}) noexcept {
    return splice_lib::read_proxy_header(fd, poller, opt, std::move(sys));
  }
  /// The same, waiting with poll(2) for at most timeout.
  static proxy_header_reader<> read_proxy_header(int fd, std::chrono::milliseconds timeout = proxy_header_timeout,
                                                 const proxy_header_options& opt = {}) noexcept {
    return splice_lib::read_proxy_header(fd, timeout, opt);
  }
  /// Drives r until it is done, waiting on poller.
  template <class Poller, class Sys, std::enable_if_t<is_poller_v<Poller>, int> = 0>
  static std::error_code read_proxy_header(proxy_header_reader<Sys>& r, Poller& poller) noexcept {
    return splice_lib::read_proxy_header(r, poller);
  }
};

#endif  // SPLICE_SPLICE_HPP_
