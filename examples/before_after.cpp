// SPDX-License-Identifier: MIT
// Before and after: the read/write loops a proxy and a file server have, and the splice::copy call
// that replaces each. Run it: it relays a file through two local TCP connections, and sends the
// file itself into one, both ways, and prints what each moved.
//   before_after [FILE]
#include <cstdio>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <splice/splice.hpp>

// Before: every byte crosses into user space and back out.
long long relay_before(int dst, int src) {
  char buf[64 * 1024];
  long long total = 0;
  for (;;) {
    ssize_t n = read(src, buf, sizeof buf);
    if (n == 0) return total;
    if (n < 0) return -1;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = send(dst, buf + off, size_t(n - off), MSG_NOSIGNAL);
      if (w < 0) return -1;
      off += w;
    }
    total += n;
  }
}

// After: the kernel moves the bytes; the result says how many, and why it stopped.
long long relay_after(int dst, int src) {
  const splice::result r = splice::copy(dst, src);
  if (r.error) std::fprintf(stderr, "%s: %s after %llu bytes\n", r.op, r.error.message().c_str(),
                            static_cast<unsigned long long>(r.bytes));
  return r.error ? -1 : static_cast<long long>(r.bytes);
}

// Before: a file server reads the file into a buffer and sends it out again.
long long send_file_before(int sock, int file) {
  char buf[64 * 1024];
  long long total = 0;
  for (;;) {
    ssize_t n = read(file, buf, sizeof buf);
    if (n == 0) return total;
    if (n < 0) return -1;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = send(sock, buf + off, size_t(n - off), MSG_NOSIGNAL);
      if (w < 0) return -1;
      off += w;
    }
    total += n;
  }
}

// After: the same call; from a file the kernel sends the page cache's pages without a copy.
long long send_file_after(int sock, int file) { return relay_after(sock, file); }

namespace {
// connected_pair returns both ends of a new TCP connection on 127.0.0.1.
bool connected_pair(int& a, int& b) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bool ok = bind(l, reinterpret_cast<sockaddr*>(&addr), len) == 0 && listen(l, 1) == 0 &&
            getsockname(l, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  a = socket(AF_INET, SOCK_STREAM, 0);
  ok = ok && connect(a, reinterpret_cast<sockaddr*>(&addr), len) == 0;
  b = ok ? accept(l, nullptr, nullptr) : -1;
  close(l);
  return b >= 0;
}

long long run(const char* path, long long (*relay)(int, int)) {
  int in_a, in_b, out_a, out_b;
  if (!connected_pair(in_a, in_b) || !connected_pair(out_a, out_b)) return -1;
  std::thread feeder([&] {  // the client: sends the file, then half-closes
    int f = open(path, O_RDONLY);
    if (f >= 0) splice::copy(in_a, f);
    if (f >= 0) close(f);
    shutdown(in_a, SHUT_WR);
  });
  long long received = 0;
  std::thread sink([&] {  // the server: counts what arrives
    char buf[64 * 1024];
    for (ssize_t n; (n = read(out_b, buf, sizeof buf)) > 0;) received += n;
  });
  const long long moved = relay(out_a, in_b);
  shutdown(out_a, SHUT_WR);
  feeder.join();
  sink.join();
  for (int fd : {in_a, in_b, out_a, out_b}) close(fd);
  return moved == received ? moved : -1;
}

// serve sends the file at path into one end of a new connection and counts what arrives at the other.
long long serve(const char* path, long long (*send_file)(int, int)) {
  int a, b;
  const int f = open(path, O_RDONLY | O_CLOEXEC);
  if (f < 0 || !connected_pair(a, b)) return -1;
  long long received = 0;
  std::thread client([&] {  // the client: counts what arrives
    char buf[64 * 1024];
    for (ssize_t n; (n = read(b, buf, sizeof buf)) > 0;) received += n;
  });
  const long long sent = send_file(a, f);
  shutdown(a, SHUT_WR);
  client.join();
  for (int fd : {a, b, f}) close(fd);
  return sent == received ? sent : -1;
}
}  // namespace

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "/proc/self/exe";
  const long long before = run(path, relay_before), after = run(path, relay_after);
  std::printf("socket -> socket: read/write loop moved %lld bytes; splice::copy moved %lld bytes\n", before, after);
  const long long sent_before = serve(path, send_file_before), sent_after = serve(path, send_file_after);
  std::printf("file -> socket: read/send loop sent %lld bytes; splice::copy sent %lld bytes\n", sent_before,
              sent_after);
  return before >= 0 && before == after && sent_before >= 0 && sent_before == sent_after ? 0 : 1;
}
