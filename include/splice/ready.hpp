// SPDX-License-Identifier: MIT
#ifndef SPLICE_READY_HPP_
#define SPLICE_READY_HPP_

#include <poll.h>

namespace splice_lib {

/// Readiness on a duplex's two fds as bits: what it waits for, and what has come.
struct ready {
  static constexpr unsigned a_in = 1, a_out = 2, b_in = 4, b_out = 8, all = 15;
  /// The fds of the mirrors of a -> b and b -> a (duplex::mirror_fd), readable and writable.
  static constexpr unsigned ab_mirror_in = 16, ab_mirror_out = 32, ba_mirror_in = 64, ba_mirror_out = 128;
  /// A mark on a (or b) that a read stops short at with more to read and no new edge to come:
  /// urgent data (POLLPRI), the peer's end (POLLRDHUP, POLLHUP) or an error (POLLERR). A driver that
  /// sets options::short_read_drains with edge-triggered waits asks for POLLPRI and POLLRDHUP and
  /// passes the events through of(). Never part of what advance() asks.
  static constexpr unsigned a_mark = 256, b_mark = 512;
  /// Returns the bits for events that poll(2) or epoll(7) reported on a (or b): readable on data,
  /// end of file or an error, writable on room or an error, a mark as above (POLL* and EPOLL*
  /// values agree). Urgent data also makes the fd readable.
  static constexpr unsigned of(bool on_a, unsigned events) noexcept {
    const bool mark = events & (POLLPRI | POLLHUP | POLLERR | 0x2000 /* RDHUP */),
               in = mark || (events & POLLIN), out = events & (POLLOUT | POLLHUP | POLLERR);
    return on_a ? (in ? a_in : 0) | (out ? a_out : 0) | (mark ? a_mark : 0)
                : (in ? b_in : 0) | (out ? b_out : 0) | (mark ? b_mark : 0);
  }
  /// The same for events on the mirror fd of a -> b (or of b -> a).
  static constexpr unsigned of_mirror(bool a_to_b, unsigned events) noexcept {
    return (of(true, events) & (a_in | a_out)) << (a_to_b ? 4 : 6);
  }
};

}  // namespace splice_lib

#endif  // SPLICE_READY_HPP_
