// SPDX-License-Identifier: MIT
// loadgen: the load generator of the proxy benchmarks (bench/proxy_bench.py), and the server that
// sits behind the proxy under test. Both are epoll loops that do as little as they can, so that a
// proxy capped at a fifth of a core is the bottleneck, not them.
//
//   loadgen serve [THREADS [ADDR]]
//     Listens on ADDR (an IPv4 address, default 127.0.0.1; the netns part gives the server
//     namespace's) and prints "listening on ADDR:PORT". The first byte of every
//     connection says what the connection gets:
//       's'  sink: everything after the tag is discarded unread (recv with MSG_TRUNC: the kernel
//            frees the data without copying it out). At end of file the sink answers with the count
//            of bytes it received after the tag (8 bytes, little-endian) and closes.
//       'e'  echo: every byte after the tag is sent back; closes at end of file.
//     THREADS loops (default 2) each accept on their own SO_REUSEPORT listener.
//
//   loadgen spend-pipes
//     Makes pipes of 1 MiB until the kernel refuses (run as an unprivileged user, this spends the
//     user's pipe budget), prints "holding N pipes, B bytes", and holds them until stdin closes.
//
//   loadgen client HOST:PORT SECONDS WORKLOAD...
//     Runs every workload at once, each in its own thread, over the same SECONDS, and prints one
//     JSON line. Exits 1 when a connection failed or lost bytes.
//       stream=P,N  P connections to the sink (driven by two threads when P >= 2), each making
//                   N-byte writes for SECONDS as fast as the proxy takes them (Nagle left on, as a
//                   bulk sender has it). Then each half-closes
//                   and waits for the sink's count, which must equal what it wrote. MB/s is bytes
//                   received by the sink over the time from the first write to the last count.
//       conns=K,N   K connections at a time, each: connect, send N bytes to the sink, half-close,
//                   read the 8-byte count (must be N), read end of file, close. Connections/s counts
//                   those that ended within SECONDS; the ones still open then get 5 s to finish.
//       rr=C,N      C connections to the echo server (TCP_NODELAY), each sending an N-byte request
//                   and waiting for its echo before the next. Requests/s and latency percentiles.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using clock_type = std::chrono::steady_clock;

double since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

int ms_until(clock_type::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - clock_type::now()).count();
  return ms < 0 ? 0 : int(ms) + 1;
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

void set_nodelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void watch(int ep, int fd, std::uint32_t events, std::uint64_t tag, int op = EPOLL_CTL_ADD) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  epoll_ctl(ep, op, fd, &ev);
}

// connect_blocking connects a blocking socket, or returns -1.
int connect_blocking(const sockaddr_in& to) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

// send_all sends on a blocking socket; false on error.
bool send_all(int fd, const void* p, std::size_t n) {
  for (std::size_t off = 0; off < n;) {
    const ssize_t k = send(fd, static_cast<const char*>(p) + off, n - off, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    off += std::size_t(k);
  }
  return true;
}

// ---- server ------------------------------------------------------------------------------------

// The sink discards into this buffer's address range; with MSG_TRUNC the kernel never writes it.
char discard[1 << 20];

struct server_conn {
  explicit server_conn(int f) : fd(f) {}
  int fd;
  char mode = 0;       // 0 until the tag byte has arrived
  std::uint64_t count = 0;
  std::string backlog; // echo bytes the socket did not take yet; no reading while non-empty
};

// serve_conn handles readiness on c; returns false once c is closed (and deleted).
bool serve_conn(int ep, server_conn* c, std::uint32_t events) {
  const auto finish = [&] {
    close(c->fd);
    delete c;
    return false;
  };
  if (c->mode == 0) {
    char tag;
    const ssize_t n = recv(c->fd, &tag, 1, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (n <= 0 || (tag != 's' && tag != 'e')) return finish();
    c->mode = tag;
  }
  if (c->mode == 's') {
    for (;;) {
      const ssize_t n = recv(c->fd, discard, sizeof discard, MSG_TRUNC | MSG_DONTWAIT);
      if (n > 0) {
        c->count += std::uint64_t(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;
      if (n == 0) {
        unsigned char le[8];
        for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(c->count >> (8 * i));
        send(c->fd, le, sizeof le, MSG_NOSIGNAL);  // 8 bytes into an empty send buffer
      }
      return finish();
    }
  }
  // echo
  if (!c->backlog.empty()) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return true;
    const ssize_t n = send(c->fd, c->backlog.data(), c->backlog.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (n < 0) return finish();
    c->backlog.erase(0, std::size_t(n));
    if (!c->backlog.empty()) return true;
    watch(ep, c->fd, EPOLLIN, reinterpret_cast<std::uint64_t>(c), EPOLL_CTL_MOD);
  }
  char buf[65536];
  for (;;) {
    const ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) return finish();
    ssize_t sent = send(c->fd, buf, std::size_t(n), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0 && errno != EAGAIN) return finish();
    if (sent < n) {
      c->backlog.assign(buf + std::max<ssize_t>(sent, 0), buf + n);
      watch(ep, c->fd, EPOLLOUT, reinterpret_cast<std::uint64_t>(c), EPOLL_CTL_MOD);
      return true;
    }
  }
}

// serve_loop accepts on listener (level-triggered, like every fd here) and serves what arrives.
void serve_loop(int listener) {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  watch(ep, listener, EPOLLIN, 0);
  epoll_event events[256];
  for (;;) {
    const int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == 0) {
        for (int fd; (fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          set_nodelay(fd);
          watch(ep, fd, EPOLLIN, reinterpret_cast<std::uint64_t>(new server_conn(fd)));
        }
      } else {
        serve_conn(ep, reinterpret_cast<server_conn*>(events[i].data.u64), events[i].events);
      }
    }
  }
}

int serve(int threads, const char* addr) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
    std::fprintf(stderr, "loadgen serve: not an IPv4 address: %s\n", addr);
    return 2;
  }
  std::vector<int> listeners;
  for (int t = 0; t < threads; ++t) {
    const int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    socklen_t len = sizeof a;
    if (bind(l, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(l, 4096) != 0) {
      std::perror("listen");
      return 1;
    }
    getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);  // the next listeners share this port
    listeners.push_back(l);
  }
  std::printf("listening on %s:%d\n", addr, ntohs(a.sin_port));
  std::fflush(stdout);
  std::vector<std::thread> loops;
  for (int l : listeners) loops.emplace_back(serve_loop, l);
  for (auto& t : loops) t.join();
  return 0;
}

// ---- client workloads --------------------------------------------------------------------------

// A start line shared by the workloads: each connects first, then all start the clock together.
struct start_line {
  std::atomic<int> waiting;
  std::atomic<bool> go{false};
  clock_type::time_point t0, deadline;
  double seconds;
  clock_type::time_point wait() {
    if (--waiting == 0) {
      t0 = clock_type::now();
      deadline = t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
      go = true;
    }
    while (!go) std::this_thread::yield();
    return t0;
  }
};

struct stream_result {
  int conns = 0;
  std::size_t write = 0;
  std::uint64_t written = 0, received = 0;
  double seconds = 0;
  long failed = 0;  // connections that failed, or whose count differs from what was written
};

// stream runs P bulk connections into the sink (see the header comment).
stream_result stream(const sockaddr_in& to, int conns, std::size_t write_size, start_line& line) {
  stream_result r;
  r.conns = conns;
  r.write = write_size;
  const std::string block(write_size, 'x');
  struct conn {
    int fd = -1;
    std::size_t off = 0;  // progress within the current write
    std::uint64_t written = 0;
    unsigned char answer[8];
    int got = 0;
    bool done = false;
  };
  std::vector<conn> cs(static_cast<std::size_t>(conns));
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  for (std::size_t i = 0; i < cs.size(); ++i) {
    cs[i].fd = connect_blocking(to);
    if (cs[i].fd < 0 || !send_all(cs[i].fd, "s", 1)) {
      ++r.failed;
      cs[i].done = true;
      continue;
    }
    set_nonblocking(cs[i].fd);
    watch(ep, cs[i].fd, EPOLLOUT | EPOLLIN | EPOLLET, i);
  }
  const auto t0 = line.wait();
  std::vector<std::size_t> ready;
  for (std::size_t i = 0; i < cs.size(); ++i)
    if (!cs[i].done) ready.push_back(i);
  epoll_event events[256];
  while (clock_type::now() < line.deadline) {
    for (std::size_t i : ready) {
      conn& c = cs[i];
      while (!c.done) {
        const ssize_t n = send(c.fd, block.data() + c.off, block.size() - c.off, MSG_NOSIGNAL);
        if (n > 0) {
          c.written += std::uint64_t(n);
          c.off = (c.off + std::size_t(n)) % block.size();
          if (clock_type::now() >= line.deadline) break;
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else if (n < 0 && errno == EAGAIN) {
          break;
        } else {
          ++r.failed;
          c.done = true;
        }
      }
    }
    ready.clear();
    const int n = epoll_wait(ep, events, 256, ms_until(line.deadline));
    for (int k = 0; k < n; ++k)
      if (events[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ready.push_back(events[k].data.u64);
  }
  // Half-close and collect the counts; the time to the last one includes draining the buffers.
  int open = 0;
  for (conn& c : cs) {
    if (c.done) continue;
    shutdown(c.fd, SHUT_WR);
    ++open;
  }
  const auto give_up = clock_type::now() + std::chrono::seconds(60);
  for (bool first = true; open > 0 && clock_type::now() < give_up; first = false) {
    ready.clear();
    if (first) {  // an answer may have come while the loop above ignored read events
      for (std::size_t i = 0; i < cs.size(); ++i) ready.push_back(i);
    } else {
      const int n = epoll_wait(ep, events, 256, ms_until(give_up));
      for (int k = 0; k < n; ++k) ready.push_back(events[k].data.u64);
    }
    for (std::size_t i : ready) {
      conn& c = cs[i];
      while (!c.done) {
        unsigned char buf[64];
        const ssize_t n = recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        for (ssize_t k = 0; k < n && c.got < 8; ++k) c.answer[c.got++] = buf[k];
        if (n > 0 && c.got < 8) continue;
        // The 8-byte count, or end of file or an error before it: this connection is over.
        std::uint64_t count = 0;
        for (int b = 7; b >= 0; --b) count = count << 8 | c.answer[b];
        if (c.got == 8 && count == c.written) {
          r.received += count;
          r.seconds = since(t0);
        } else {
          ++r.failed;
        }
        c.done = true;
        --open;
      }
    }
  }
  r.failed += open;
  for (conn& c : cs) {
    r.written += c.written;
    if (c.fd >= 0) close(c.fd);
  }
  close(ep);
  return r;
}

struct conns_result {
  int slots = 0;
  std::size_t bytes = 0;
  long done = 0, late = 0, failed = 0;
  double seconds = 0;
};

// conns runs K short connections at a time (see the header comment).
conns_result conns(const sockaddr_in& to, int slots, std::size_t bytes, start_line& line) {
  conns_result r;
  r.slots = slots;
  r.bytes = bytes;
  const std::string request = "s" + std::string(bytes, 'x');
  enum class state { idle, sending, reading };
  struct slot {
    int fd = -1;
    state st = state::idle;
    std::size_t sent = 0;
    unsigned char answer[8];
    int got = 0;
  };
  std::vector<slot> ss(static_cast<std::size_t>(slots));
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  bool closing = false;  // past SECONDS: no new connections

  const auto start = [&](std::size_t i) {
    slot& s = ss[i];
    s = slot{};
    s.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s.fd < 0 || (connect(s.fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS)) {
      if (s.fd >= 0) close(s.fd);
      s.fd = -1;
      ++r.failed;
      return false;
    }
    s.st = state::sending;
    watch(ep, s.fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, i);
    return true;
  };
  const auto finish = [&](std::size_t i, bool ok) {
    slot& s = ss[i];
    close(s.fd);
    s.fd = -1;
    s.st = state::idle;
    if (!ok) ++r.failed;
    else if (clock_type::now() > line.deadline) ++r.late;
    else ++r.done;
  };
  // step moves slot i as far as it goes; false when it has ended.
  const auto step = [&](std::size_t i) {
    slot& s = ss[i];
    while (s.st == state::sending) {
      const ssize_t n = send(s.fd, request.data() + s.sent, request.size() - s.sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;  // connecting, or the send buffer is full
      if (n < 0) return finish(i, false), false;
      s.sent += std::size_t(n);
      if (s.sent == request.size()) {
        shutdown(s.fd, SHUT_WR);
        s.st = state::reading;
      }
    }
    for (;;) {
      unsigned char buf[64];
      const ssize_t n = recv(s.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;
      if (n < 0) return finish(i, false), false;
      if (n == 0) {
        std::uint64_t count = 0;
        for (int b = 7; b >= 0; --b) count = count << 8 | s.answer[b];
        return finish(i, s.got == 8 && count == bytes), false;
      }
      for (ssize_t k = 0; k < n; ++k)
        if (s.got < 8) s.answer[s.got++] = buf[k];
        else s.got = 9;  // more than the count: wrong
    }
  };

  const auto t0 = line.wait();
  epoll_event events[256];
  const auto give_up = line.deadline + std::chrono::seconds(5);
  for (;;) {
    closing = clock_type::now() >= line.deadline;
    int open = 0;
    for (std::size_t i = 0; i < ss.size(); ++i) {
      // An ended slot opens the next connection until SECONDS are over. A connection that fails at
      // once counts as failed and its slot tries again on the next turn, not in a tight loop.
      if (!closing && ss[i].st == state::idle && start(i)) step(i);
      open += ss[i].st != state::idle;
    }
    if (closing && (open == 0 || clock_type::now() >= give_up)) break;
    const int n = epoll_wait(ep, events, 256, open == 0 ? 1 : ms_until(closing ? give_up : line.deadline));
    for (int k = 0; k < n; ++k) {
      const std::size_t i = events[k].data.u64;
      if (ss[i].st != state::idle) step(i);
    }
  }
  for (std::size_t i = 0; i < ss.size(); ++i)
    if (ss[i].st != state::idle) finish(i, false);
  r.seconds = std::chrono::duration<double>(line.deadline - t0).count();
  close(ep);
  return r;
}

struct rr_result {
  int conns = 0;
  std::size_t bytes = 0;
  std::vector<float> us;  // one latency per completed round trip, microseconds
  long failed = 0;
  double seconds = 0;
};

// rr runs C request/response connections against the echo server (see the header comment).
rr_result rr(const sockaddr_in& to, int conns, std::size_t bytes, start_line& line) {
  rr_result r;
  r.conns = conns;
  r.bytes = bytes;
  r.us.reserve(1 << 20);
  const std::string request(bytes, 'q');
  struct conn {
    int fd = -1;
    std::size_t got = 0;
    clock_type::time_point sent;
  };
  std::vector<conn> cs(static_cast<std::size_t>(conns));
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  for (std::size_t i = 0; i < cs.size(); ++i) {
    cs[i].fd = connect_blocking(to);
    if (cs[i].fd < 0 || !send_all(cs[i].fd, "e", 1)) {
      ++r.failed;
      continue;
    }
    set_nodelay(cs[i].fd);
    set_nonblocking(cs[i].fd);
    watch(ep, cs[i].fd, EPOLLIN | EPOLLRDHUP | EPOLLET, i);
  }
  const auto t0 = line.wait();
  const auto ask = [&](conn& c) {
    c.got = 0;
    c.sent = clock_type::now();
    if (send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size())) {
      ++r.failed;  // a small request into an empty send buffer goes whole, or the connection is gone
      close(c.fd);
      c.fd = -1;
    }
  };
  for (conn& c : cs)
    if (c.fd >= 0) ask(c);
  epoll_event events[256];
  std::vector<char> buf(bytes + 4096);
  while (clock_type::now() < line.deadline) {
    const int n = epoll_wait(ep, events, 256, ms_until(line.deadline));
    for (int k = 0; k < n; ++k) {
      conn& c = cs[events[k].data.u64];
      while (c.fd >= 0) {
        const ssize_t m = recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (m < 0 && errno == EINTR) continue;
        if (m < 0 && errno == EAGAIN) break;
        if (m <= 0 || c.got + std::size_t(m) > bytes) {  // closed, failed, or more than was asked
          ++r.failed;
          close(c.fd);
          c.fd = -1;
          break;
        }
        c.got += std::size_t(m);
        if (c.got < bytes) continue;
        const auto now = clock_type::now();
        if (now >= line.deadline) break;
        r.us.push_back(float(std::chrono::duration<double, std::micro>(now - c.sent).count()));
        ask(c);
      }
    }
  }
  r.seconds = since(t0);
  for (conn& c : cs)
    if (c.fd >= 0) close(c.fd);
  close(ep);
  return r;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct workload {
  std::string kind;
  int n = 0;
  std::size_t bytes = 0;
};

int client(const char* hostport, double seconds, const std::vector<workload>& ws) {
  const std::string hp = hostport;
  const auto colon = hp.rfind(':');
  sockaddr_in to{};
  to.sin_family = AF_INET;
  if (colon == std::string::npos || inet_pton(AF_INET, hp.substr(0, colon).c_str(), &to.sin_addr) != 1) {
    std::fprintf(stderr, "bad address %s (want IPv4 HOST:PORT)\n", hostport);
    return 2;
  }
  to.sin_port = htons(std::uint16_t(std::atoi(hp.c_str() + colon + 1)));

  // A bulk workload of two connections or more gets two sending threads: at 1 KiB writes a single
  // thread's send calls would be the limit before a proxy capped at a fifth of a core is.
  const auto senders = [](const workload& w) { return w.kind == "stream" ? std::min(w.n, 2) : 1; };
  start_line line;
  line.waiting = 0;
  for (const workload& w : ws) line.waiting += senders(w);
  line.seconds = seconds;
  std::vector<std::vector<stream_result>> streams(ws.size());
  std::vector<conns_result> shorts(ws.size());
  std::vector<rr_result> rrs(ws.size());
  const double cpu0 = cpu_seconds();
  const auto wall0 = clock_type::now();
  std::vector<std::thread> ts;
  for (std::size_t i = 0; i < ws.size(); ++i) {
    const workload& w = ws[i];
    if (w.kind == "stream") {
      const int k = senders(w);
      streams[i].resize(std::size_t(k));
      for (int j = 0; j < k; ++j) {
        const int n = w.n / k + (j < w.n % k ? 1 : 0);
        ts.emplace_back([&, i, j, n] { streams[i][std::size_t(j)] = stream(to, n, ws[i].bytes, line); });
      }
    } else if (w.kind == "conns") {
      ts.emplace_back([&, i] { shorts[i] = conns(to, ws[i].n, ws[i].bytes, line); });
    } else {
      ts.emplace_back([&, i] { rrs[i] = rr(to, ws[i].n, ws[i].bytes, line); });
    }
  }
  for (auto& t : ts) t.join();
  const double wall = since(wall0), cpu = cpu_seconds() - cpu0;

  long failed = 0;
  std::string out = "{\"seconds\": " + std::to_string(seconds) + ", \"wall_s\": " + std::to_string(wall) +
                    ", \"cpu_s\": " + std::to_string(cpu);
  char b[512];
  for (std::size_t i = 0; i < ws.size(); ++i) {
    if (ws[i].kind == "stream") {
      stream_result r;
      r.conns = ws[i].n;
      r.write = ws[i].bytes;
      for (const stream_result& part : streams[i]) {
        r.written += part.written;
        r.received += part.received;
        r.failed += part.failed;
        r.seconds = std::max(r.seconds, part.seconds);
      }
      std::snprintf(b, sizeof b,
                    ", \"stream\": {\"conns\": %d, \"write\": %zu, \"written\": %llu, \"received\": %llu, "
                    "\"seconds\": %.6f, \"mbps\": %.3f, \"failed\": %ld}",
                    r.conns, r.write, (unsigned long long)r.written, (unsigned long long)r.received, r.seconds,
                    r.seconds > 0 ? double(r.received) / r.seconds / 1e6 : 0.0, r.failed);
      failed += r.failed;
    } else if (ws[i].kind == "conns") {
      const conns_result& r = shorts[i];
      std::snprintf(b, sizeof b,
                    ", \"conns\": {\"slots\": %d, \"bytes\": %zu, \"done\": %ld, \"late\": %ld, \"failed\": %ld, "
                    "\"seconds\": %.6f, \"per_s\": %.1f}",
                    r.slots, r.bytes, r.done, r.late, r.failed, r.seconds, double(r.done) / r.seconds);
      failed += r.failed;
    } else {
      rr_result& r = rrs[i];
      std::sort(r.us.begin(), r.us.end());
      const auto pct = [&](double q) {
        return r.us.empty() ? 0.0 : double(r.us[std::min(r.us.size() - 1, std::size_t(q * double(r.us.size())))]);
      };
      std::snprintf(b, sizeof b,
                    ", \"rr\": {\"conns\": %d, \"bytes\": %zu, \"requests\": %zu, \"per_s\": %.1f, \"p50_us\": %.1f, "
                    "\"p90_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f, \"failed\": %ld}",
                    r.conns, r.bytes, r.us.size(), double(r.us.size()) / r.seconds, pct(0.5), pct(0.9), pct(0.99), pct(0.999),
                    r.us.empty() ? 0.0 : double(r.us.back()), r.failed);
      failed += r.failed;
    }
    out += b;
  }
  std::printf("%s}\n", out.c_str());
  return failed ? 1 : 0;
}

// spend_pipes makes pipes of 1 MiB until the kernel refuses one (for an unprivileged user: the
// budget fs.pipe-user-pages-soft is spent), at most 1024, and holds them until stdin closes.
int spend_pipes() {
  int n = 0;
  long long bytes = 0;
  for (; n < 1024; ++n) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) break;
    const int got = fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    if (got < 0) {
      close(p[0]);
      close(p[1]);
      break;
    }
    bytes += got;
  }
  std::printf("holding %d pipes, %lld bytes\n", n, bytes);
  std::fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: loadgen serve [THREADS [ADDR]]\n"
               "       loadgen client HOST:PORT SECONDS {stream=P,N | conns=K,N | rr=C,N}...\n"
               "       loadgen spend-pipes\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && argc <= 4 && !std::strcmp(argv[1], "serve"))
    return serve(argc > 2 ? std::max(1, std::atoi(argv[2])) : 2, argc > 3 ? argv[3] : "127.0.0.1");
  if (argc == 2 && !std::strcmp(argv[1], "spend-pipes")) return spend_pipes();
  if (argc < 5 || std::strcmp(argv[1], "client")) return usage();
  std::vector<workload> ws;
  for (int i = 4; i < argc; ++i) {
    workload w;
    const char* eq = std::strchr(argv[i], '=');
    const char* comma = eq ? std::strchr(eq, ',') : nullptr;
    if (!comma) return usage();
    w.kind.assign(argv[i], std::size_t(eq - argv[i]));
    w.n = std::atoi(eq + 1);
    w.bytes = std::size_t(std::atoll(comma + 1));
    if ((w.kind != "stream" && w.kind != "conns" && w.kind != "rr") || w.n <= 0 || w.bytes == 0) return usage();
    if (std::count_if(ws.begin(), ws.end(), [&](const workload& o) { return o.kind == w.kind; })) return usage();
    ws.push_back(w);
  }
  return client(argv[2], std::atof(argv[3]), ws);
}
