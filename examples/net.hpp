// SPDX-License-Identifier: MIT
// What the example proxies need besides the library: addresses, listening, connecting, signals.
#ifndef SPLICE_EXAMPLES_NET_HPP_
#define SPLICE_EXAMPLES_NET_HPP_

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include <splice/splice.hpp>

#include <sched.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace example {

/// Command-line settings shared by the proxies.
struct settings {
  std::string listen, upstream;
  bool userspace = false;
  int idle_timeout_s = 0;  // 0: none
  int max_conns = 1024;
  int threads = 0;  // event loops (epoll_proxy, asio_proxy); 0: one per CPU this process may run on
  std::size_t max_splice = 0, max_advance = 0;  // 0: the library's defaults
  bool accept_proxy = false;  // --accept-proxy: a PROXY header (v1 or v2) comes first from each client
  int send_proxy = 0;         // --send-proxy (1), --send-proxy-v2 (2): write one upstream first
  std::chrono::milliseconds proxy_timeout{1000};  // --proxy-timeout: for the whole received header
  std::string metrics;  // --metrics HOST:PORT: serve GET /metrics there (metrics_http.hpp); "": none
  int drain_timeout_s = 30;  // a graceful stop cuts what still runs after this long
  std::uint64_t rate = 0, rate_total = 0, rate_burst = 0;  // bytes per second, bytes; 0: none, default
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
               "[--max-conns N] [--threads N] [--max-splice BYTES] [--max-advance BYTES] [--accept-proxy] "
               "[--send-proxy | --send-proxy-v2] [--proxy-timeout SECONDS] "
               "[--metrics HOST:PORT] [--drain-timeout SECONDS] [--rate BYTES_PER_S] [--rate-total BYTES_PER_S] "
               "[--rate-burst BYTES] "
               "[--mirror HOST:PORT] [--mirror-down HOST:PORT] [--mirror-file PATH] [--mirror-lag BYTES]\n",
               prog);
  std::exit(2);
}

/// count reads a positive number of at most most, or prints the usage and exits.
inline unsigned long long count(const char* arg, const char* prog, unsigned long long most) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(arg, &end, 10);
  if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || n == 0 || n > most) usage(prog);
  return n;
}

/// bytes reads a positive byte count of at most 1 GiB, or prints the usage and exits.
inline std::size_t bytes(const char* arg, const char* prog) { return std::size_t(count(arg, prog, 1ull << 30)); }

/// seconds_ms reads a positive number of seconds, fractions allowed, of at most an hour, or prints
/// the usage and exits.
inline std::chrono::milliseconds seconds_ms(const char* arg, const char* prog) {
  char* end = nullptr;
  errno = 0;
  const double s = std::strtod(arg, &end);
  if (errno != 0 || end == arg || *end != '\0' || !(s > 0) || s > 3600) usage(prog);
  return std::chrono::milliseconds((long long)(s * 1000 + 0.5));
}

/// Returns the number of CPUs this process may run on (sched_getaffinity), at least 1: the default
/// number of event loops, as HAProxy starts one thread per CPU.
inline int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof set, &set) == 0 ? std::max(1, CPU_COUNT(&set)) : 1;
}

/// Parses the command line; a program without event loops (looped = false) refuses --threads.
inline settings parse(int argc, char** argv, bool looped = true) {
  settings s;
  if (argc < 3) usage(argv[0]);
  s.listen = argv[1];
  s.upstream = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--userspace") s.userspace = true;
    else if (a == "--idle-timeout" && i + 1 < argc) s.idle_timeout_s = std::atoi(argv[++i]);
    else if (a == "--max-conns" && i + 1 < argc) s.max_conns = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc && looped) {
      if ((s.threads = std::atoi(argv[++i])) < 1) usage(argv[0]);
    }
    else if (a == "--max-splice" && i + 1 < argc) s.max_splice = bytes(argv[++i], argv[0]);
    else if (a == "--max-advance" && i + 1 < argc) s.max_advance = bytes(argv[++i], argv[0]);
    else if (a == "--accept-proxy") s.accept_proxy = true;
    else if (a == "--send-proxy" && s.send_proxy != 2) s.send_proxy = 1;
    else if (a == "--send-proxy-v2" && s.send_proxy != 1) s.send_proxy = 2;
    else if (a == "--proxy-timeout" && i + 1 < argc) s.proxy_timeout = seconds_ms(argv[++i], argv[0]);
    else if (a == "--metrics" && i + 1 < argc) s.metrics = argv[++i];
    else if (a == "--drain-timeout" && i + 1 < argc) s.drain_timeout_s = std::atoi(argv[++i]);
    else if (a == "--rate" && i + 1 < argc) s.rate = count(argv[++i], argv[0], 1ull << 40);
    else if (a == "--rate-total" && i + 1 < argc) s.rate_total = count(argv[++i], argv[0], 1ull << 40);
    else if (a == "--rate-burst" && i + 1 < argc) s.rate_burst = bytes(argv[++i], argv[0]);
    else if (a == "--mirror" && i + 1 < argc) s.mirror_up = argv[++i];
    else if (a == "--mirror-down" && i + 1 < argc) s.mirror_down = argv[++i];
    else if (a == "--mirror-file" && i + 1 < argc) s.mirror_file = argv[++i];
    else if (a == "--mirror-lag" && i + 1 < argc) s.mirror_lag = bytes(argv[++i], argv[0]);
    else usage(argv[0]);
  }
  if (s.threads == 0) s.threads = usable_cpus();
  if (s.drain_timeout_s < 0) usage(argv[0]);
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

/// to_string names an address: "HOST:PORT", "[V6]:PORT", "unix:PATH" ("unix:@NAME" for an abstract
/// one), or "unknown" for AF_UNSPEC (a PROXY header that carries no address).
inline std::string to_string(const sockaddr* sa) {
  if (sa->sa_family == AF_UNSPEC) return "unknown";
  if (sa->sa_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    const bool abstract = un->sun_path[0] == '\0';
    const char* p = un->sun_path + (abstract ? 1 : 0);
    return std::string(abstract ? "unix:@" : "unix:") + std::string(p, strnlen(p, sizeof un->sun_path - 1));
  }
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

/// request_drain turns a stop signal into a request of d, and logs it: the first asks the relays
/// to finish within timeout_s seconds, any later one to end now.
inline void request_drain(splice::drain& d, int timeout_s, int signo) {
  const auto now = std::chrono::steady_clock::now();
  if (!d.requested()) {
    std::printf("draining: %s; listeners closed, cutting what still runs in %d s\n", strsignal(signo), timeout_s);
    d.request(now + std::chrono::seconds(timeout_s));
  } else {
    std::printf("drain: %s again, cutting what still runs now\n", strsignal(signo));
    d.request(now);
  }
  std::fflush(stdout);
}

/// on_signal reads the signals that have come on stop_signals()' fd and makes each a request of d
/// (request_drain). Returns false when none was there (the fd is non-blocking).
inline bool on_signal(int signal_fd, splice::drain& d, int timeout_s) {
  bool any = false;
  for (signalfd_siginfo si{}; read(signal_fd, &si, sizeof si) == ssize_t(sizeof si); any = true)
    request_drain(d, timeout_s, int(si.ssi_signo));
  return any;
}

/// exit_status is a proxy's exit status after a graceful stop: 0 when every connection ended by
/// itself, 1 when the drain cut some. Says which.
inline int exit_status(unsigned long cut) {
  if (cut > 0) std::printf("drain: cut %lu connections\n", cut);
  else std::printf("drained\n");
  return cut > 0 ? 1 : 0;
}

/// was_cut says whether a relay ended because a drain's deadline cut it.
inline bool was_cut(const splice::proxy_result& r) { return r.error && std::strcmp(r.op, "drain") == 0; }

/// limits holds what --rate, --rate-total and --rate-burst ask for: the process-wide buckets of
/// --rate-total, one per direction, which every connection's buckets draw on. Thread-safe (the
/// buckets are).
class limits {
 public:
  /// Makes the buckets the settings ask for; the burst defaults to one largest splice (max_splice).
  explicit limits(const settings& s)
      : rate_(s.rate ? s.rate : s.rate_total),
        burst_(s.rate_burst ? s.rate_burst : s.max_splice ? s.max_splice : splice::options{}.max_splice) {
    if (s.rate_total) up_.emplace(s.rate_total, burst_), down_.emplace(s.rate_total, burst_);
  }
  /// Returns whether any limit applies.
  bool any() const { return rate_ > 0; }

 private:
  friend struct connection_rates;
  std::uint64_t rate_, burst_;  // a connection's own rate: --rate, else --rate-total (it draws on that)
  std::optional<splice::rate_limit> up_, down_;  // --rate-total, client -> upstream and back
};

/// connection_rates is one connection's buckets, one per direction (--rate), each drawing on the
/// process's bucket for its direction (--rate-total); none without a limit. It must outlive the
/// connection's relay.
struct connection_rates {
  explicit connection_rates(limits& l) {
    if (!l.any()) return;
    up.emplace(l.rate_, l.burst_, l.up_ ? &*l.up_ : nullptr);
    down.emplace(l.rate_, l.burst_, l.down_ ? &*l.down_ : nullptr);
  }
  /// Returns opt bounded by these buckets: up for a -> b (client to upstream), down for b -> a.
  splice::proxy_options apply(splice::proxy_options opt) {
    if (up) opt.copy.rate = &*up, opt.rate_b_to_a = &*down;
    return opt;
  }
  std::optional<splice::rate_limit> up, down;
};

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

/// peer_of names a client whose PROXY header was read: the address the header carries, then the
/// socket's peer (the proxy in front): "203.0.113.7:51234 via 127.0.0.1:40000"; "local via ..."
/// for a v2 LOCAL header, "unknown via ..." for one that carries no address.
inline std::string peer_of(const std::string& socket_peer, const splice::proxy_header& h) {
  const std::string carried = h.local ? "local" : to_string(reinterpret_cast<const sockaddr*>(&h.src));
  return carried + " via " + socket_peer;
}

/// upstream_header returns the PROXY header --send-proxy (v1) or --send-proxy-v2 writes upstream
/// before the first byte of the client's: for the client's socket (its peer and the address it
/// reached), or, for a received header that carries addresses, for those. A received LOCAL or
/// UNKNOWN header carries none, so the socket's are sent. IPv4-mapped IPv6 ends go as TCP4
/// (INET), as the builders do. v2 passes on the TLVs of a received v2 header, but for a CRC32C,
/// which it computes afresh over the new header. "" when nothing is to be sent.
inline std::string upstream_header(const settings& s, int client, const splice::proxy_header* received) {
  if (s.send_proxy == 0) return "";
  sockaddr_storage src{}, dst{};
  socklen_t len = sizeof src;
  if (getpeername(client, reinterpret_cast<sockaddr*>(&src), &len) != 0) src.ss_family = AF_UNSPEC;
  len = sizeof dst;
  if (getsockname(client, reinterpret_cast<sockaddr*>(&dst), &len) != 0) dst.ss_family = AF_UNSPEC;
  if (received && received->has_address() && !received->local) src = received->src, dst = received->dst;
  const auto* a = reinterpret_cast<const sockaddr*>(&src);
  const auto* b = reinterpret_cast<const sockaddr*>(&dst);
  std::vector<splice::proxy_tlv> tlvs;
  splice::proxy_v2_extras x;
  if (received && received->version == 2) {
    for (const splice::proxy_tlv& t : received->tlvs) {
      if (t.type == splice::proxy_tlv_type::crc32c) x.crc32c = true;
      else tlvs.push_back(t);
    }
  }
  x.tlvs = tlvs.data(), x.count = tlvs.size();
  std::string out(256 + (received ? received->tlvs.size() : 0), '\0');
  out.resize(s.send_proxy == 1 ? splice::build_proxy_v1(&out[0], out.size(), a, b)
                               : splice::build_proxy_v2(&out[0], out.size(), a, b, x));
  return out;
}

/// header_failure says in a few words why reading a client's PROXY header failed: the parser's
/// reason ("v1 bad source port"), what had come when the deadline passed, or the call that failed.
inline std::string header_failure(const splice::proxy_header_reader<>& r) {
  if (*r.reason()) return r.reason();
  if (r.error() == std::errc::timed_out)
    return r.consumed() ? "header incomplete at the deadline, " + std::to_string(r.consumed()) + " bytes"
                        : "no header within the deadline";
  return r.op();
}

/// log_refused logs a client closed because its PROXY header was bad, incomplete or late, in the
/// fixed format of log_connection, with op "proxy header" and the reason after the message:
///   conn ID PEER: up 0 bytes, down 0 bytes, spliced no (nothing moved), proxy header: MESSAGE (WHY)
inline void log_refused(unsigned long id, const std::string& peer, const splice::proxy_header_reader<>& r) {
  std::printf("conn %lu %s: up 0 bytes, down 0 bytes, spliced no (nothing moved), proxy header: %s (%s)\n", id,
              peer.c_str(), r.error().message().c_str(), header_failure(r).c_str());
  std::fflush(stdout);
}

/// send_all writes all of data to a blocking socket; false with errno set on failure.
inline bool send_all(int fd, const std::string& data) {
  for (std::size_t off = 0; off < data.size();) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    off += std::size_t(n);
  }
  return true;
}

}  // namespace example

#endif  // SPLICE_EXAMPLES_NET_HPP_
