// SPDX-License-Identifier: MIT
// The example proxies' --metrics HOST:PORT: a small HTTP/1.1 server on a thread of its own that
// answers GET /metrics with splice::metrics::read().prometheus(), the Prometheus text format.
// Built to survive a bad client: at most max_clients at once (the rest wait in the backlog), a
// request of at most max_request bytes, and max_time for a whole exchange; every response closes
// its connection, so nothing waits on a client between requests.
#ifndef SPLICE_EXAMPLES_METRICS_HTTP_HPP_
#define SPLICE_EXAMPLES_METRICS_HTTP_HPP_

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <splice/splice.hpp>

#include "net.hpp"

namespace example {

/// metrics_server serves the process's metrics over HTTP until stop() or its destruction.
/// start() and stop() are for one thread (main); the server runs on its own.
class metrics_server {
 public:
  static constexpr std::size_t max_clients = 16;
  static constexpr std::size_t max_request = 8192;
  static constexpr std::chrono::seconds max_time{5};

  metrics_server() = default;
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;
  ~metrics_server() { stop(); }

  /// start listens on hostport, prints "metrics on HOST:PORT" (the real port when 0 was asked) and
  /// starts the server thread. false after printing why.
  bool start(const std::string& hostport) {
    addrinfo* ai = resolve(hostport, true);
    if (!ai) return false;
    listener_ = bind_listener(ai->ai_addr, ai->ai_addrlen, SOCK_NONBLOCK, false);
    freeaddrinfo(ai);
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (listener_ < 0 || wake_ < 0) return std::perror("metrics"), false;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&ss), &len);
    std::printf("metrics on %s\n", to_string(reinterpret_cast<sockaddr*>(&ss)).c_str());
    std::fflush(stdout);
    thread_ = std::thread([this] { run(); });
    return true;
  }

  /// stop ends the server thread and closes every fd it holds. Idempotent.
  void stop() {
    if (thread_.joinable()) {
      const std::uint64_t one = 1;
      [[maybe_unused]] const ssize_t w = write(wake_, &one, sizeof one);
      thread_.join();
    }
    for (int* fd : {&listener_, &wake_})
      if (*fd >= 0) close(*fd), *fd = -1;
  }

 private:
  using clock_type = std::chrono::steady_clock;
  // One client: what it sent so far, then the response and how much of it went out.
  struct client {
    int fd;
    clock_type::time_point deadline;
    std::string in, out;
    std::size_t sent = 0;
  };

  // run polls the wake-up fd, the listener (while there is room) and the clients, each until its
  // deadline; a client past its deadline is closed, answered or not.
  void run() {
    std::vector<client> clients;
    std::vector<pollfd> fds;
    for (;;) {
      const bool accepting = clients.size() < max_clients && clock_type::now() >= accept_after_;
      fds.assign({{wake_, POLLIN, 0}, {accepting ? listener_ : -1, POLLIN, 0}});
      auto next = accepting ? clock_type::time_point::max() : accept_after_;
      for (const client& c : clients) {
        fds.push_back({c.fd, short(c.out.empty() ? POLLIN : POLLOUT), 0});
        next = std::min(next, c.deadline);
      }
      const auto ms = next == clock_type::time_point::max()
                          ? -1
                          : std::clamp<long long>(std::chrono::ceil<std::chrono::milliseconds>(next - clock_type::now()).count(), 0, INT_MAX);
      if (poll(fds.data(), fds.size(), int(ms)) < 0 && errno != EINTR) {
        std::perror("metrics: poll");
        break;
      }
      if (fds[0].revents) break;
      for (std::size_t i = 0; i < clients.size(); ++i)
        if (fds[i + 2].revents) serve(clients[i]);
      if (fds[1].revents) accept_all(clients);
      const auto now = clock_type::now();
      clients.erase(std::remove_if(clients.begin(), clients.end(), [&](const client& c) {
                      const bool over = c.fd < 0 || now >= c.deadline;
                      if (over && c.fd >= 0) close(c.fd);
                      return over;
                    }),
                    clients.end());
    }
    for (const client& c : clients) close(c.fd);
  }

  // accept_all takes queued connections while there is room. A failure other than an empty queue
  // (out of fds) leaves the rest in the backlog and the listener unwatched for 100 ms: it stays
  // readable, and watching it would spin.
  void accept_all(std::vector<client>& clients) {
    while (clients.size() < max_clients) {
      const int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0 && errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        accept_after_ = clock_type::now() + std::chrono::milliseconds(100);
      if (fd < 0) return;
      clients.push_back({fd, clock_type::now() + max_time, {}, {}, 0});
    }
  }

  // serve reads the request until the blank line that ends its head, then writes the response and
  // closes. A client that closes early, fails or sends too much is closed (fd -1: dropped).
  void serve(client& c) {
    if (c.out.empty()) {
      char buf[2048];
      const ssize_t n = recv(c.fd, buf, std::min(sizeof buf, max_request - c.in.size()), 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (n <= 0) return drop(c);
      c.in.append(buf, std::size_t(n));
      if (c.in.find("\r\n\r\n") == std::string::npos && c.in.find("\n\n") == std::string::npos) {
        if (c.in.size() >= max_request) c.out = response("431 Request Header Fields Too Large", "request too large\n");
        else return;
      } else {
        c.out = answer(c.in);
      }
    }
    while (c.sent < c.out.size()) {
      const ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (n <= 0) return drop(c);
      c.sent += std::size_t(n);
    }
    shutdown(c.fd, SHUT_WR);
    drop(c);
  }

  static void drop(client& c) {
    close(c.fd);
    c.fd = -1;
  }

  // answer is the response to a request head: the metrics for GET (or HEAD) /metrics, else 404,
  // 405 or 400.
  static std::string answer(const std::string& head) {
    const std::string line = head.substr(0, head.find_first_of("\r\n"));
    const auto sp1 = line.find(' '), sp2 = line.find(' ', sp1 == std::string::npos ? 0 : sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos || line.compare(sp2 + 1, 5, "HTTP/") != 0)
      return response("400 Bad Request", "bad request\n");
    const std::string method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (method != "GET" && method != "HEAD") return response("405 Method Not Allowed", "GET only\n", "Allow: GET, HEAD\r\n");
    if (target != "/metrics" && target.rfind("/metrics?", 0) != 0) return response("404 Not Found", "try /metrics\n");
    std::string body;
    try {
      body = splice::metrics::read().prometheus();
    } catch (const std::bad_alloc&) {
      return response("500 Internal Server Error", "out of memory\n");
    }
    std::string r = response("200 OK", body, "", "text/plain; version=0.0.4; charset=utf-8");
    if (method == "HEAD") r.resize(r.size() - body.size());
    return r;
  }

  static std::string response(const char* status, const std::string& body, const char* extra = "",
                              const char* type = "text/plain; charset=utf-8") {
    return std::string("HTTP/1.1 ") + status + "\r\nContent-Type: " + type +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "Connection: close\r\n\r\n" + body;
  }

  int listener_ = -1, wake_ = -1;
  std::thread thread_;
  clock_type::time_point accept_after_{};  // the listener is not watched before then (see accept_all)
};

}  // namespace example

#endif  // SPLICE_EXAMPLES_METRICS_HTTP_HPP_
