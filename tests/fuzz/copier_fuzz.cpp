// SPDX-License-Identifier: MIT
// libFuzzer target: one thread drives a splice::copier over real fds while the fuzzer's bytes play
// both peers, and every execution is checked against a model. Build and run: .ci/fuzz [SECONDS];
// the seeds come from tests/fuzz/make_seeds.py. COPIER_FUZZ_TRACE=1 prints every advance().
//
// Design. An execution starts no thread and never sleeps; it mostly makes no fd either. The ends
// (TCP pairs on 127.0.0.1 with large or small buffers, unix socketpairs, pipes of 64 KiB or one
// page, files on tmpfs and on disk) are made on first use and kept across executions, drained
// back to empty after each. An end whose peer has ended (FIN, close, reset) is made again on its
// next use: socketpair or pipe2, or a connect on loopback for TCP (measured: no slower per
// execution than reuse); so is a TCP pair that is not quiet (bytes unacknowledged, or a window its
// writer has not yet seen reopen). TCP pairs close with RST, so no TIME_WAIT piles up. TCP is set
// up so that the kernel's timers stay out of the way (see stock::tune); where the kernel still
// holds bytes back, the driver nudges it (execution::nudge) and, for TCP only, waits for it with a
// deadline. The copier's pipes come from a pool of the fuzzer's own, made for each execution:
// one-page pipes, 1 MiB pipes, none to give, or a byte budget that shrinks the pipes it makes.
//
// Input: a header picks src and dst, the options (every field, with zeros and ones among the
// values), the limit (0, small, around the buffer and pipe sizes, no_limit), SO_OOBINLINE, file
// offsets, O_APPEND, now and then a blocking end, and the faults: up to 8 seam calls by index, each
// given EINTR, EAGAIN, a short count, or a terminal error (ECONNRESET, EPIPE, ENOMEM, EINVAL,
// ENOSYS, EXDEV, EIO, ENOBUFS, EOPNOTSUPP, EPERM), and a rate of random EINTR, EAGAIN and short
// counts. Every call the copier makes goes through the seam. The rest is a script, one byte a
// step: advance(); advance() until it waits (under one sigpipe_scope if the header says so); write
// n bytes into src's peer (append to a src file); send one urgent byte (MSG_OOB) into a TCP src;
// end src (shutdown, or close of the pipe's writer); reset a TCP src; read n bytes from dst's
// peer; make dst's peer go away (close, after reading all or not, or reset); stop(). When the
// script runs out, the driver is an event loop with nothing more to send: it calls advance() again
// while the fd named is ready, ends src when the copier waits to read, drains dst when it waits to
// write; until done, within a budget of calls that the bytes given explain.
//
// Model. Stream position i carries pattern()[i] (below 0x80), or for an urgent byte 0x80 | i, so
// every byte says where it belongs. A read(2) loop on src delivers the stream, except that with
// SO_OOBINLINE off an urgent byte may be missing: Linux keeps only the latest urgent byte out of
// band; an earlier one becomes ordinary data, or is dropped if the reader stands on it when the
// next arrives, which depends on timing. So the model asks for every other byte exactly, in
// order; an earlier urgent byte present or absent; the latest absent (it is out of band whenever a
// reader reaches it); and with SO_OOBINLINE on, every urgent byte present. Checked after each
// execution:
// - dst got the stream from its start, in this sense; src still holds the stream up to its end;
//   the gap between the two holds exactly the bytes lost: result().unsent, plus those written into
//   a dst whose peer went away without reading them;
// - result().bytes == what dst's peer read (or what a dst file holds past its prefix) while the
//   peer lives; it does not grow once a pipe's or unix socket's reader is gone; bytes <= limit;
// - success means unsent == 0, and bytes == limit or src ended and has nothing left. An error is
//   one that was injected, EPIPE or ECONNRESET from a dst whose peer went away, ECONNRESET from a
//   reset src, or stop()'s own. Invalid options give errc::invalid_options from "options", a blocking socket
//   or pipe errc::blocking_fd from "fd", touching no byte; invalid options or a limit of 0 make no system
//   call at all. userspace never splices;
// - file offsets moved by exactly the bytes moved; the pool's in_use is 0 after done and its byte
//   counters grew by bytes (spliced ones iff result().spliced); after done, advance() says done and
//   calls nothing; no fd leaked (/proc/self/fd counted before and after); a SIGPIPE that reaches
//   the process aborts it (on_sigpipe).
// Checked after every advance():
// - never step::read for a file src, step::write for a file dst, step::either with a file;
//   step::again only after max_advance bytes (or an injected EAGAIN on a file); no call moves more
//   than max_advance plus one move; held() is 0 once done;
// - no spin: step::read leaves src not readable and step::write leaves dst not writable (checked
//   by poll at once for pipes and unix sockets, whose readiness only this thread changes); and
//   never three calls in a row that move nothing and name an fd poll finds ready (TCP readiness
//   also changes by the kernel's timers, between a call and the poll). A copier misled by a fault
//   (an EAGAIN or a poll's "nothing" that the kernel did not say) is exempt until bytes move.
//
// Each finding has a test in tests/fuzz_findings_linux_test.cpp.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "splice/splice.hpp"
#include "support.hpp"

namespace {

using splice_lib::step;

// ---- The bytes of a stream --------------------------------------------------------------------

/// The most bytes one execution gives src.
constexpr std::size_t max_stream = std::size_t(3) << 19;

/// pattern returns the bytes src is given: position i of a stream carries pattern()[i].
const char* pattern() {
  static const std::vector<char> p = [] {
    std::vector<char> v(max_stream);
    std::uint32_t x = 2463534242u;
    for (auto& c : v) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      c = char(x & 0x7f);
    }
    return v;
  }();
  return p.data();
}

/// urgent_value is the byte sent with MSG_OOB at position i: no ordinary byte has the high bit.
char urgent_value(std::uint64_t i) { return char(0x80 | (i & 0x7f)); }

// ---- The fuzzer's input -----------------------------------------------------------------------

/// script reads the fuzzer's bytes one decision at a time; zeros once they run out.
struct script {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t next() { return n ? (--n, *p++) : 0; }
  std::uint16_t next16() {
    const std::uint8_t low = next();  // in this order: the operands of | are unsequenced
    return std::uint16_t(low | next() << 8);
  }
};

// ---- Faults through the seam ------------------------------------------------------------------

enum fault : int { none, eintr, eagain, short_one, short_half, terminal };
constexpr int terminal_errnos[] = {ECONNRESET, EPIPE, ENOMEM, EINVAL, ENOSYS, EXDEV, EIO, ENOBUFS, EOPNOTSUPP, EPERM};
constexpr int fault_kinds = terminal + int(std::size(terminal_errnos));

/// faults is what one execution injects, and what the injections did.
struct faults {
  struct entry {
    std::uint16_t call;
    std::uint8_t kind;
  };
  entry at[8];
  int count = 0;
  std::uint32_t rng = 1;
  unsigned rate = 0;  // random EINTR, EAGAIN and short counts on rate/256 of the calls
  unsigned calls = 0;       // seam calls made so far
  unsigned errors = 0;      // terminal errors injected
  bool misled = false;      // a fault misled the copier about readiness since bytes last moved
  bool misled_now = false;  // ... during the current advance()
  bool eagain_now = false;  // an EAGAIN was injected during the current advance()
  int dst = -1;             // the copier's dst, and whether its peer has gone
  bool dst_gone = false;
  std::error_code injected[4];  // the first terminal errors injected

  int decide() {
    const unsigned c = calls++;
    for (int i = 0; i < count; ++i)
      if (at[i].call == c) return at[i].kind % fault_kinds;
    if (rate == 0) return none;
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    return (rng & 255) < rate ? 1 + int(rng >> 8) % 4 : none;
  }
  int error(int kind) {
    const int e = terminal_errnos[kind - terminal];
    if (errors < std::size(injected)) injected[errors] = std::error_code(e, std::system_category());
    ++errors;
    return e;
  }
  void mislead() { misled = misled_now = true; }
};

/// fuzzed_calls is the seam: every call the copier makes may meet a fault. One that moves bytes may
/// fail with EINTR, EAGAIN or a terminal error, or move fewer bytes; the others may fail with EINTR
/// or a terminal error, and poll may also answer that nothing is ready. A failed call is not made.
/// An EAGAIN, or a poll's "nothing", that the kernel did not say misleads the copier about
/// readiness: the checks of what it waits for pause until bytes move.
struct fuzzed_calls : splice_lib::system_calls {
  using base = splice_lib::system_calls;
  faults* f = nullptr;

  // fails_moving decides the fault of a call that moves bytes into fd out.
  bool fails_moving(std::size_t& n, int out = -1) {
    switch (const int k = f->decide()) {
      case none: return false;
      case eintr: return errno = EINTR, true;
      case eagain:
        // A socket or pipe whose peer has gone never says EAGAIN: it fails with EPIPE or
        // ECONNRESET, so EAGAIN there would tell the copier dst lives (see copier::sent).
        if (out == f->dst && f->dst_gone) return false;
        return f->eagain_now = true, f->mislead(), errno = EAGAIN, true;
      case short_one: return n = std::min<std::size_t>(n, 1), false;
      case short_half: return n = std::max<std::size_t>(1, n / 2), false;
      default: return errno = f->error(k), true;
    }
  }
  bool fails() {
    const int k = f->decide();
    if (k == eintr) return errno = EINTR, true;
    if (k >= terminal) return errno = f->error(k), true;
    return false;
  }
  ssize_t read(int fd, void* b, std::size_t n) { return fails_moving(n) ? -1 : base::read(fd, b, n); }
  ssize_t write(int fd, const void* b, std::size_t n) { return fails_moving(n, fd) ? -1 : base::write(fd, b, n); }
  ssize_t send(int fd, const void* b, std::size_t n, int fl) { return fails_moving(n, fd) ? -1 : base::send(fd, b, n, fl); }
  ssize_t splice(int i, int o, std::size_t n, unsigned fl) { return fails_moving(n, o) ? -1 : base::splice(i, o, n, fl); }
  ssize_t sendfile(int o, int i, std::size_t n) { return fails_moving(n, o) ? -1 : base::sendfile(o, i, n); }
  ssize_t copy_file_range(int i, int o, std::size_t n) { return fails_moving(n, o) ? -1 : base::copy_file_range(i, o, n); }
  int poll(pollfd* p, nfds_t n, int t) {
    switch (const int k = f->decide()) {
      case eintr: return errno = EINTR, -1;
      case eagain:  // "nothing is ready", which the kernel did not say
        f->mislead();
        for (nfds_t i = 0; i < n; ++i) p[i].revents = 0;
        return 0;
      default:
        if (k >= terminal) return errno = f->error(k), -1;
        return base::poll(p, n, t);
    }
  }
  int sockatmark(int fd) { return fails() ? -1 : base::sockatmark(fd); }
  int getsockopt(int fd, int l, int o, void* v, socklen_t* n) { return fails() ? -1 : base::getsockopt(fd, l, o, v, n); }
  int setsockopt(int fd, int l, int o, const void* v, socklen_t n) { return fails() ? -1 : base::setsockopt(fd, l, o, v, n); }
  int fstat(int fd, struct stat* st) { return fails() ? -1 : base::fstat(fd, st); }
  int fcntl(int fd, int cmd, int arg) { return fails() ? -1 : base::fcntl(fd, cmd, arg); }
  int pipe(int fds[2]) { return fails() ? -1 : base::pipe(fds); }
  int pipe2(int fds[2], int fl) { return fails() ? -1 : base::pipe2(fds, fl); }
  int shutdown(int fd, int how) { return fails() ? -1 : base::shutdown(fd, how); }
};

// ---- The ends, kept across executions ---------------------------------------------------------

enum kind : int { tcp, tcp_small, unix_big, unix_small, pipe_big, pipe_small, shm_file, disk_file, kind_count };
const char* const kind_names[] = {"tcp", "tcp-small", "unix", "unix-small", "pipe", "pipe-small", "shm-file", "disk-file"};
bool is_tcp(kind k) { return k == tcp || k == tcp_small; }
bool is_pipe(kind k) { return k == pipe_big || k == pipe_small; }
bool is_file(kind k) { return k == shm_file || k == disk_file; }

enum role : int { src_role, dst_role };

/// end is one side of a copy: mine is the copier's fd, peer the other end of the pair (none for a
/// file). For a pipe, mine is the read end for src and the write end for dst.
struct end {
  test::fd mine, peer;
  bool spoiled = false;  // the peer ended or went away: make it again before its next use
};

void set_int(int fd, int level, int name, int v) { ::setsockopt(fd, level, name, &v, sizeof v); }

int ioctl_int(int fd, unsigned long req) {
  int v = 0;
  return ::ioctl(fd, req, &v) == 0 ? v : -1;
}

/// tcp_state is what TCP_INFO says of a socket's sending side. glibc's struct tcp_info stops at
/// tcpi_total_retrans; the kernel's goes on (Linux 6.2 and later reach tcpi_snd_wnd).
struct tcp_state {
  bool known = false;
  std::uint32_t unacked = 0, notsent = 0, window = 0;  // segments; bytes; the peer's window
};
tcp_state state(int fd) {
  struct {
    tcp_info head;
    std::uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
    std::uint32_t segs_out, segs_in, notsent_bytes, min_rtt, data_segs_in, data_segs_out;
    std::uint64_t delivery_rate, busy_time, rwnd_limited, sndbuf_limited;
    std::uint32_t delivered, delivered_ce;
    std::uint64_t bytes_sent, bytes_retrans;
    std::uint32_t dsack_dups, reord_seen, rcv_ooopack, snd_wnd;
  } info{};
  static_assert(sizeof info.head == 104, "glibc's tcp_info ends at tcpi_total_retrans");
  socklen_t len = sizeof info;
  tcp_state s;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 || len < sizeof info) return s;
  s.known = true;
  s.unacked = info.head.tcpi_unacked, s.notsent = info.notsent_bytes, s.window = info.snd_wnd;
  return s;
}

/// close_hard closes a socket with RST, so that no TIME_WAIT is left behind.
void close_hard(test::fd& f) {
  if (!f) return;
  const linger l{1, 0};
  ::setsockopt(f.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  f.reset();
}

void set_flag(int fd, int flag, bool on) {
  const int fl = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, on ? fl | flag : fl & ~flag);
}

/// stock holds the ends across executions, one per role and kind, made on first use.
class stock {
 public:
  end& get(role r, kind k) {
    end& e = ends_[r][k];
    if (e.spoiled) drop(e, k);
    if (!e.mine) make(e, r, k);
    return e;
  }

  /// quiet says whether a TCP end can serve the next execution as if new: nothing queued or
  /// unacknowledged either way, and the writer sees the reader's whole window. A reader that
  /// drained a full buffer may not advertise the room it got back; the writer would learn of it
  /// from a window probe, 200 ms later.
  bool quiet(const end& e, role r, kind k) const {
    const int writer = r == src_role ? e.peer.get() : e.mine.get();
    const int reader = r == src_role ? e.mine.get() : e.peer.get();
    const tcp_state w = state(writer);
    return w.known && w.unacked == 0 && w.notsent == 0 && w.window >= window_[k == tcp_small] / 2 &&
           ioctl_int(reader, SIOCINQ) == 0 && ioctl_int(writer, SIOCINQ) == 0;
  }

  /// Returns the fds the stock holds open.
  int open() const {
    int n = bool(listeners_[0]) + bool(listeners_[1]);
    for (const auto& per_role : ends_)
      for (const end& e : per_role) n += bool(e.mine) + bool(e.peer);
    return n;
  }

  /// Closes an end's fds (a socket with RST).
  static void drop(end& e, kind k) {
    if (is_tcp(k)) close_hard(e.mine), close_hard(e.peer);
    e.mine.reset(), e.peer.reset();
    e.spoiled = false;
  }

 private:
  void make(end& e, role r, kind k) {
    switch (k) {
      case tcp:
      case tcp_small: {
        const int at = k == tcp ? 0 : 1;
        if (!listeners_[at]) listen(at, k);
        test::fd a(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        tune(a.get(), k);
        // libFuzzer's timer signal interrupts blocking calls: connect without blocking, and let
        // accept, which returns once the handshake is done, wait.
        const auto* to = reinterpret_cast<const sockaddr*>(&addr_[at]);
        const int c = ::connect(a.get(), to, sizeof addr_[at]);
        test::check(c == 0 || errno == EINPROGRESS, "connect");
        int fd;
        while ((fd = ::accept4(listeners_[at].get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0)
          test::check(errno == EINTR, "accept4");
        test::fd b(fd);  // it inherits the listener's settings
        if (window_[at] == 0) window_[at] = state(a.get()).window;
        e.mine = std::move(b), e.peer = std::move(a);
        break;
      }
      case unix_big:
      case unix_small: {
        int s[2];
        test::check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, s) == 0, "socketpair");
        e.mine.reset(s[0]), e.peer.reset(s[1]);
        if (k == unix_small)
          for (int fd : s) set_int(fd, SOL_SOCKET, SO_SNDBUF, 4096), set_int(fd, SOL_SOCKET, SO_RCVBUF, 4096);
        break;
      }
      case pipe_big:
      case pipe_small: {
        int p[2];
        test::check(::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0, "pipe2");
        if (k == pipe_small) ::fcntl(p[1], F_SETPIPE_SZ, 4096);
        e.mine.reset(r == src_role ? p[0] : p[1]);
        e.peer.reset(r == src_role ? p[1] : p[0]);
        break;
      }
      default: {
        char name[] = "/dev/shm/splice-fuzz-XXXXXX";
        char disk[] = "/tmp/splice-fuzz-XXXXXX";
        char* path = k == shm_file ? name : disk;
        e.mine.reset(::mkostemp(path, O_CLOEXEC));
        test::check(bool(e.mine), "mkostemp");
        ::unlink(path);
        break;
      }
    }
  }

  // tune sets a TCP socket up, before it connects or listens, so that the kernel's own timers play
  // no part: fixed buffers (no autotuning), known before the handshake so that the window scale
  // fits them; no Nagle; Reno, since BBR (the default here) paces segments out by a timer. Small
  // buffers take small segments too: a 1 KiB window scale and 64 KiB segments overrun a small
  // receive buffer, and the dropped segments come back by a 200 ms retransmission timer.
  static void tune(int fd, kind k) {
    ::setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, "reno", 4);
    set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    set_int(fd, SOL_SOCKET, SO_SNDBUF, k == tcp ? 256 << 10 : 4096);
    set_int(fd, SOL_SOCKET, SO_RCVBUF, k == tcp ? 256 << 10 : 16384);
    if (k == tcp_small) set_int(fd, IPPROTO_TCP, TCP_MAXSEG, 1000);
  }

  void listen(int at, kind k) {
    test::fd& l = listeners_[at];
    l.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    tune(l.get(), k);
    sockaddr_in& addr = addr_[at];
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    test::check(::bind(l.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0, "bind");
    test::check(::listen(l.get(), 8) == 0, "listen");
    test::check(::getsockname(l.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0, "getsockname");
  }

  end ends_[2][kind_count];
  test::fd listeners_[2];  // for tcp and tcp_small
  std::uint32_t window_[2] = {};  // the receive window a new pair advertises
  sockaddr_in addr_[2]{};
};

/// The copier's pipe pools, one made for each execution, so that none carries state from one to
/// the next (a pool that met an undersized pipe refuses pipes for a second): one-page pipes, 1 MiB
/// pipes, a pool with none to give, and one whose byte budget has room for a 256 KiB pipe only.
/// max_bytes is set, so that making a pool reads nothing from /proc.
constexpr int pools = 4;
splice_lib::pipe_pool::config pool_config(int i) {
  constexpr std::size_t mib = std::size_t(1) << 20;
  switch (i) {
    case 0: return {4096, 2, 8, 64 * mib, 4096};
    case 1: return {mib, 2, 8, 64 * mib, 65536};
    case 2: return {4096, 0, 0, 64 * mib, 4096};
    default: return {mib, 2, 8, 256 << 10, 65536};
  }
}

// ---- Readiness ----------------------------------------------------------------------------------

short revents(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, 0) > 0 ? p.revents : 0;
}
bool readable(int fd) { return revents(fd, POLLIN) & (POLLIN | POLLHUP | POLLERR); }
bool writable(int fd) { return revents(fd, POLLOUT) & (POLLOUT | POLLHUP | POLLERR); }

// ---- One execution ------------------------------------------------------------------------------

constexpr std::size_t sizes[16] = {1, 2, 3, 7, 64, 100, 1000, 4095, 4096, 4097, 16384, 65535, 65536, 65537, 262144, 1 << 20};
constexpr std::size_t buffer_sizes[8] = {65536, 0, 1, 2, 7, 4096, 4097, 1 << 20};
constexpr std::size_t splice_sizes[8] = {1 << 20, 0, 1, 3, 4096, 65536, 0x7ffff000, SIZE_MAX};
constexpr std::size_t advance_sizes[8] = {1 << 20, 0, 1, 2, 100, 4096, 65536, SIZE_MAX};
constexpr std::size_t small_splices[8] = {65536, 0, 1, 100, 4096, 4097, 1 << 20, SIZE_MAX};
constexpr std::uint64_t offsets[4] = {0, 1, 4096, 5000};

/// How long a TCP end may take to become ready through the kernel's own timers (delayed ACKs,
/// window probes) before a wait counts as a hang.
constexpr int tcp_grace_ms = 5000;

std::uint64_t now_ms() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return std::uint64_t(t.tv_sec) * 1000 + std::uint64_t(t.tv_nsec) / 1000000;
}

class execution {
 public:
  execution(stock& s, script& in) : stock_(s), in_(in) {
    decode();
    src_ = &stock_.get(src_role, src_kind_);
    dst_ = &stock_.get(dst_role, dst_kind_);
    prepare();
    sys_.f = &faults_;
    faults_.dst = dst_->mine.get();
  }

  void run() {
    splice_lib::copier<fuzzed_calls> cp(dst_->mine.get(), src_->mine.get(), limit_, opt_, sys_);
    cp_ = &cp;
    while (in_.n > 0 && ops_ < 4096) play(in_.next());
    finish();
    cp_ = nullptr;
    result_ = cp.result();
  }

  void check_and_restore() {
    collect_dst();
    collect_src();
    check();
    restore();
  }

 private:
  // decode reads the header: the ends, the options, the limit, the files and the faults.
  void decode() {
    const std::uint8_t k0 = in_.next(), k1 = in_.next(), flags = in_.next();
    src_kind_ = kind(k0 % kind_count);
    dst_kind_ = kind(k1 % kind_count);
    opt_.userspace = flags & 1;
    opt_.splice_from_unix = flags & 2;
    opt_.sigpipe_ignored = flags & 4;
    oobinline_ = flags & 8;
    outer_scope_ = flags & 16;
    append_ = (flags & 32) && is_file(dst_kind_);
    // A blocking socket or pipe, now and then: the copy must refuse it before touching a byte.
    if ((flags & 0xc0) == 0xc0 && (k0 & 0x80)) {
      if ((k1 & 0x80) ? !is_file(dst_kind_) : !is_file(src_kind_)) blocking_ = (k1 & 0x80) ? 2 : 1;
    }
    opt_.buffer_size = buffer_sizes[in_.next() % 8];
    opt_.max_splice = splice_sizes[in_.next() % 8];
    opt_.max_advance = advance_sizes[in_.next() % 8];
    const std::uint8_t b = in_.next();
    opt_.splice_after = b & 3;
    opt_.small_splice = small_splices[(b >> 2) & 7];
    pool_ = (b >> 5) % pools;
    opt_.pool = &pools_.emplace(pool_config(pool_));
    const std::uint8_t lc = in_.next();
    const std::uint16_t lv = in_.next16();
    const std::uint64_t near = lv % 3;  // -1, 0 or +1 around a size
    switch (lc % 8) {
      case 0: limit_ = splice_lib::no_limit; break;
      case 1: limit_ = 0; break;
      case 2: limit_ = lv % 256; break;
      case 3: limit_ = lv; break;
      case 4: limit_ = opt_.buffer_size + near - 1; break;
      case 5: limit_ = 4096 + near - 1; break;
      case 6: limit_ = 65536 + near - 1; break;
      default: limit_ = (1 << 20) + near - 1; break;
    }
    // Small moves make many calls per byte: fewer bytes keep an execution short.
    const std::size_t quantum = std::min({opt_.buffer_size, opt_.max_splice, opt_.max_advance});
    cap_ = quantum < 64 ? 4096 : quantum < 4096 ? 65536 : max_stream;
    const std::uint8_t fb = in_.next();
    src_size_ = std::min<std::uint64_t>((fb & 15) ? sizes[fb & 15] : 0, cap_);
    begin_ = is_file(src_kind_) ? std::min(offsets[(fb >> 4) & 3], src_size_) : 0;
    prefix_ = offsets[fb >> 6];
    faults_.rate = in_.next() & 63;
    faults_.rng = 1 + in_.next();
    faults_.count = in_.next() % 9;
    for (int i = 0; i < faults_.count; ++i) {
      faults_.at[i].call = in_.next16();
      faults_.at[i].kind = in_.next();
    }
  }

  // prepare gives the ends this execution's state: files at their sizes and offsets, sockets'
  // SO_OOBINLINE, a blocking end.
  void prepare() {
    if (is_file(src_kind_)) {
      const int fd = src_->mine.get();
      struct stat st {};
      ::fstat(fd, &st);
      // The file holds a prefix of the pattern: cut it, or write what it lacks.
      if (std::uint64_t(st.st_size) > src_size_) test::check(::ftruncate(fd, off_t(src_size_)) == 0, "ftruncate");
      for (std::uint64_t at = std::uint64_t(st.st_size); at < src_size_;) {
        const ssize_t n = ::pwrite(fd, pattern() + at, src_size_ - at, off_t(at));
        test::check(n > 0, "pwrite");
        at += std::uint64_t(n);
      }
      ::lseek(fd, off_t(begin_), SEEK_SET);
      end_ = src_size_;
    }
    if (is_file(dst_kind_)) {
      const int fd = dst_->mine.get();
      test::check(::ftruncate(fd, 0) == 0 && ::ftruncate(fd, off_t(prefix_)) == 0, "ftruncate");
      ::lseek(fd, off_t(prefix_), SEEK_SET);
      set_flag(fd, O_APPEND, append_);
    }
    if (is_tcp(src_kind_)) set_int(src_->mine.get(), SOL_SOCKET, SO_OOBINLINE, oobinline_);
    if (blocking_) set_flag((blocking_ == 1 ? src_ : dst_)->mine.get(), O_NONBLOCK, false);
  }

  // play performs one step of the script.
  void play(std::uint8_t op) {
    ++ops_;
    const unsigned p = op >> 4;
    switch (op & 15) {
      case 5: give(sizes[p]); break;
      case 6: give(p + 1); break;
      case 7: give_urgent(); break;
      case 8: take_dst(sizes[p]); break;
      case 9: take_dst(SIZE_MAX); break;
      case 10: end_src(); break;
      case 11: reset_src(); break;
      case 12: dst_away(p); break;
      case 13:
        if (p >= 12) {
          trace('S');
          cp_->stop(std::make_error_code(std::errc::timed_out), "deadline");
          stopped_ = true;
          break;
        }
        advance();
        break;
      case 14: until_wait(); break;
      default: advance(); break;
    }
  }

  // ---- The peers

  // give writes n more bytes of the stream into src's peer (or appends them to a src file), as many
  // as it takes without waiting.
  void give(std::size_t n) {
    n = std::min<std::size_t>(n, cap_ - end_);
    if (n == 0 || src_ended_) return;
    trace('w');
    ssize_t k;
    if (is_file(src_kind_)) k = ::pwrite(src_->mine.get(), pattern() + end_, n, off_t(end_));
    else if (is_pipe(src_kind_)) k = ::write(src_->peer.get(), pattern() + end_, n);
    else k = ::send(src_->peer.get(), pattern() + end_, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k > 0) end_ += std::uint64_t(k), changed();
  }

  // give_urgent sends one urgent byte into a TCP src; other kinds get one ordinary byte.
  void give_urgent() {
    if (!is_tcp(src_kind_)) return give(1);
    if (src_ended_ || end_ >= cap_) return;
    trace('u');
    const char u = urgent_value(end_);
    if (::send(src_->peer.get(), &u, 1, MSG_OOB | MSG_NOSIGNAL | MSG_DONTWAIT) == 1) urgent_.push_back(end_++), changed();
  }

  // end_src ends the stream: FIN from a socket peer, the write end of a pipe closed.
  void end_src() {
    if (src_ended_ || is_file(src_kind_)) return;
    trace('e');
    if (is_pipe(src_kind_)) src_->peer.reset();
    else ::shutdown(src_->peer.get(), SHUT_WR);
    src_ended_ = src_->spoiled = true;
    changed();
  }

  // reset_src resets a TCP src once src has acknowledged every byte its peer took (a byte still
  // queued or in flight would be lost without trace); otherwise, and for other kinds, it ends src.
  void reset_src() {
    if (!is_tcp(src_kind_) || src_ended_ || ioctl_int(src_->peer.get(), TIOCOUTQ) != 0) return end_src();
    trace('r');
    close_hard(src_->peer);
    src_ended_ = src_reset_ = src_->spoiled = true;
    changed();
  }

  // take_dst reads at most n bytes from dst's peer, without waiting. Returns the bytes read.
  std::size_t take_dst(std::size_t n) {
    if (is_file(dst_kind_) || dst_gone_) return 0;
    trace('d');
    std::size_t got = 0;
    char buf[1 << 16];
    while (got < n) {
      const ssize_t k = ::read(dst_->peer.get(), buf, std::min(sizeof buf, n - got));
      if (k <= 0) break;
      got_.append(buf, std::size_t(k));
      got += std::size_t(k);
    }
    if (got > 0) {
      if (is_tcp(dst_kind_)) set_int(dst_->peer.get(), IPPROTO_TCP, TCP_QUICKACK, 1);
      changed();
    }
    return got;
  }

  // dst_away makes dst's peer go away: how & 1 reads everything the copier wrote first; how & 2
  // resets a TCP peer (closing one with unread bytes resets it too).
  void dst_away(unsigned how) {
    if (is_file(dst_kind_) || dst_gone_) return;
    trace('x');
    if (how & 1) drain_dst(cp_->result().bytes);
    if (is_tcp(dst_kind_) && (how & 2)) close_hard(dst_->peer);
    dst_->peer.reset();
    dst_gone_ = dst_->spoiled = faults_.dst_gone = true;
    bytes_at_gone_ = cp_->result().bytes;
    changed();
  }

  // drain_dst reads dst's peer until it has read `bytes` in all (TCP may take a moment).
  void drain_dst(std::uint64_t bytes) {
    const std::uint64_t until = now_ms() + tcp_grace_ms;
    while (got_.size() < bytes) {
      if (take_dst(SIZE_MAX) > 0) continue;
      if (!is_tcp(dst_kind_) || now_ms() > until) break;
      nudge();
      pollfd p{dst_->peer.get(), POLLIN, 0};
      ::poll(&p, 1, 1);
    }
  }

  void changed() { ready_calls_ = 0; }

  // nudge has the TCP receivers send their delayed ACKs now, which would otherwise wait for a timer.
  void nudge() {
    if (is_tcp(src_kind_)) set_int(src_->mine.get(), IPPROTO_TCP, TCP_QUICKACK, 1);
    if (is_tcp(dst_kind_) && !dst_gone_) set_int(dst_->peer.get(), IPPROTO_TCP, TCP_QUICKACK, 1);
  }

  // ---- The copier

  // advance calls advance() once and checks what it says.
  step advance(splice_lib::sigpipe_scope* scope = nullptr) {
    const splice_lib::result before = cp_->result();
    const std::size_t held = cp_->held();
    const unsigned calls = faults_.calls;
    faults_.eagain_now = faults_.misled_now = false;
    trace('a');
    const step s = scope ? cp_->advance(*scope) : cp_->advance();
    ++advances_;
    const splice_lib::result& r = cp_->result();
    const std::uint64_t moved = r.bytes - before.bytes;
    const bool progress = moved > 0 || cp_->held() != held;
    if (progress && !faults_.misled_now) faults_.misled = false;

    if (done_) {
      if (s != step::done || faults_.calls != calls || r.bytes != before.bytes || r.error != before.error)
        violation("advance() after done did something");
      return s;
    }
    if (r.bytes > limit_) violation("bytes beyond the limit");
    if (s == step::read && is_file(src_kind_)) violation("step::read for a file src");
    if (s == step::write && is_file(dst_kind_)) violation("step::write for a file dst");
    if (s == step::either && (is_file(src_kind_) || is_file(dst_kind_))) violation("step::either with a file");
    if (s == step::again && moved < opt_.max_advance && !(faults_.eagain_now && (is_file(src_kind_) || is_file(dst_kind_))))
      violation("step::again before max_advance bytes");
    // max_advance is checked between moves, so one call may pass it by a move: a chunk or what was held.
    const std::size_t chunk = std::max({opt_.max_splice, opt_.buffer_size, std::size_t(1) << 20});
    if (moved > opt_.max_advance && moved - opt_.max_advance > chunk) violation("one advance() moved far past max_advance");
    static const bool tracing = std::getenv("COPIER_FUZZ_TRACE") != nullptr;
    if (tracing)
      std::fprintf(stderr, "advance %u: step %d moved %llu held %zu calls %u misled %d src %d dst %d\n", advances_, int(s),
                   (unsigned long long)moved, cp_->held(), faults_.calls - calls, faults_.misled, readable(src_->mine.get()),
                   writable(dst_->mine.get()));
    if (s == step::done) return on_done(), s;
    if (s == step::again || faults_.misled) return ready_calls_ = 0, s;

    // No spin: a wait names an fd that is not ready; for TCP, not three times in a row.
    const bool src_ready = s != step::write && readable(src_->mine.get());
    const bool dst_ready = s != step::read && writable(dst_->mine.get());
    if (s == step::read && src_ready && !is_tcp(src_kind_)) violation("step::read while src is readable");
    if (s == step::write && dst_ready && !is_tcp(dst_kind_)) violation("step::write while dst is writable");
    ready_calls_ = (src_ready || dst_ready) && !progress ? ready_calls_ + 1 : 0;
    if (ready_calls_ >= 3) violation("spins: three calls in a row moved nothing and named a ready fd");
    return s;
  }

  // until_wait calls advance() as an event loop does after a readiness event: until it waits.
  void until_wait() {
    splice_lib::sigpipe_scope scope(outer_scope_);
    for (int i = 0; i < 64; ++i) {
      const step s = advance(outer_scope_ ? &scope : nullptr);
      if (s != step::again) break;
    }
  }

  void on_done() {
    done_ = true;
    if (cp_->held() != 0) violation("held() after done");
    if (pools_->stats().in_use != 0) violation("pool in_use after done");
    if (is_file(src_kind_)) {
      struct stat st {};
      ::fstat(src_->mine.get(), &st);
      left_at_done_ = std::uint64_t(st.st_size) - std::uint64_t(::lseek(src_->mine.get(), 0, SEEK_CUR));
    }
    src_ended_at_done_ = src_ended_ || is_file(src_kind_);
  }

  // ready says whether the fd(s) that step s names are ready now.
  bool ready(step s) {
    return (s != step::write && readable(src_->mine.get())) || (s != step::read && writable(dst_->mine.get()));
  }

  // finish ends the copy as an event loop with nothing more to send does: it calls advance()
  // again while what it waits for is ready; otherwise it ends src or drains dst, whichever the
  // copier waits for; over TCP it waits a moment for the kernel first.
  void finish() {
    const std::uint64_t budget = 10000 + 8 * (end_ - begin_);
    for (std::uint64_t n = 0; !done_; ++n) {
      if (n > budget) violation("no end: more advance() calls than the bytes explain");
      const step s = advance();
      if (s == step::done || s == step::again) continue;
      if (ready(s)) continue;  // a level-triggered loop calls again at once
      bool acted = false;
      if (s != step::write && !src_ended_) end_src(), acted = true;
      if (s != step::read && take_dst(SIZE_MAX) > 0) acted = true;
      if (acted) continue;
      const bool over_tcp = (s != step::write && is_tcp(src_kind_)) || (s != step::read && is_tcp(dst_kind_));
      if (over_tcp && await(s)) continue;
      violation("hangs: waits for an fd that nothing will make ready");
    }
  }

  // await waits up to tcp_grace_ms for what step s names, draining dst meanwhile.
  bool await(step s) {
    const std::uint64_t until = now_ms() + tcp_grace_ms;
    while (now_ms() < until) {
      if (s != step::read) take_dst(SIZE_MAX);
      if (ready(s)) return true;
      pollfd p[2] = {{src_->mine.get(), POLLIN, 0}, {dst_->mine.get(), POLLOUT, 0}};
      if (s == step::read) p[1].fd = -1;
      if (s == step::write) p[0].fd = -1;
      nudge();
      ::poll(p, 2, 1);
    }
    return false;
  }

  // ---- After the copy

  // collect_dst reads what dst got: the rest of what the copier wrote, or the file past its prefix.
  void collect_dst() {
    if (is_file(dst_kind_)) {
      const int fd = dst_->mine.get();
      struct stat st {};
      ::fstat(fd, &st);
      got_.assign(std::size_t(std::max<off_t>(st.st_size - off_t(prefix_), 0)), '\0');
      if (!got_.empty() && ::pread(fd, &got_[0], got_.size(), off_t(prefix_)) != ssize_t(got_.size()))
        violation("pread dst");
      if (::lseek(fd, 0, SEEK_CUR) != off_t(prefix_ + result_.bytes)) violation("dst file offset != prefix + bytes");
      return;
    }
    if (dst_gone_) return;
    drain_dst(result_.bytes);
    take_dst(SIZE_MAX);  // anything past `bytes` is a violation, found by check()
  }

  // collect_src reads what src still holds, until its end, or until every byte its peer took has
  // arrived.
  void collect_src() {
    const int fd = src_->mine.get();
    if (blocking_ == 1) set_flag(fd, O_NONBLOCK, true);
    if (is_file(src_kind_)) {
      const off_t at = ::lseek(fd, 0, SEEK_CUR);
      if (at < off_t(begin_) || std::uint64_t(at) > end_) violation("src file offset outside the file");
      left_.assign(std::size_t(end_ - std::uint64_t(at)), '\0');
      if (!left_.empty() && ::pread(fd, &left_[0], left_.size(), at) != ssize_t(left_.size())) violation("pread src");
      return;
    }
    const std::uint64_t until = now_ms() + tcp_grace_ms;
    char buf[1 << 16];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        left_.append(buf, std::size_t(n));
        continue;
      }
      if (n == 0) break;  // the end: every byte came before it
      if (errno == ECONNRESET) continue;  // a reset src gives its bytes, the error, then the end
      if (errno != EAGAIN) violation("read src");
      if (!is_tcp(src_kind_)) break;  // a pipe or unix socket holds all it was given
      if (!src_ended_) {
        set_int(fd, IPPROTO_TCP, TCP_QUICKACK, 1);
        // The peer has nothing unacknowledged: every byte it took is here, and was read.
        if (ioctl_int(src_->peer.get(), TIOCOUTQ) == 0 && !readable(fd)) break;
      }
      if (now_ms() > until) violation("src's peer's bytes never arrived");
      nudge();
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 1);
    }
  }

  // check compares the execution with the model (see the header comment).
  void check() {
    const splice_lib::result& r = result_;
    const bool invalid = opt_.buffer_size == 0 || opt_.max_splice == 0 || opt_.max_advance == 0;
    if (r.bytes > limit_) violation("bytes beyond the limit");
    if (!dst_gone_ && got_.size() != r.bytes) violation("dst's peer got other than bytes");
    if (dst_gone_ && got_.size() > r.bytes) violation("dst's peer got more than bytes");
    if (dst_gone_ && !is_tcp(dst_kind_) && r.bytes != bytes_at_gone_) violation("bytes grew after dst's peer went away");
    std::uint64_t i = begin_, k = end_;
    if (!match_forward(got_, i)) violation("dst got other bytes than src's, or out of order");
    if (!match_backward(left_, k)) violation("src holds other bytes than it was given");
    if (i > k) violation("dst and src overlap: a byte delivered twice");
    // The gap [i, k) holds the bytes lost: unsent, and those written into a peer that went away.
    const std::uint64_t lost = r.bytes - got_.size() + r.unsent;
    std::uint64_t must = 0, may = 0;
    for (std::uint64_t u : urgent_)
      if (u >= i && u < k) must += must_appear(u), may += may_appear(u) && !must_appear(u);
    const auto first = std::lower_bound(urgent_.begin(), urgent_.end(), i);
    const std::uint64_t urgent_in_gap = std::uint64_t(std::lower_bound(first, urgent_.end(), k) - first);
    const std::uint64_t fixed = (k - i) - urgent_in_gap + must;
    if (lost < fixed || lost > fixed + may) violation("bytes + unsent + left != what src was given");
    if (r.spliced && opt_.userspace) violation("userspace spliced");
    if (r.spliced && r.bytes == 0) violation("spliced with no byte");

    if (!r.error) {
      if (r.unsent != 0) violation("success with unsent bytes");
      const bool all = src_ended_at_done_ && (is_file(src_kind_) ? left_at_done_ == 0 : left_.empty());
      if (r.bytes != limit_ && !all) violation("success before the limit and the end of src");
    } else {
      const std::error_code e = r.error;
      const bool peer_gone = dst_gone_ && (e == std::errc::broken_pipe || e == std::errc::connection_reset);
      const bool src_gone = src_reset_ && e == std::errc::connection_reset;
      const bool timed_out = stopped_ && e == std::errc::timed_out;
      const bool injected = std::find(std::begin(faults_.injected), std::end(faults_.injected), e) != std::end(faults_.injected) ||
                            faults_.errors > std::size(faults_.injected);
      const bool refused = r.bytes == 0 && ((invalid && e == splice::errc::invalid_options && std::strcmp(r.op, "options") == 0) ||
                                            (blocking_ && e == splice::errc::blocking_fd && std::strcmp(r.op, "fd") == 0));
      if (!peer_gone && !src_gone && !timed_out && !injected && !refused) violation("an error nothing explains");
    }
    const bool stopped_first = stopped_ && r.error == std::errc::timed_out;
    if (invalid && !stopped_first && (r.error != splice::errc::invalid_options || std::strcmp(r.op, "options") != 0 || faults_.calls != 0))
      violation("invalid options not refused before any call");
    if (!invalid && limit_ == 0 && ((r.error && !stopped_first) || faults_.calls != 0)) violation("a limit of 0 made a call");
    if (!invalid && limit_ != 0 && blocking_ && faults_.errors == 0 && !stopped_first &&
        (r.error != splice::errc::blocking_fd || std::strcmp(r.op, "fd") != 0))
      violation("a blocking socket or pipe not refused");
    if ((invalid || blocking_) && r.bytes != 0) violation("a refused copy moved bytes");

    const auto after = pools_->stats();
    if (after.in_use != 0) violation("pool in_use after the copy");
    const std::uint64_t spliced = after.spliced_bytes;
    if (spliced + after.copied_bytes != r.bytes) violation("the pool's byte counters");
    if ((spliced > 0) != r.spliced) violation("the pool's spliced bytes disagree with result().spliced");
  }

  bool must_appear(std::uint64_t) const { return oobinline_; }
  bool may_appear(std::uint64_t u) const { return oobinline_ || u != urgent_.back(); }

  // match_forward matches buf against the stream from position pos, each urgent byte present or
  // absent as the model allows. On success pos is just past the last byte matched.
  bool match_forward(const std::string& buf, std::uint64_t& pos) const {
    std::size_t j = 0;
    auto u = std::lower_bound(urgent_.begin(), urgent_.end(), pos);
    while (j < buf.size()) {
      const std::uint64_t stop = u != urgent_.end() ? *u : end_;
      if (pos < stop) {
        const std::size_t n = std::size_t(std::min<std::uint64_t>(stop - pos, buf.size() - j));
        if (std::memcmp(buf.data() + j, pattern() + pos, n) != 0) return false;
        j += n, pos += n;
        continue;
      }
      if (u == urgent_.end()) return false;  // more bytes than src was given
      const bool present = buf[j] == urgent_value(pos);
      if (present ? !may_appear(pos) : must_appear(pos)) return false;
      j += present, ++pos, ++u;
    }
    return true;
  }

  // match_backward matches buf against the stream ending at position pos, the same way. On
  // success pos is the first byte matched.
  bool match_backward(const std::string& buf, std::uint64_t& pos) const {
    std::size_t j = buf.size();
    auto u = std::lower_bound(urgent_.begin(), urgent_.end(), pos);
    while (j > 0) {
      const std::uint64_t low = u != urgent_.begin() ? *(u - 1) + 1 : begin_;
      if (pos > low) {
        const std::size_t n = std::size_t(std::min<std::uint64_t>(pos - low, j));
        if (std::memcmp(buf.data() + j - n, pattern() + pos - n, n) != 0) return false;
        j -= n, pos -= n;
        continue;
      }
      if (u == urgent_.begin()) return false;  // more bytes than src was given
      --u, --pos;
      const bool present = buf[j - 1] == urgent_value(pos);
      if (present ? !may_appear(pos) : must_appear(pos)) return false;
      j -= present;
    }
    return true;
  }

  // restore leaves the ends as the next execution expects them: empty, non-blocking; an end
  // whose peer ended or went away is closed, to be made again on its next use.
  void restore() {
    if (blocking_ == 2) set_flag(dst_->mine.get(), O_NONBLOCK, true);
    if (is_tcp(src_kind_) && !src_->spoiled && !stock_.quiet(*src_, src_role, src_kind_)) src_->spoiled = true;
    if (is_tcp(dst_kind_) && !dst_->spoiled && !stock_.quiet(*dst_, dst_role, dst_kind_)) dst_->spoiled = true;
    if (!is_file(dst_kind_) && !dst_->spoiled && readable(dst_->peer.get())) dst_->spoiled = true;
    for (auto [e, k] : {std::pair{src_, src_kind_}, std::pair{dst_, dst_kind_}})
      if (e->spoiled) stock::drop(*e, k);
  }

  [[noreturn]] void violation(const char* what) const {
    const splice_lib::result& r = cp_ ? cp_->result() : result_;
    std::fprintf(stderr,
                 "\ncopier_fuzz: %s\n  src %s, dst %s, limit %llu, userspace %d, buffer_size %zu, max_splice %zu, "
                 "max_advance %zu, splice_after %u, small_splice %zu, splice_from_unix %d, pool %d, oobinline %d, "
                 "blocking %d, append %d\n  given [%llu, %llu) with %zu urgent; dst got %zu, src left %zu; result: "
                 "bytes %llu unsent %llu error '%s' op '%s' spliced %d; faults: %u calls, %u errors, rate %u\n"
                 "  script: %s\n",
                 what, kind_names[src_kind_], kind_names[dst_kind_], (unsigned long long)limit_, opt_.userspace,
                 opt_.buffer_size, opt_.max_splice, opt_.max_advance, opt_.splice_after, opt_.small_splice,
                 opt_.splice_from_unix, pool_, oobinline_, blocking_, append_, (unsigned long long)begin_,
                 (unsigned long long)end_, urgent_.size(), got_.size(), left_.size(), (unsigned long long)r.bytes,
                 (unsigned long long)r.unsent, r.error.message().c_str(), r.op, r.spliced, faults_.calls, faults_.errors,
                 faults_.rate, trace_.c_str());
    std::abort();
  }

  void trace(char c) {
    if (trace_.size() < 400) trace_ += c;
  }

  stock& stock_;
  script& in_;
  kind src_kind_ = tcp, dst_kind_ = tcp;
  end* src_ = nullptr;
  end* dst_ = nullptr;
  splice_lib::options opt_;
  std::uint64_t limit_ = 0;
  bool oobinline_ = false, outer_scope_ = false, append_ = false;
  int blocking_ = 0;  // 1: src, 2: dst
  int pool_ = 0;
  std::size_t cap_ = 0;
  std::uint64_t src_size_ = 0, prefix_ = 0;
  faults faults_;
  fuzzed_calls sys_;
  std::optional<splice_lib::pipe_pool> pools_;  // the copier's (see pool_config)
  splice_lib::copier<fuzzed_calls>* cp_ = nullptr;
  splice_lib::result result_;

  // The stream: positions [begin_, end_) were given to src; urgent_ lists the urgent ones.
  std::uint64_t begin_ = 0, end_ = 0;
  std::vector<std::uint64_t> urgent_;
  std::string got_, left_;  // what dst's peer read; what src still held after the copy
  bool src_ended_ = false, src_reset_ = false, dst_gone_ = false, stopped_ = false, done_ = false;
  bool src_ended_at_done_ = false;
  std::uint64_t left_at_done_ = 0, bytes_at_gone_ = 0;
  unsigned ops_ = 0, advances_ = 0, ready_calls_ = 0;
  std::string trace_;
};

}  // namespace

/// A SIGPIPE that reaches the process aborts it, as the default disposition would kill it, but
/// with a report and the input saved. The disposition is not SIG_IGN, so the copier must block
/// SIGPIPE as it does under the default one (sigpipe_scope::ignored_by_host() says false).
void on_sigpipe(int) {
  static const char msg[] = "\ncopier_fuzz: SIGPIPE reached the process\n";
  (void)!::write(2, msg, sizeof msg - 1);
  std::abort();
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  struct sigaction sa {};
  sa.sa_handler = on_sigpipe;
  ::sigaction(SIGPIPE, &sa, nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static stock ends;
  // libFuzzer itself may open fds between executions (its symbolizer's pipes): count ours only.
  const int others = test::open_fds() - ends.open();
  {
    script in{data, size};
    execution x(ends, in);
    x.run();
    x.check_and_restore();
  }  // the execution's pipe pool closes its idle pipes
  if (test::open_fds() - ends.open() != others) {
    std::fprintf(stderr, "copier_fuzz: fd leak: %d open, expected %d\n", test::open_fds(), others + ends.open());
    std::abort();
  }
  return 0;
}
