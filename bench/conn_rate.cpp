// SPDX-License-Identifier: MIT
// A load generator for short connections, and the upstream it talks to.
//   conn_rate serve BYTES                      answer every connection with BYTES bytes, then close;
//                                              prints "listening on 127.0.0.1:PORT"
//   conn_rate client PORT SECONDS BYTES THREADS  open connections to 127.0.0.1:PORT for SECONDS: send
//                                              a 64-byte request, half-close, read BYTES, close;
//                                              prints "connections/s N" and exits 1 on any short read
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(std::uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

int serve(std::size_t bytes) {
  const int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  if (bind(l, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(l, 1024) != 0) return 1;
  getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  std::printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
  std::fflush(stdout);
  const std::string answer(bytes, 'x');
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&] {
      char buf[4096];
      for (int c; (c = accept(l, nullptr, nullptr)) >= 0; close(c)) {
        while (read(c, buf, sizeof buf) > 0) {
        }
        for (std::size_t off = 0; off < answer.size();) {
          const ssize_t n = send(c, answer.data() + off, answer.size() - off, MSG_NOSIGNAL);
          if (n <= 0) break;
          off += std::size_t(n);
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  return 0;
}

int client(int port, double seconds, std::size_t bytes, int threads) {
  std::atomic<long> done{0}, bad{0};
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      std::vector<char> buf(1 << 16);
      const char request[64] = "GET";
      while (std::chrono::steady_clock::now() < until) {
        const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a = loopback(port);
        std::size_t got = 0;
        if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            send(s, request, sizeof request, MSG_NOSIGNAL) == ssize_t(sizeof request) && shutdown(s, SHUT_WR) == 0) {
          for (ssize_t n; (n = read(s, buf.data(), buf.size())) > 0;) got += std::size_t(n);
        }
        close(s);
        ++(got == bytes ? done : bad);
      }
    });
  }
  for (auto& t : ts) t.join();
  std::printf("connections/s %.0f\nshort %ld\n", double(done) / seconds, long(bad));
  return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && !std::strcmp(argv[1], "serve")) return serve(std::size_t(std::atol(argv[2])));
  if (argc == 6 && !std::strcmp(argv[1], "client"))
    return client(std::atoi(argv[2]), std::atof(argv[3]), std::size_t(std::atol(argv[4])), std::atoi(argv[5]));
  std::fprintf(stderr, "usage: conn_rate serve BYTES | conn_rate client PORT SECONDS BYTES THREADS\n");
  return 2;
}
