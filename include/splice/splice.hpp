// SPDX-License-Identifier: MIT
// The umbrella header: the whole public API, reached as splice::copy(...), splice::options, ...
#ifndef SPLICE_SPLICE_HPP_
#define SPLICE_SPLICE_HPP_

#include <cstdint>
#include <utility>

#include "async_fwd.hpp"
#include "copier.hpp"
#include "copy.hpp"
#include "duplex.hpp"
#include "error.hpp"
#include "fd.hpp"
#include "options.hpp"
#include "pipe_pool.hpp"
#include "poller.hpp"
#include "proxy.hpp"
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
  using ready = splice_lib::ready;
  template <class Sys = system_calls>
  using copier = splice_lib::copier<Sys>;
  template <class Sys = system_calls>
  using duplex = splice_lib::duplex<Sys>;
  /// Returns the category of the library's own errors (errc).
  static const std::error_category& category() noexcept { return splice_lib::category(); }
  static constexpr splice_lib::allow_blocking_t allow_blocking{};
  static constexpr splice_lib::one_way_t one_way{};

  static constexpr std::uint64_t no_limit = splice_lib::no_limit;
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

  /// Relays a and b both ways until both directions end; see splice_lib::proxy.
  static proxy_result proxy(int a, int b, const proxy_options& opt = {}) noexcept {
    return splice_lib::proxy(a, b, opt);
  }
  /// The same, with sys as the system-call seam.
  template <class Sys>
  static proxy_result proxy(int a, int b, const proxy_options& opt, Sys sys) noexcept {
    return splice_lib::proxy(a, b, opt, std::move(sys));
  }
};

#endif  // SPLICE_SPLICE_HPP_
