// SPDX-License-Identifier: MIT
// tcp_proxy: the simplest use of the library. One thread per connection: accept, connect upstream,
// splice::proxy until both directions end, close, log one line. splice::proxy sets TCP_NODELAY on
// both sockets (proxy_options::nodelay).
//   tcp_proxy LISTEN_HOST:PORT UPSTREAM_HOST:PORT [--userspace] [--idle-timeout SECONDS]
//             [--max-splice BYTES] [--max-advance BYTES] [--accept-proxy]
//             [--send-proxy | --send-proxy-v2] [--proxy-timeout SECONDS]
//             [--metrics HOST:PORT] [--drain-timeout SECONDS]
//             [--rate BYTES_PER_S] [--rate-total BYTES_PER_S] [--rate-burst BYTES]
//             [--mirror HOST:PORT] [--mirror-down HOST:PORT] [--mirror-file PATH] [--mirror-lag BYTES]
// --accept-proxy reads the client's PROXY header (v1 or v2) with the blocking read_proxy_header in
// the connection's thread, before connecting upstream; a bad or late one closes the client and is
// logged. --send-proxy(-v2) writes a header upstream before the relay starts.
// SIGTERM or SIGINT stops it gracefully: the listener closes at once (what was queued is served
// first), the connections in flight go on, and it exits when the last one ends: 0, or 1 when
// --drain-timeout (30 s) or a second signal cut some. --rate bounds each direction of each
// connection, --rate-total all connections together, per direction, shared fairly.
// With mirrors, each connection's thread opens its own (example::open_mirrors) and splice::proxy
// services them beside the two sockets; a mirror that falls behind or fails is cut, alone.
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

#include <poll.h>
#include <sys/eventfd.h>

#include <splice/splice.hpp>

#include "metrics_http.hpp"
#include "net.hpp"

int main(int argc, char** argv) {
  const example::settings cfg = example::parse(argc, argv, false);
  const int stop = example::stop_signals();  // before any thread starts: all inherit the mask
  // Non-blocking, so that an accept after poll said readable cannot block the stop path when the
  // client has gone meanwhile.
  int listener = example::listen_on(cfg.listen, SOCK_NONBLOCK);
  example::address upstream_at;
  example::mirror_targets mirror_to;
  const int ended = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);  // a connection thread ended
  if (listener < 0 || stop < 0 || ended < 0 || !example::resolve_to(cfg.upstream, upstream_at) ||
      !example::resolve_mirrors(cfg, mirror_to))
    return 1;
  example::metrics_server metrics;  // --metrics: GET /metrics on a thread of its own
  if (!cfg.metrics.empty() && !metrics.start(cfg.metrics)) return 1;

  splice::drain drain;
  example::limits limits(cfg);
  splice::proxy_options opt;
  example::apply(cfg, opt.copy);
  if (cfg.idle_timeout_s > 0) opt.idle_timeout = std::chrono::seconds(cfg.idle_timeout_s);
  opt.drain = &drain;

  std::mutex mu;
  std::map<int, int> live;  // client fd -> upstream fd (-1 until connected)
  std::atomic<unsigned long> cut{0};  // connections the drain cut
  unsigned long next_id = 0;

  // serve accepts one connection and relays it on a thread of its own; false when none was queued.
  // wait_ms says how long to leave the listener alone: -1 (wait for it), or 100 after a failure
  // for want of fds, while it would say readable at once, every time.
  const auto serve = [&](int& wait_ms) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const int client = accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (client < 0) {
      wait_ms = errno == EAGAIN || errno == ECONNABORTED || errno == EINTR ? -1 : 100;  // EMFILE, ENFILE, ENOBUFS
      return errno == ECONNABORTED || errno == EINTR;
    }
    wait_ms = -1;
    const unsigned long id = ++next_id;
    const std::string who = example::to_string(reinterpret_cast<sockaddr*>(&peer));
    std::lock_guard<std::mutex> lock(mu);
    live[client] = -1;
    try {
      std::thread([&, client, id, who] {
        splice::proxy_result r;
        example::connection_rates rates(limits);
        std::string peer = who, header;  // header: what goes upstream before the client's bytes
        int upstream = -1;
        bool go = true;
        if (cfg.accept_proxy) {  // the blocking form: this thread has nothing else to do meanwhile
          const splice::proxy_header_reader<> in = splice::read_proxy_header(client, cfg.proxy_timeout);
          if (in.error()) example::log_refused(id, who, in);
          else peer = example::peer_of(who, in.header()), header = example::upstream_header(cfg, client, &in.header());
          go = !in.error();
        } else {
          header = example::upstream_header(cfg, client, nullptr);
        }
        if (go && (upstream = example::connect_to(upstream_at)) < 0) {
          r.error = std::error_code(errno, std::system_category());
          r.op = "connect";
          go = false;
        } else if (go) {
          std::lock_guard<std::mutex> lock(mu);
          live[client] = upstream;
        }
        if (go && !example::send_all(upstream, header)) {
          r.error = std::error_code(errno, std::system_category());
          r.op = "send";
          go = false;
        }
        example::mirrors mirrors;
        if (go) mirrors = example::open_mirrors(mirror_to, id);
        if (go) r = splice::proxy(client, upstream, mirrors.attach(rates.apply(opt)));  // a drain requested already applies at once
        if (example::was_cut(r)) ++cut;
        if (upstream >= 0 || r.error) example::log_connection(id, peer, r);
        example::log_mirrors(id, mirrors);
        std::lock_guard<std::mutex> lock(mu);  // closed under the lock: the stop path may not cut a reused fd
        live.erase(client);
        if (upstream >= 0) close(upstream);
        close(client);
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = write(ended, &one, sizeof one);  // the main thread counts again
      }).detach();
    } catch (const std::system_error& e) {
      // No thread to be had (EAGAIN: the thread or memory limit): refuse this one, serve the next.
      example::log_connection(id, who, 0, 0, false, e.code(), "thread");
      live.erase(client);
      close(client);
    }
    return true;
  };

  for (int wait_ms = -1;;) {
    pollfd fds[2] = {{listener, POLLIN, 0}, {stop, POLLIN, 0}};
    // After a failed accept only the stop signal is watched, for 100 ms.
    if (poll(wait_ms < 0 ? fds : fds + 1, wait_ms < 0 ? 2 : 1, wait_ms) < 0 && errno != EINTR) break;
    if (example::on_signal(stop, drain, cfg.drain_timeout_s)) break;
    serve(wait_ms);
  }
  if (!drain.requested()) drain.request(std::chrono::steady_clock::now() + std::chrono::seconds(cfg.drain_timeout_s));
  // A graceful stop: the connections already queued are taken (their clients see them open), then
  // the listener closes and new ones are refused. Those in flight go on until they end, the drain's
  // deadline or a second signal cuts them (proxy() watches the drain), and the last one out ends
  // the wait.
  for (int wait_ms = -1; serve(wait_ms);) {
  }
  close(listener);
  listener = -1;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (live.empty()) break;
    }
    pollfd fds[2] = {{stop, POLLIN, 0}, {ended, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    example::on_signal(stop, drain, cfg.drain_timeout_s);
    std::uint64_t count;
    [[maybe_unused]] const ssize_t n = read(ended, &count, sizeof count);
  }
  metrics.stop();
  example::print_pool();
  std::printf("stopped\n");
  return example::exit_status(cut);
}
