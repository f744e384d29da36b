// SPDX-License-Identifier: MIT
// The ways a copier moves a chunk, each a function that takes what it needs and returns what
// happened (a `moved`), as Go's spliceDrain and splicePump do. None keeps state of its own.
#ifndef SPLICE_DETAIL_MOVES_HPP_
#define SPLICE_DETAIL_MOVES_HPP_

#include <algorithm>
#include <cerrno>
#include <cstddef>

#include <poll.h>
#include <sys/socket.h>

#include "buffer.hpp"
#include "plan.hpp"
#include "platform.hpp"
#include "sys.hpp"

namespace splice_lib::detail {

/// waits_on says what a move that said EAGAIN waits for; the values are those of splice_lib::step.
enum class waits_on : unsigned char { src, dst, either, nothing /* call again: a file end */ };

/// Values of moved::err that no call returned, so no errno: a write into dst that asked for bytes
/// moved none, and the user-space buffer could not be allocated (error.hpp's detail::error_of).
inline constexpr int wrote_nothing = -1, out_of_memory = -2;

/// moved is what one move did. n > 0: bytes moved; n == 0: src is at its end; n < 0: `op` failed
/// with `err`, errno or one of the values above (EAGAIN: it waits on `wait`). to_dst: the call
/// wrote into dst; raises: it raises SIGPIPE along with EPIPE; short_write: it raises, and wrote
/// fewer bytes than asked, which leaves open whether it raised SIGPIPE (see copier::advance).
/// kernel: a kernel path (splice, sendfile, copy_file_range) moved the bytes into dst;
/// src_stalled: src said 0 or EAGAIN, which at a TCP urgent mark means "read(2) on" (see drain);
/// pipe_ready: route::direct only, the pipe end was found ready (see splice_through); drained: a
/// read gave less than asked, so src had no more then (see options::short_read_drains).
struct moved {
  ssize_t n = -1;
  int err = 0;
  waits_on wait = waits_on::src;
  const char* op = "";
  bool to_dst = false, kernel = false, raises = false, short_write = false, src_stalled = false, pipe_ready = false,
       drained = false;

  bool blocked() const noexcept { return n < 0 && would_block(err); }
  moved failed(int e) const noexcept {
    moved m = *this;
    m.n = -1, m.err = e;
    return m;
  }
};

/// made describes a call that returned n; errno is read only when it failed.
inline moved made(ssize_t n, const char* op, waits_on wait) noexcept {
  moved m;
  m.n = n;
  m.op = op;
  m.wait = wait;
  if (n < 0) m.err = errno;
  return m;
}

/// into_dst describes a call that asked to write `asked` bytes into dst and returned n. A 0 is src's
/// end where the call reads a file (zero_ends), and otherwise a write that moved nothing.
inline moved into_dst(ssize_t n, std::size_t asked, const char* op, bool raises, waits_on wait,
                      bool zero_ends = false) noexcept {
  moved m = made(n == 0 && !zero_ends ? -1 : n, op, wait);
  if (n == 0 && !zero_ends) m.err = wrote_nothing;
  m.to_dst = true;
  m.raises = raises;
  m.short_write = raises && n > 0 && std::size_t(n) < asked;
  return m;
}

/// dst_wait is what a write into dst that said EAGAIN waits for: dst, unless it is a regular file,
/// which is always ready and never waited on.
inline waits_on dst_wait(const plan& p) noexcept { return p.dst_always_ready ? waits_on::nothing : waits_on::dst; }

/// read_in reads at most n bytes from src into the buffer b: the user-space route, and how a TCP
/// urgent mark is crossed (read(2) does, splice cannot). Invariant: nothing is held. The buffer
/// is allocated on first use; if it cannot be, out_of_memory. A read of a socket or pipe that gave
/// less than asked is `drained`.
template <class Sys>
moved read_in(Sys& sys, int src, buffer& b, std::size_t n, std::size_t size, const plan& p) noexcept {
  if (!b.reserve(size)) return made(-1, "buffer", waits_on::src).failed(out_of_memory);
  const std::size_t asked = std::min(n, size);
  moved m = made(retry([&] { return sys.read(src, b.room(), asked); }), "read",
                 p.src_always_ready ? waits_on::nothing : waits_on::src);
  if (m.n > 0) b.filled(std::size_t(m.n));
  m.drained = m.n > 0 && std::size_t(m.n) < asked && !p.src_always_ready;
  return m;
}

/// write_out writes the buffer's bytes into dst: send(MSG_NOSIGNAL) to a socket, which spares it
/// SIGPIPE, and write(2) to anything else. Invariant: the buffer holds bytes taken from src.
template <class Sys>
moved write_out(Sys& sys, int dst, buffer& b, const plan& p) noexcept {
  const ssize_t w = retry([&] {
    return p.dst_socket ? sys.send(dst, b.data(), b.size(), MSG_NOSIGNAL) : sys.write(dst, b.data(), b.size());
  });
  const moved m = into_dst(w, b.size(), p.dst_socket ? "send" : "write", !p.dst_socket, dst_wait(p));
  if (m.n > 0) b.consumed(std::size_t(m.n));
  return m;
}

/// drain splices at most n bytes from src into the pipe (route::relay). Invariant: the pipe is
/// empty, so EAGAIN means src has nothing, and 0 means src has ended, except at a TCP urgent mark,
/// where splice stops (0 or EAGAIN) with bytes still queued behind the mark: read_in crosses it.
/// Pipe is a pipe_lease (pipe_pool.hpp) or any type with its members.
template <class Sys, class Pipe>
moved drain(Sys& sys, int src, Pipe& pipe, std::size_t n) noexcept {
  moved m = made(splice_move(sys, src, pipe.write_end(), n), "splice", waits_on::src);
  if (m.n > 0) pipe.filled(std::size_t(m.n));
  m.src_stalled = m.n == 0 || m.blocked();
  return m;
}

/// pump splices the pipe's bytes into dst. Invariant: the pipe holds bytes, so EAGAIN means dst is
/// full, and it never reports end of file. It asks for exactly what the pipe holds, so that the
/// kernel sends the last batch without MSG_MORE (see splice_through).
template <class Sys, class Pipe>
moved pump(Sys& sys, Pipe& pipe, int dst, const plan& p) noexcept {
  moved m = into_dst(splice_move(sys, pipe.read_end(), dst, pipe.held()), pipe.held(), "splice", true, dst_wait(p));
  if (m.n > 0) pipe.emptied(std::size_t(m.n));
  m.kernel = true;
  return m;
}

/// splice_through splices at most n bytes from src straight into dst (route::direct); one of them
/// is the caller's pipe. Invariant: nothing is held. Into TCP it asks for no more than the pipe
/// holds (one FIONREAD): the kernel sends a pipe's buffers 16 at a time, and a batch that ends on
/// the 16th buffer while more was asked for goes out with MSG_MORE, which TCP holds back for 200 ms
/// when nothing follows.
///
/// EAGAIN means that src is empty or dst is full. The copier is the only reader of a src pipe and
/// the only writer of a dst pipe, so the pipe end's state decides: an empty src pipe or a full dst
/// pipe is the one to wait for, and only its other side can change that, with an edge. A pipe end
/// found ready means the other end said EAGAIN, unless the pipe changed between the splice and the
/// poll: then either. It stays ready until the copier moves a byte, so the next EAGAIN with no byte
/// moved since (was_ready) names the other end for sure. A failed poll ends the copy.
template <class Sys>
moved splice_through(Sys& sys, int src, int dst, std::size_t n, const plan& p, bool was_ready) noexcept {
  const std::size_t in_pipe = p.src_pipe && p.dst_tcp ? pipe_bytes(sys, src) : 0;
  const std::size_t asked = in_pipe > 0 ? std::min(in_pipe, n) : n;
  moved m = into_dst(splice_move(sys, src, dst, asked), asked, "splice", true, waits_on::either, true);
  m.kernel = true;
  m.src_stalled = m.n == 0;
  if (!m.blocked()) return m;
  if (p.src_always_ready || p.dst_always_ready) {  // a file never says EAGAIN
    m.wait = p.src_always_ready ? waits_on::dst : waits_on::src;
    return m;
  }
  const int ready = was_ready ? 1 : pipe_end_ready(sys, p.src_pipe ? src : dst, p.src_pipe ? POLLIN : POLLOUT);
  if (ready < 0) return made(-1, "poll", waits_on::either);
  const waits_on at_pipe = p.src_pipe ? waits_on::src : waits_on::dst, other = p.src_pipe ? waits_on::dst : waits_on::src;
  m.wait = ready == 0 ? at_pipe : was_ready ? other : waits_on::either;
  m.pipe_ready = ready > 0;
  m.src_stalled = m.pipe_ready && !p.src_pipe;  // dst's pipe has room: src may be at its mark
  return m;
}

/// send_through sends at most n bytes from the regular file src to the socket dst
/// (route::sendfile). 0 means src has ended (a file that shrank ends the copy at its new end);
/// EAGAIN means dst is full.
template <class Sys>
moved send_through(Sys& sys, int src, int dst, std::size_t n) noexcept {
  moved m = into_dst(send_file(sys, dst, src, n), n, "sendfile", true, waits_on::dst, true);
  m.kernel = true;
  return m;
}

/// copy_through copies at most n bytes from the regular file src into the regular file dst
/// (route::copy_range). Both are always ready: EAGAIN, which files do not say, means call again.
template <class Sys>
moved copy_through(Sys& sys, int src, int dst, std::size_t n) noexcept {
  moved m = made(copy_range(sys, src, dst, n), "copy_file_range", waits_on::nothing);
  m.to_dst = m.kernel = true;
  return m;
}

/// unload reads what the pipe holds back into the empty buffer, when dst refuses splice: the copy
/// goes on in user space without losing a byte. Returns whether the pipe is empty after it; if it
/// is not, the bytes left stay counted in it.
template <class Sys, class Pipe>
bool unload(Sys& sys, Pipe& pipe, buffer& b) noexcept {
  if (!b.reserve(pipe.held())) return false;
  std::size_t got = 0;
  while (pipe.held() > 0) {
    const ssize_t r = retry([&] { return sys.read(pipe.read_end(), b.room() + got, pipe.held()); });
    if (r <= 0) break;
    got += std::size_t(r);
    pipe.emptied(std::size_t(r));
  }
  b.filled(got);
  return pipe.held() == 0;
}

/// at_urgent_mark says whether a splice out of the TCP socket src stopped at the urgent mark: 1 yes,
/// 0 no, -1 if sockatmark failed, where read(2) is the safe next step (it crosses a mark, and
/// otherwise says what splice said). One call, made only when a splice out of TCP returned 0 or
/// EAGAIN. Leaves errno as it was.
template <class Sys>
int at_urgent_mark(Sys& sys, int src) noexcept {
  const int saved = errno;
  const int at = retry([&] { return sys.sockatmark(src); });
  errno = saved;
  return at < 0 ? -1 : at > 0;
}

}  // namespace splice_lib::detail

#endif  // SPLICE_DETAIL_MOVES_HPP_
