// SPDX-License-Identifier: MIT
// Reading a PROXY protocol header off a socket, leaving every byte after it in the socket.
#ifndef SPLICE_PROXY_HEADER_READER_HPP_
#define SPLICE_PROXY_HEADER_READER_HPP_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

#include <sys/socket.h>

#include "detail/sys.hpp"
#include "error.hpp"
#include "poller.hpp"
#include "proxy_protocol.hpp"
#include "result.hpp"
#include "system_calls.hpp"

namespace splice_lib {

/// proxy_header_reader reads the PROXY header (v1 or v2, see parse_proxy_header) at the start of
/// a socket, in as many advance() calls as it takes, and never takes a byte past it: what follows
/// stays in the socket, to be spliced. It looks with recv(MSG_PEEK), then takes with recv exactly
/// the bytes it has seen that belong to the header, and keeps them: before the header's end is
/// known, every byte it has seen belongs to it (or the header is bad); after, the rest of it. So
/// when advance() says step::read the socket holds no byte the reader has seen, and becomes
/// readable only when new ones arrive: waiting is sound under level-triggered poll(2) as under
/// edge-triggered epoll, and a header that arrives a byte at a time costs one wakeup a byte. Every
/// call passes MSG_DONTWAIT, so fd may be blocking or not: advance() never blocks.
///
/// Errors, none worth retrying on the same connection: errc::bad_proxy_header from "proxy header"
/// when the bytes are no header or the peer closed before its end (reason() says which); recv's
/// errno from "recv"; std::errc::not_enough_memory from "buffer"; stop()'s own.
/// Memory: 256 bytes inside; a v2 header longer than that is read into one allocation of its
/// length, at most options::max_size. Sys is the system-call seam (system_calls.hpp); only recv is
/// called. Movable (a moved-from reader is done); not thread-safe.
template <class Sys = system_calls>
class proxy_header_reader {
 public:
  /// Prepares to read the header at the start of fd. Touches nothing.
  explicit proxy_header_reader(int fd, const proxy_header_options& opt = {}, Sys sys = {}) noexcept
      : fd_(fd), opt_(opt), sys_(std::move(sys)) {}
  proxy_header_reader(proxy_header_reader&& o) noexcept
      : fd_(o.fd_), opt_(o.opt_), sys_(std::move(o.sys_)), heap_(std::move(o.heap_)), heap_size_(o.heap_size_),
        have_(o.have_), error_(o.error_), op_(o.op_), reason_(o.reason_), done_(o.done_) {
    if (!heap_) std::memcpy(small_, o.small_, have_);
    if (done_ && !error_) parse_proxy_header(buf(), have_, header_, opt_);  // tlvs now view this buffer
    o.have_ = 0, o.done_ = true;
  }
  proxy_header_reader(const proxy_header_reader&) = delete;
  proxy_header_reader& operator=(const proxy_header_reader&) = delete;
  proxy_header_reader& operator=(proxy_header_reader&&) = delete;
  ~proxy_header_reader() = default;

  /// Returns the fd the reader waits on.
  int fd() const noexcept { return fd_; }
  /// Returns true once the read has ended, with the header or an error.
  bool done() const noexcept { return done_; }
  /// Returns the header; valid once done() without error. Its tlvs view this reader's bytes.
  const proxy_header& header() const noexcept { return header_; }
  /// Returns the error the read ended with, falsy on success.
  const std::error_code& error() const noexcept { return error_; }
  /// Returns the call or step that failed: "recv", "proxy header", "buffer", stop()'s; "" if none.
  const char* op() const noexcept { return op_; }
  /// Returns why the header was refused ("v1 bad source port"); "" for other errors.
  const char* reason() const noexcept { return reason_; }
  /// Returns the bytes taken from fd so far: header().size once done without error.
  std::size_t consumed() const noexcept { return have_; }

  /// Reads what has arrived; returns step::read to wait until fd is readable, or step::done.
  step advance() noexcept {
    while (!done_) {
      const std::size_t want = window();
      if (!reserve(have_ + want)) return fail(std::make_error_code(std::errc::not_enough_memory), "buffer", "");
      const ssize_t m = detail::retry([&] { return sys_.recv(fd_, buf() + have_, want, MSG_PEEK | MSG_DONTWAIT); });
      if (m < 0 && detail::would_block(errno)) return step::read;
      if (m < 0) return fail(detail::last_error(), "recv", "");
      if (m == 0) return closed();
      take(std::size_t(m));
    }
    return step::done;
  }

  /// Ends the read with ec from op (a caller's deadline, say).
  void stop(std::error_code ec, const char* op) noexcept {
    if (!done_) fail(ec, op, "");
  }

 private:
  static constexpr std::size_t small_size = 256;

  // take parses the bytes held and the m peeked after them, and takes from fd those that belong
  // to the header: all m while it is not complete, the rest of it when it is.
  void take(std::size_t m) noexcept {
    proxy_header h;
    const proxy_parse_result r = parse_proxy_header(buf(), have_ + m, h, opt_);
    if (r.status == proxy_status::error) {
      fail(r.error, "proxy header", r.reason);
      return;
    }
    const bool complete = r.status == proxy_status::complete;
    const std::size_t k = complete ? r.size - have_ : m;
    const ssize_t got = detail::retry([&] { return sys_.recv(fd_, buf() + have_, k, MSG_DONTWAIT); });
    if (got < 0 && detail::would_block(errno)) return;  // the next peek says so again
    if (got < 0) {
      fail(detail::last_error(), "recv", "");
      return;
    }
    if (got == 0) {
      closed();
      return;
    }
    have_ += std::min(std::size_t(got), k);
    if (complete && std::size_t(got) >= k) header_ = h, done_ = true;
  }

  // window returns how many bytes to peek: the rest of a v2 header whose length is in, else as
  // many as the longest v1 line leaves (enough to see a v2 header's length).
  std::size_t window() const noexcept {
    const unsigned char* b = buf();
    if (have_ >= detail::v2_fixed && b[0] == '\r') return detail::v2_fixed + detail::load16(b + 14) - have_;
    return detail::v1_max - have_;
  }

  // reserve makes room for n bytes, keeping those held. n never exceeds opt_.max_size (or 107):
  // the bytes held passed the parser, which checks the declared length against it.
  bool reserve(std::size_t n) noexcept {
    if (n <= (heap_ ? heap_size_ : small_size)) return true;
    std::unique_ptr<unsigned char[]> p(new (std::nothrow) unsigned char[n]);
    if (!p) return false;
    std::memcpy(p.get(), buf(), have_);
    heap_ = std::move(p), heap_size_ = n;
    return true;
  }

  unsigned char* buf() noexcept { return heap_ ? heap_.get() : small_; }
  const unsigned char* buf() const noexcept { return heap_ ? heap_.get() : small_; }

  step closed() noexcept {
    return fail(errc::bad_proxy_header, "proxy header",
                have_ ? "connection closed inside the header" : "connection closed before the header");
  }

  step fail(std::error_code ec, const char* op, const char* reason) noexcept {
    error_ = ec, op_ = op, reason_ = reason, done_ = true;
    return step::done;
  }

  int fd_;
  proxy_header_options opt_;
  Sys sys_;
  unsigned char small_[small_size] = {};
  std::unique_ptr<unsigned char[]> heap_;
  std::size_t heap_size_ = 0;
  std::size_t have_ = 0;  // bytes taken from fd_, all of the header, at the start of buf()
  proxy_header header_;
  std::error_code error_;
  const char* op_ = "";
  const char* reason_ = "";
  bool done_ = false;
};

/// read_proxy_header drives r until it is done, waiting on poller whenever it says step::read. A
/// failed wait ends it with the wait's error from "poll" (a deadline: std::errc::timed_out).
/// Returns r.error().
template <class Poller, class Sys, std::enable_if_t<is_poller_v<Poller>, int> = 0>
std::error_code read_proxy_header(proxy_header_reader<Sys>& r, Poller& poller) noexcept {
  while (r.advance() == step::read)
    if (const std::error_code ec = poller.wait_readable(r.fd())) r.stop(ec, "poll");
  return r.error();
}

/// read_proxy_header reads the header at the start of fd, waiting on poller. The reader returned
/// holds the header (its tlvs view the reader's bytes) or the error.
template <class Poller, class Sys = system_calls, std::enable_if_t<is_poller_v<Poller>, int> = 0>
proxy_header_reader<Sys> read_proxy_header(int fd, Poller& poller, const proxy_header_options& opt = {},
                                           Sys sys = {}) noexcept {
  proxy_header_reader<Sys> r(fd, opt, std::move(sys));
  read_proxy_header(r, poller);
  return r;
}

/// The time read_proxy_header(fd) gives a peer to send its whole header.
inline constexpr std::chrono::milliseconds proxy_header_timeout{1000};

/// The same, waiting with poll(2) until timeout has passed since the call, then ending with
/// std::errc::timed_out from "poll". A negative timeout means none.
inline proxy_header_reader<> read_proxy_header(int fd, std::chrono::milliseconds timeout = proxy_header_timeout,
                                               const proxy_header_options& opt = {}) noexcept {
  poll_poller poller(detail::deadline_after(timeout));
  return read_proxy_header(fd, poller, opt);
}

}  // namespace splice_lib

#endif  // SPLICE_PROXY_HEADER_READER_HPP_
