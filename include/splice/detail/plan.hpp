// SPDX-License-Identifier: MIT
// What a copier learns of its two ends before the first byte moves, on every platform.
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

/// plan is what a copier knows of its ends, found once, before the first byte moves.
struct plan {
  route how = route::user;
  bool src_always_ready = false;  // a regular file or block device: never waited on (epoll refuses them)
  bool dst_always_ready = false;
  bool src_nonblocking = false;   // O_NONBLOCK
  bool dst_nonblocking = false;
  bool dst_socket = false;        // send(MSG_NOSIGNAL) works on dst
  bool src_tcp = false;           // splice from src stops at TCP's urgent mark
  bool src_pipe = false;          // route::direct: src is the caller's pipe (else dst is)
};

/// access_ok says whether an fd whose F_GETFL flags are `flags` may be read (src) or written (dst).
inline bool access_ok(int flags, bool src) noexcept {
  const int mode = flags & O_ACCMODE;
  return src ? mode != O_WRONLY : mode != O_RDONLY;
}

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_PLAN_HPP_
