// SPDX-License-Identifier: MIT
// What both example proxies need besides the library: addresses, listening, connecting, signals.
#ifndef SPLICE_EXAMPLES_NET_HPP_
#define SPLICE_EXAMPLES_NET_HPP_

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <splice/splice.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
};

/// Prints what the shared pipe pool did: pipes made and reused, and bytes moved each way.
inline void print_pool() {
  const auto s = splice::pipe_pool::shared().stats();
  std::printf("pipes: created %llu, reused %llu, discarded %llu, refused %llu; spliced %llu bytes, copied %llu\n",
              (unsigned long long)s.created, (unsigned long long)s.reused, (unsigned long long)s.discarded,
              (unsigned long long)s.exhausted, (unsigned long long)s.spliced_bytes,
              (unsigned long long)s.copied_bytes);
}

inline void usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s LISTEN_HOST:PORT UPSTREAM_HOST:PORT [--userspace] [--idle-timeout SECONDS] "
               "[--max-conns N]\n",
               prog);
  std::exit(2);
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
    else usage(argv[0]);
  }
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

/// Listens on hostport and prints "listening on HOST:PORT" (the real port when 0 was asked).
inline int listen_on(const std::string& hostport, int flags = 0) {
  addrinfo* ai = resolve(hostport, true);
  if (!ai) return -1;
  const int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
    std::perror("listen");
    freeaddrinfo(ai);
    return -1;
  }
  freeaddrinfo(ai);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  std::printf("listening on %s\n", to_string(reinterpret_cast<sockaddr*>(&ss)).c_str());
  std::fflush(stdout);
  return fd;
}

/// Connects to hostport (non-blocking when flags has SOCK_NONBLOCK: the connect may be in progress).
inline int connect_to(const std::string& hostport, int flags = 0) {
  addrinfo* ai = resolve(hostport, false);
  if (!ai) return -1;
  const int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
    close(fd);
    freeaddrinfo(ai);
    return -1;
  }
  freeaddrinfo(ai);
  return fd;
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

/// One log line per finished connection.
inline void log_connection(unsigned long id, const std::string& peer, unsigned long long up,
                           unsigned long long down, bool spliced, const std::error_code& ec, const char* op) {
  std::printf("conn %lu %s: up %llu bytes, down %llu bytes, spliced %s, %s%s%s\n", id, peer.c_str(), up, down,
              spliced ? "yes" : "no", ec ? op : "", ec ? ": " : "", ec ? ec.message().c_str() : "ok");
  std::fflush(stdout);
}

}  // namespace example

#endif  // SPLICE_EXAMPLES_NET_HPP_
