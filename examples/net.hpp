// SPDX-License-Identifier: MIT
// What the example proxies need besides the library: addresses, listening, connecting, signals.
#ifndef SPLICE_EXAMPLES_NET_HPP_
#define SPLICE_EXAMPLES_NET_HPP_

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <splice/splice.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace example {

/// Command-line settings shared by the proxies.
struct settings {
  std::string listen, upstream;
  bool userspace = false;
  int idle_timeout_s = 0;  // 0: none
  int max_conns = 1024;
  int threads = 1;  // epoll_proxy's event loops
  std::size_t max_splice = 0, max_advance = 0;  // 0: the library's defaults
  // --mirror and --mirror-down HOST:PORT: where each connection's client -> upstream (and
  // upstream -> client) bytes are mirrored; --mirror-file PATH: the capture of a direction with no
  // mirror socket, one file per connection and direction (PATH.ID.up, PATH.ID.down).
  std::string mirror_up, mirror_down, mirror_file;
  std::size_t mirror_lag = 0;  // --mirror-lag BYTES; 0: the library's default (mirror::config::lag)
};

/// Sets what the command line says of the copies' options (tuning, and the benchmark's experiments).
inline void apply(const settings& s, splice::options& opt) {
  opt.userspace = s.userspace;
  if (s.max_splice > 0) opt.max_splice = s.max_splice;
  if (s.max_advance > 0) opt.max_advance = s.max_advance;
}

/// Prints what the shared pipe pool did: pipes made and reused, and bytes moved each way.
inline void print_pool() {
  const auto s = splice::pipe_pool::shared().stats();
  std::printf("pipes: created %llu, reused %llu, discarded %llu, refused %llu, made smaller %llu, too small %llu; "
              "spliced %llu bytes, copied %llu\n",
              (unsigned long long)s.created, (unsigned long long)s.reused, (unsigned long long)s.discarded,
              (unsigned long long)s.exhausted, (unsigned long long)s.shrunk, (unsigned long long)s.undersized,
              (unsigned long long)s.spliced_bytes, (unsigned long long)s.copied_bytes);
}

inline void usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s LISTEN_HOST:PORT UPSTREAM_HOST:PORT [--userspace] [--idle-timeout SECONDS] "
               "[--max-conns N] [--threads N] [--max-splice BYTES] [--max-advance BYTES] [--mirror HOST:PORT] "
               "[--mirror-down HOST:PORT] [--mirror-file PATH] [--mirror-lag BYTES]\n",
               prog);
  std::exit(2);
}

/// bytes reads a positive byte count of at most 1 GiB, or prints the usage and exits.
inline std::size_t bytes(const char* arg, const char* prog) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(arg, &end, 10);
  if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || n == 0 || n > (1ull << 30)) usage(prog);
  return std::size_t(n);
}

inline settings parse(int argc, char** argv) {
  settings s;
  if (argc < 3) usage(argv[0]);
  s.listen = argv[1];
  s.upstream = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--userspace") s.userspace = true;
    else if (a == "--idle-timeout" && i + 1 < argc) s.idle_timeout_s = std::atoi(argv[++i]);
    else if (a == "--max-conns" && i + 1 < argc) s.max_conns = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) s.threads = std::atoi(argv[++i]);
    else if (a == "--max-splice" && i + 1 < argc) s.max_splice = bytes(argv[++i], argv[0]);
    else if (a == "--max-advance" && i + 1 < argc) s.max_advance = bytes(argv[++i], argv[0]);
    else if (a == "--mirror" && i + 1 < argc) s.mirror_up = argv[++i];
    else if (a == "--mirror-down" && i + 1 < argc) s.mirror_down = argv[++i];
    else if (a == "--mirror-file" && i + 1 < argc) s.mirror_file = argv[++i];
    else if (a == "--mirror-lag" && i + 1 < argc) s.mirror_lag = bytes(argv[++i], argv[0]);
    else usage(argv[0]);
  }
  if (s.threads < 1) usage(argv[0]);
  return s;
}

/// Resolves HOST:PORT (or [V6]:PORT); returns nullptr and prints why on failure.
inline addrinfo* resolve(const std::string& hostport, bool passive) {
  const auto colon = hostport.rfind(':');
  if (colon == std::string::npos) return std::fprintf(stderr, "no port in %s\n", hostport.c_str()), nullptr;
  std::string host = hostport.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  if (int e = getaddrinfo(host.empty() ? "127.0.0.1" : host.c_str(), hostport.c_str() + colon + 1, &hints, &res)) {
    std::fprintf(stderr, "%s: %s\n", hostport.c_str(), gai_strerror(e));
    return nullptr;
  }
  return res;
}

inline std::string to_string(const sockaddr* sa) {
  char host[NI_MAXHOST], port[NI_MAXSERV];
  const socklen_t len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (getnameinfo(sa, len, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV)) return "?";
  return sa->sa_family == AF_INET6 ? "[" + std::string(host) + "]:" + port : std::string(host) + ":" + port;
}

/// Sets TCP_NODELAY: a proxy passes on each write as it comes, and Nagle's algorithm would hold a
/// small one back until the previous one is acknowledged (on loopback, where the MSS is about
/// 64 KiB, almost every write is small). KERNEL_NOTES.md: HTTP keep-alive through a proxy without
/// it, 17-38k requests/s on this machine; with it, 49-70k.
inline void set_nodelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// bind_listener binds a listening socket to sa, with SO_REUSEPORT when several share the address.
inline int bind_listener(const sockaddr* sa, socklen_t len, int flags, bool reuse_port) {
  const int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, sa, len) == 0 && listen(fd, 1024) == 0) return fd;
  const int err = errno;
  close(fd);
  errno = err;
  return -1;
}

/// Opens count listeners on hostport and prints "listening on HOST:PORT" (the real port when 0 was
/// asked). Several listeners share the address with SO_REUSEPORT, one per event loop; when port 0
/// was asked, the rest bind to the port the first one got. Returns them, or nothing after printing
/// why.
inline std::vector<int> open_listeners(const std::string& hostport, int count, int flags = 0) {
  addrinfo* ai = resolve(hostport, true);
  if (!ai) return {};
  sockaddr_storage ss{};
  socklen_t len = ai->ai_addrlen;
  std::memcpy(&ss, ai->ai_addr, len);
  freeaddrinfo(ai);
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) {
    const int fd = bind_listener(reinterpret_cast<sockaddr*>(&ss), len, flags, count > 1);
    if (fd < 0) {
      std::perror("listen");
      for (int f : fds) close(f);
      return {};
    }
    fds.push_back(fd);
    len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  }
  std::printf("listening on %s\n", to_string(reinterpret_cast<sockaddr*>(&ss)).c_str());
  std::fflush(stdout);
  return fds;
}

/// Listens on hostport and prints "listening on HOST:PORT" (the real port when 0 was asked).
inline int listen_on(const std::string& hostport, int flags = 0) {
  const std::vector<int> fds = open_listeners(hostport, 1, flags);
  return fds.empty() ? -1 : fds[0];
}

/// An upstream address, resolved once at start: then no connection waits for a name lookup, nor
/// needs an fd for one.
struct address {
  sockaddr_storage ss{};
  socklen_t len = 0;
};

/// Resolves HOST:PORT to its first address; false after printing why.
inline bool resolve_to(const std::string& hostport, address& a) {
  addrinfo* ai = resolve(hostport, false);
  if (!ai) return false;
  std::memcpy(&a.ss, ai->ai_addr, ai->ai_addrlen);
  a.len = ai->ai_addrlen;
  freeaddrinfo(ai);
  return true;
}

/// Makes a TCP socket to connect to a; flags may add SOCK_NONBLOCK. Returns -1 with errno set on
/// failure.
inline int socket_for(const address& a, int flags = 0) {
  return socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
}

/// Connects fd to a; a non-blocking connect may still be in progress. false with errno set.
inline bool connect_fd(int fd, const address& a) {
  return connect(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) == 0 || errno == EINPROGRESS;
}

/// Connects to a. Returns -1 with errno set on failure.
inline int connect_to(const address& a, int flags = 0) {
  const int fd = socket_for(a, flags);
  if (fd < 0 || connect_fd(fd, a)) return fd;
  const int err = errno;
  close(fd);
  errno = err;
  return -1;
}

/// Where the mirrors go, resolved once at start.
struct mirror_targets {
  bool up = false, down = false;  // a socket mirror for that direction
  address up_at, down_at;
  std::string file;  // the capture's path prefix, or ""
  std::size_t lag = 0;
};

/// Resolves the mirror addresses of s; false after printing why.
inline bool resolve_mirrors(const settings& s, mirror_targets& t) {
  t.up = !s.mirror_up.empty(), t.down = !s.mirror_down.empty();
  t.file = s.mirror_file, t.lag = s.mirror_lag;
  return (!t.up || resolve_to(s.mirror_up, t.up_at)) && (!t.down || resolve_to(s.mirror_down, t.down_at));
}

/// One connection's mirrors: each direction's, or none. They close their fds when destroyed.
struct mirrors {
  std::unique_ptr<splice::mirror> up, down;

  /// Returns opt with these mirrors attached to the directions of a duplex (a: client).
  splice::proxy_options attach(splice::proxy_options opt) const {
    opt.mirror_a_to_b = up.get();
    opt.mirror_b_to_a = down.get();
    return opt;
  }
};

/// Opens the mirror of one direction of connection id: a socket connected without waiting (a
/// refused connection shows later, and cuts the mirror only), or a capture file. Prints why not.
inline std::unique_ptr<splice::mirror> open_mirror(const mirror_targets& t, bool up, unsigned long id) {
  int fd = -1;
  if (up ? t.up : t.down) {
    fd = connect_to(up ? t.up_at : t.down_at, SOCK_NONBLOCK);
  } else if (!t.file.empty()) {
    const std::string path = t.file + "." + std::to_string(id) + (up ? ".up" : ".down");
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  } else {
    return nullptr;
  }
  if (fd < 0) {
    std::printf("mirror %lu %s: %s\n", id, up ? "up" : "down", std::strerror(errno));
    return nullptr;
  }
  splice::mirror::config c;
  if (t.lag > 0) c.lag = t.lag;
  return std::make_unique<splice::mirror>(fd, c);
}

inline mirrors open_mirrors(const mirror_targets& t, unsigned long id) {
  return {open_mirror(t, true, id), open_mirror(t, false, id)};
}

/// One log line per mirror of a finished connection:
///   mirror ID up|down: N bytes, finished|cut (WHY[: MESSAGE])
inline void log_mirrors(unsigned long id, const mirrors& m) {
  for (const splice::mirror* p : {m.up.get(), m.down.get()}) {
    if (!p) continue;
    const bool cut = p->status() == splice::mirror::state::cut;
    std::printf("mirror %lu %s: %llu bytes, %s%s%s%s%s\n", id, p == m.up.get() ? "up" : "down",
                (unsigned long long)p->bytes(), cut ? "cut (" : "finished", cut ? p->why() : "",
                cut && p->error() ? ": " : "", cut && p->error() ? p->error().message().c_str() : "", cut ? ")" : "");
  }
  std::fflush(stdout);
}

/// Blocks SIGINT and SIGTERM in this thread (and threads it starts) and returns a signalfd that
/// becomes readable when one arrives, so the main loop can stop cleanly.
inline int stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/// One log line per finished connection, in a fixed format:
///   conn ID PEER: up N bytes, down N bytes, spliced yes|no (WHY), ok|OP: MESSAGE
/// WHY is result::fallback's word for the direction that went through user space, or "nothing
/// moved".
inline void log_connection(unsigned long id, const std::string& peer, unsigned long long up,
                           unsigned long long down, bool spliced, const std::error_code& ec, const char* op,
                           const char* why = "nothing moved") {
  std::printf("conn %lu %s: up %llu bytes, down %llu bytes, spliced %s%s%s, %s%s%s\n", id, peer.c_str(), up, down,
              spliced ? "yes" : "no (", spliced ? "" : why, spliced ? "" : ")", ec ? op : "", ec ? ": " : "",
              ec ? ec.message().c_str() : "ok");
  std::fflush(stdout);
}

/// The same, for a relay that ended.
inline void log_connection(unsigned long id, const std::string& peer, const splice::proxy_result& r) {
  const char* why = *r.a_to_b.fallback ? r.a_to_b.fallback : *r.b_to_a.fallback ? r.b_to_a.fallback : "nothing moved";
  log_connection(id, peer, r.a_to_b.bytes, r.b_to_a.bytes, r.a_to_b.spliced || r.b_to_a.spliced, r.error, r.op, why);
}

}  // namespace example

#endif  // SPLICE_EXAMPLES_NET_HPP_
