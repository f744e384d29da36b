// SPDX-License-Identifier: MIT
// What a copier learns of its two ends before the first byte moves, and the route that follows
// from it, on every platform.
#ifndef SPLICE_DETAIL_PLAN_HPP_
#define SPLICE_DETAIL_PLAN_HPP_

#include <fcntl.h>

namespace splice_lib::detail {

/// route is how a copier moves a chunk from src to dst.
enum class route {
  user,        // read(2) into a buffer, then send(2) or write(2) out of it
  relay,       // src -> a pooled pipe -> dst: two splices per chunk (a socket into a socket or file)
  direct,      // one end is the caller's pipe: one splice per chunk, no pipe of ours
  sendfile,    // a regular file into a socket: sendfile(2)
  copy_range,  // a regular file into another: copy_file_range(2)
};

enum class end_kind { tcp, unix_stream, pipe, file, other };

/// end is what inspect() (splice_linux.hpp, splice_portable.hpp) learns of one fd.
struct end {
  end_kind kind = end_kind::other;
  int flags = O_RDWR;  // F_GETFL
  bool socket = false, always_ready = false, nonblocking = false, append = false;

  bool readable() const noexcept { return (flags & O_ACCMODE) != O_WRONLY; }
  bool writable() const noexcept { return (flags & O_ACCMODE) != O_RDONLY; }
  /// A system call on it may block: a socket or pipe without O_NONBLOCK (a file is always ready).
  bool blocks() const noexcept { return !always_ready && !nonblocking; }
  /// Splice moves bytes out of it: TCP, a pipe, a regular file; a unix socket only when asked.
  bool splices_out(bool from_unix) const noexcept {
    return kind == end_kind::tcp || kind == end_kind::pipe || kind == end_kind::file ||
           (kind == end_kind::unix_stream && from_unix);
  }
  /// Splice moves bytes into it: a socket, a pipe, a regular file (not one opened O_APPEND, which
  /// splice refuses with EINVAL and copy_file_range with EBADF).
  bool splices_in() const noexcept { return kind != end_kind::other && !append; }
};

/// plan is what a copier knows of its ends, found once, before the first byte moves.
struct plan {
  route how = route::user;
  bool src_always_ready = false;  // a regular file or block device: never waited on (epoll refuses them)
  bool dst_always_ready = false;
  bool src_nonblocking = false;   // O_NONBLOCK
  bool dst_nonblocking = false;
  bool dst_socket = false;        // send(MSG_NOSIGNAL) works on dst
  bool dst_tcp = false;           // a splice into dst that asks for more than it gives may be held back
  bool src_tcp = false;           // splice from src stops at TCP's urgent mark
  bool src_pipe = false;          // route::direct: src is the caller's pipe (else dst is)
};

/// plan_for picks the route for dst <- src, where the kernel can splice at all (can_splice):
/// - a regular file into a socket: sendfile; into another regular file: copy_file_range;
/// - a pipe end paired with anything spliceable: one splice per chunk;
/// - a socket into a socket or a regular file: through a pooled pipe (relay);
/// - everything else, and any dst opened O_APPEND: user space.
/// "Socket" means TCP or a unix stream socket, except that a unix socket is spliced out of only
/// with from_unix: the benchmark measured it no faster than read(2), as Go found. With
/// through_pipe (a mirror tees the pipe), every spliceable pair takes the relay.
inline plan plan_for(const end& s, const end& d, bool from_unix, bool can_splice, bool through_pipe = false) noexcept {
  plan p;
  p.src_always_ready = s.always_ready;
  p.dst_always_ready = d.always_ready;
  p.src_nonblocking = s.nonblocking;
  p.dst_nonblocking = d.nonblocking;
  p.dst_socket = d.socket;
  p.dst_tcp = d.kind == end_kind::tcp;
  p.src_tcp = s.kind == end_kind::tcp;
  p.src_pipe = s.kind == end_kind::pipe;
  if (!can_splice || !s.splices_out(from_unix) || !d.splices_in()) return p;
  const bool from_file = s.kind == end_kind::file, to_file = d.kind == end_kind::file;
  const bool from_socket = !from_file && s.kind != end_kind::pipe;
  const bool to_socket = d.socket;
  if (through_pipe || (from_socket && d.kind != end_kind::pipe)) p.how = route::relay;
  else if (from_file && to_file) p.how = route::copy_range;
  else if (from_file && to_socket) p.how = route::sendfile;
  else p.how = route::direct;  // one end is a pipe
  return p;
}

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_PLAN_HPP_
