// SPDX-License-Identifier: MIT
#ifndef SPLICE_OPTIONS_HPP_
#define SPLICE_OPTIONS_HPP_

#include <chrono>
#include <cstddef>

namespace splice_lib {

class pipe_pool;
class rate_limit;
class mirror;
class drain;

/// allow_blocking lets a copier run over blocking fds, whose system calls then block: copy() does,
/// as it has nothing else to do meanwhile.
struct allow_blocking_t {};
inline constexpr allow_blocking_t allow_blocking{};

/// How a copy moves its bytes. copy(), copier and proxy() check the options before they touch an
/// fd: a zero buffer_size, max_splice or max_advance ends the copy with errc::invalid_options from
/// "options". The defaults and where each was measured: see detail/policy.hpp.
struct options {
  /// Moves bytes through a user-space buffer on every route (tests, benchmarks).
  bool userspace = false;
  /// Where pipes come from; nullptr means pipe_pool::shared().
  pipe_pool* pool = nullptr;
  /// The token bucket that bounds this copy's rate (rate_limit.hpp), shared or its own; nullptr:
  /// none. It must outlive the copy.
  rate_limit* rate = nullptr;
  /// The mirror that receives a copy of every byte this copy takes from src (mirror.hpp); nullptr:
  /// none. It must outlive the copy. A duplex takes its mirrors from proxy_options instead.
  splice_lib::mirror* mirror = nullptr;
  /// Size of the user-space buffer, allocated only when the user-space path runs.
  std::size_t buffer_size = std::size_t(64) << 10;
  /// Most bytes asked of one splice(2), sendfile(2) or copy_file_range(2) call.
  std::size_t max_splice = std::size_t(1) << 20;
  /// Once one advance() has delivered this many bytes it returns step::again, so that one busy
  /// stream cannot hold an event loop's thread (the last move may take it past the bound by up to
  /// max_splice or buffer_size). copy() and proxy() simply call again.
  std::size_t max_advance = std::size_t(1) << 20;
  /// A socket-to-socket copy starts on a pipe and moves to user space after a run of splices that
  /// each took less than small_splice bytes (or less than the pipe holds, if that is smaller): a
  /// slow stream, where a pipe does not pay for itself. It goes back onto a pipe after this many
  /// reads in a row that filled the buffer. 0 never leaves the pipe.
  unsigned splice_after = 2;
  /// The size below which a splice into the pipe counts as small; see splice_after.
  std::size_t small_splice = std::size_t(64) << 10;
  /// Splices out of unix stream sockets too. Off by default: the benchmark measured it no faster
  /// than read(2) (bench/results.md). Splicing into a unix socket is on, as it measured faster.
  bool splice_from_unix = false;
  /// The host ignores SIGPIPE (signal(SIGPIPE, SIG_IGN), as nginx, HAProxy and Go do), so a copy
  /// need not block it around each advance(). Checked once per copy: if SIGPIPE is not ignored
  /// after all, the copy blocks it as usual.
  bool sigpipe_ignored = false;
  /// The driver's waits are level-triggered (poll(2), as proxy() does), or it drives a duplex and
  /// reports marks (ready::a_mark, b_mark: POLLPRI, POLLRDHUP, POLLHUP, POLLERR through
  /// ready::of, as examples/epoll_proxy.cpp does). Then a
  /// read from a socket or pipe that returned less than asked is taken for "drained", and the copy
  /// waits for src without the read that would have said EAGAIN: two system calls per small
  /// message instead of three. Without it, the copier waits only after EAGAIN, which any
  /// edge-triggered driver can rely on. (A TCP read stops short at an urgent mark, or before an end
  /// of file that came with the last bytes, and no new edge comes for what is behind it: hence
  /// the marks.)
  bool short_read_drains = false;
  /// Counts what the copy does in the process's metrics (metrics.hpp): bytes each way, spliced or
  /// why not, waits for the rate limit, the error, and for a relay the connection. A few relaxed
  /// stores per advance() into the thread's own counters; README, "Metrics", has its cost.
  bool metrics = true;
};

/// How proxy(), duplex and async_proxy relay a connection.
struct proxy_options {
  /// How each direction copies.
  // cppcheck-suppress unusedStructMember
  options copy;
  /// The token bucket of the b -> a direction when it is not copy.rate's (nullptr: copy.rate bounds
  /// both directions together). A proxy that bounds each direction sets copy.rate for a -> b and
  /// this for b -> a. It must outlive the relay.
  rate_limit* rate_b_to_a = nullptr;
  /// When neither fd becomes ready for this long, the proxy ends with std::errc::timed_out from
  /// "idle". Negative: no timeout. Signals do not restart it.
  std::chrono::milliseconds idle_timeout{-1};
  /// Sets TCP_NODELAY on both fds (where they are TCP sockets), as HAProxy and nginx do: without
  /// it, a response that reaches the proxy in two pieces waits for Nagle's algorithm.
  bool nodelay = true;
  /// A graceful stop to honour (drain.hpp), shared by any number of proxies; nullptr: none. It must
  /// outlive them.
  const splice_lib::drain* drain = nullptr;
  /// The mirrors of the a -> b and b -> a directions (mirror.hpp); nullptr: none. copy.mirror is
  /// not used. They must outlive the relay.
  splice_lib::mirror* mirror_a_to_b = nullptr;
  splice_lib::mirror* mirror_b_to_a = nullptr;
};

}  // namespace splice_lib

#endif  // SPLICE_OPTIONS_HPP_
