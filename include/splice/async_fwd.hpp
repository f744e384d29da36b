// SPDX-License-Identifier: MIT
// The hook through which struct splice reaches the asio layer without including it.
#ifndef SPLICE_ASYNC_FWD_HPP_
#define SPLICE_ASYNC_FWD_HPP_

namespace splice_lib {

/// async_ops<Stream> holds splice::async_copy, splice::async_proxy and
/// splice::async_read_proxy_header for the streams of one framework. The core knows no framework:
/// <splice/asio.hpp> and <splice/boost_asio.hpp> define it for their stream types, and struct
/// splice finds it when a call is instantiated.
template <class Stream>
struct async_ops {
  static_assert(sizeof(Stream) == 0, "splice::async_copy, async_proxy and async_read_proxy_header need <splice/asio.hpp> or "
                                     "<splice/boost_asio.hpp>, and a stream of that framework");
};

}  // namespace splice_lib

#endif  // SPLICE_ASYNC_FWD_HPP_
