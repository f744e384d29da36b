// SPDX-License-Identifier: MIT
// tcp_proxy: the simplest use of the library. One thread per connection: accept, connect upstream,
// splice::proxy until both directions end, close, log one line. splice::proxy sets TCP_NODELAY on
// both sockets (proxy_options::nodelay).
//   tcp_proxy LISTEN_HOST:PORT UPSTREAM_HOST:PORT [--userspace] [--idle-timeout SECONDS]
//             [--max-splice BYTES] [--max-advance BYTES] [--mirror HOST:PORT] [--mirror-down HOST:PORT]
//             [--mirror-file PATH] [--mirror-lag BYTES]
// With mirrors, each connection's thread opens its own (example::open_mirrors) and splice::proxy
// services them beside the two sockets; a mirror that falls behind or fails is cut, alone.
#include <condition_variable>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

#include <poll.h>

#include <splice/splice.hpp>

#include "net.hpp"

int main(int argc, char** argv) {
  const example::settings cfg = example::parse(argc, argv);
  const int stop = example::stop_signals();  // before any thread starts: all inherit the mask
  // Non-blocking, so that an accept after poll said readable cannot block the stop path when the
  // client has gone meanwhile.
  const int listener = example::listen_on(cfg.listen, SOCK_NONBLOCK);
  example::address upstream_at;
  example::mirror_targets mirror_to;
  if (listener < 0 || stop < 0 || !example::resolve_to(cfg.upstream, upstream_at) || !example::resolve_mirrors(cfg, mirror_to))
    return 1;

  splice::proxy_options opt;
  example::apply(cfg, opt.copy);
  if (cfg.idle_timeout_s > 0) opt.idle_timeout = std::chrono::seconds(cfg.idle_timeout_s);

  std::mutex mu;
  std::condition_variable idle;
  std::map<int, int> live;  // client fd -> upstream fd (-1 until connected), to cut them at shutdown
  bool stopping = false;
  unsigned long next_id = 0;

  for (int wait_ms = -1;;) {
    pollfd fds[2] = {{listener, POLLIN, 0}, {stop, POLLIN, 0}};
    // After a failed accept only the stop signal is watched, for 100 ms: the listener would say
    // readable at once, every time, while the queued connection waits for an fd.
    if (poll(wait_ms < 0 ? fds : fds + 1, wait_ms < 0 ? 2 : 1, wait_ms) < 0 && errno != EINTR) break;
    if (fds[1].revents) break;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const int client = accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (client < 0) {
      wait_ms = errno == EAGAIN || errno == ECONNABORTED || errno == EINTR ? -1 : 100;  // EMFILE, ENFILE, ENOBUFS
      continue;
    }
    wait_ms = -1;
    const unsigned long id = ++next_id;
    const std::string who = example::to_string(reinterpret_cast<sockaddr*>(&peer));
    std::lock_guard<std::mutex> lock(mu);
    live[client] = -1;
    try {
      std::thread([&, client, id, who] {
        splice::proxy_result r;
        const int upstream = example::connect_to(upstream_at);
        bool go = upstream >= 0;
        if (!go) {
          r.error = std::error_code(errno, std::system_category());
          r.op = "connect";
        } else {
          std::lock_guard<std::mutex> lock(mu);
          live[client] = upstream;
          go = !stopping;
        }
        example::mirrors mirrors;
        if (go) mirrors = example::open_mirrors(mirror_to, id);
        if (go) r = splice::proxy(client, upstream, mirrors.attach(opt));
        example::log_connection(id, who, r);
        example::log_mirrors(id, mirrors);
        std::lock_guard<std::mutex> lock(mu);  // closed under the lock: the stop path may not cut a reused fd
        live.erase(client);
        if (upstream >= 0) close(upstream);
        close(client);
        idle.notify_all();
      }).detach();
    } catch (const std::system_error& e) {
      // No thread to be had (EAGAIN: the thread or memory limit): refuse this one, serve the next.
      example::log_connection(id, who, 0, 0, false, e.code(), "thread");
      live.erase(client);
      close(client);
    }
  }
  // Stop: no new connections; cut the running ones and wait until each has closed its fds.
  close(listener);
  std::unique_lock<std::mutex> lock(mu);
  stopping = true;
  for (auto [client, upstream] : live) {
    shutdown(client, SHUT_RDWR);
    if (upstream >= 0) shutdown(upstream, SHUT_RDWR);
  }
  idle.wait(lock, [&] { return live.empty(); });
  example::print_pool();
  std::printf("stopped\n");
  return 0;
}
