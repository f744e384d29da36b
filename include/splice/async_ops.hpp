// SPDX-License-Identifier: MIT
// splice::async_copy, splice::async_proxy and splice::async_read_proxy_header for the streams of one
// framework: the overloads, written once, over the engines of async_relay.hpp and
// async_proxy_header.hpp. Include <splice/asio.hpp> or <splice/boost_asio.hpp>.
#ifndef SPLICE_ASYNC_OPS_HPP_
#define SPLICE_ASYNC_OPS_HPP_

#include <chrono>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "async_fwd.hpp"
#include "async_proxy_header.hpp"
#include "async_relay.hpp"
#include "copier.hpp"
#include "options.hpp"
#include "proxy_header_reader.hpp"
#include "result.hpp"
#include "system_calls.hpp"

namespace splice_lib {

template <class Net, class Result, class Copier, class Sys>
struct initiate_relay {
  template <class Handler, class A, class B>
  void operator()(Handler&& handler, A* a, B* b, std::uint64_t limit, const proxy_options& opt, const Sys& sys) const {
    using op = relay_op<Net, Result, Copier, Sys, A, B, std::decay_t<Handler>>;
    using alloc = typename std::allocator_traits<decltype(Net::associated_allocator(handler))>::template rebind_alloc<op>;
    std::allocate_shared<op>(alloc(Net::associated_allocator(handler)), std::forward<Handler>(handler), *a, *b, limit,
                             opt, sys)
        ->start();
  }
};

/// async_relay starts a relay_op over a and b (a -> b only for Result = result). Copier is
/// copier<Sys> or, in tests, a type derived from it.
template <class Net, class Result, template <class> class Copier, class Sys, class A, class B, class Token>
decltype(auto) async_relay(A& a, B& b, std::uint64_t limit, const proxy_options& opt, Sys sys, Token&& token) {
  return Net::template initiate<void(typename Net::error_code, Result)>(
      initiate_relay<Net, Result, Copier<Sys>, Sys>{}, token, &a, &b, limit, opt, std::move(sys));
}

/// async_ops_for<Net> is what async_ops<Stream> is for every stream type of one framework: the
/// overloads of splice::async_copy, splice::async_proxy and splice::async_read_proxy_header,
/// written once.
template <class Net>
struct async_ops_for {
  using net = Net;

  template <class Dst, class Src, class Token>
  static decltype(auto) copy(Dst& dst, Src& src, Token&& token) {
    return copy(dst, src, no_limit, options{}, system_calls{}, std::forward<Token>(token));
  }
  template <class Dst, class Src, class Token>
  static decltype(auto) copy(Dst& dst, Src& src, std::uint64_t limit, Token&& token) {
    return copy(dst, src, limit, options{}, system_calls{}, std::forward<Token>(token));
  }
  template <class Dst, class Src, class Token>
  static decltype(auto) copy(Dst& dst, Src& src, std::uint64_t limit, const options& opt, Token&& token) {
    return copy(dst, src, limit, opt, system_calls{}, std::forward<Token>(token));
  }
  template <class Dst, class Src, class Sys, class Token>
  static decltype(auto) copy(Dst& dst, Src& src, std::uint64_t limit, const options& opt, Sys sys, Token&& token) {
    static_assert(std::is_same_v<typename async_ops<Dst>::net, Net>, "dst and src must belong to one framework");
    proxy_options p;
    p.copy = opt;
    return async_relay<Net, result, copier>(src, dst, limit, p, std::move(sys), std::forward<Token>(token));
  }

  template <class A, class B, class Token>
  static decltype(auto) proxy(A& a, B& b, Token&& token) {
    return proxy(a, b, proxy_options{}, system_calls{}, std::forward<Token>(token));
  }
  template <class A, class B, class Token>
  static decltype(auto) proxy(A& a, B& b, const proxy_options& opt, Token&& token) {
    return proxy(a, b, opt, system_calls{}, std::forward<Token>(token));
  }
  template <class A, class B, class Sys, class Token>
  static decltype(auto) proxy(A& a, B& b, const proxy_options& opt, Sys sys, Token&& token) {
    static_assert(std::is_same_v<typename async_ops<B>::net, Net>, "a and b must belong to one framework");
    return async_relay<Net, proxy_result, copier>(a, b, no_limit, opt, std::move(sys), std::forward<Token>(token));
  }

  /// read_proxy_header reads the PROXY header at the start of s within proxy_header_timeout.
  template <class Stream, class Token>
  static decltype(auto) read_proxy_header(Stream& s, Token&& token) {
    return read_proxy_header(s, proxy_header_timeout, proxy_header_options{}, system_calls{}, std::forward<Token>(token));
  }
  /// The same within timeout (negative: none).
  template <class Stream, class Token>
  static decltype(auto) read_proxy_header(Stream& s, std::chrono::milliseconds timeout, Token&& token) {
    return read_proxy_header(s, timeout, proxy_header_options{}, system_calls{}, std::forward<Token>(token));
  }
  /// The same, accepting the headers opt says.
  template <class Stream, class Token>
  static decltype(auto) read_proxy_header(Stream& s, std::chrono::milliseconds timeout, const proxy_header_options& opt,
                                          Token&& token) {
    return read_proxy_header(s, timeout, opt, system_calls{}, std::forward<Token>(token));
  }
  /// The same, with sys as the system-call seam (only recv is called).
  template <class Stream, class Sys, class Token>
  static decltype(auto) read_proxy_header(Stream& s, std::chrono::milliseconds timeout, const proxy_header_options& opt,
                                          Sys sys, Token&& token) {
    return async_read_header<Net>(s, timeout, opt, std::move(sys), std::forward<Token>(token));
  }
};

}  // namespace splice_lib

#endif  // SPLICE_ASYNC_OPS_HPP_
