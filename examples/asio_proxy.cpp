// SPDX-License-Identifier: MIT
// asio_proxy: a TCP proxy on standalone asio and C++20 coroutines. Each connection is one coroutine
// on its own strand: connect upstream, then one co_await splice::async_proxy(...). --userspace runs
// the same proxy with the relay it replaces: async_read_some and async_write through a buffer.
//   asio_proxy LISTEN_HOST:PORT UPSTREAM_HOST:PORT [--userspace] [--idle-timeout SECONDS] [--threads N]
//              [--max-conns N] [--max-splice BYTES] [--max-advance BYTES] [--accept-proxy]
//              [--send-proxy | --send-proxy-v2] [--proxy-timeout SECONDS]
//              [--metrics HOST:PORT] [--drain-timeout SECONDS] [--rate BYTES_PER_S]
//              [--rate-total BYTES_PER_S] [--rate-burst BYTES] [--mirror HOST:PORT]
//              [--mirror-down HOST:PORT] [--mirror-file PATH] [--mirror-lag BYTES]
// Mirrors (not with --userspace) are opened per connection and serviced by async_proxy, which waits
// on their fds too.
// --threads N runs one io_context on N threads (default: one per CPU the process may run on, as
// sched_getaffinity says). Past --max-conns (default 1024) it stops accepting; new connections wait
// in the listen backlog. --accept-proxy reads the client's PROXY
// header with co_await splice::async_read_proxy_header before connecting upstream; --send-proxy(-v2)
// writes one upstream with async_write before the relay starts.
// SIGTERM or SIGINT stops it gracefully: the queued connections are taken and the acceptor closed,
// async_proxy watches the drain (the relay's timer cuts at its deadline), and run() returns with
// the last connection: exit status 0, or 1 when --drain-timeout (30 s) or a second signal cut
// some. --rate and --rate-total: net.hpp's limits, one bucket per direction of each connection.
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#include <splice/asio.hpp>

#include "metrics_http.hpp"
#include "net.hpp"

namespace {

using asio::ip::tcp;
using asio::use_awaitable;
using asio::experimental::as_tuple;
using namespace asio::experimental::awaitable_operators;
using clock_type = std::chrono::steady_clock;

/// One client connection and its upstream, both on the connection's strand, and its rate limits.
struct connection {
  connection(tcp::socket c, example::limits& l) : client(std::move(c)), upstream(client.get_executor()), rates(l) {}
  tcp::socket client, upstream;
  example::connection_rates rates;
  bool cut = false;  // --userspace: closed by the drain's deadline (on the strand)
};

/// The relay asio_proxy --userspace runs: what splice::async_proxy replaces. first_error keeps the
/// error of the direction that failed first; the other one is then cancelled.
struct userspace_relay {
  std::uint64_t up = 0, down = 0;
  std::error_code first_error;
  const char* op = "";
  clock_type::time_point last = clock_type::now();

  asio::awaitable<void> one_way(tcp::socket& from, tcp::socket& to, std::uint64_t& bytes) {
    std::vector<char> buf(64 << 10);
    for (;;) {
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
      if (ec == asio::error::eof) break;
      if (ec) fail(ec, "read");
      auto [wec, w] = co_await asio::async_write(to, asio::buffer(buf.data(), n), as_tuple(use_awaitable));
      bytes += w;
      if (wec) fail(wec, "write");
      last = clock_type::now();
    }
    std::error_code ignored;
    to.shutdown(tcp::socket::shutdown_send, ignored);  // pass the end of file on
  }

  // fail records the first error and throws, so that && cancels the other direction.
  void fail(std::error_code ec, const char* what) {
    if (!first_error) first_error = ec, op = what;
    throw std::system_error(ec);
  }

  asio::awaitable<void> idle(std::chrono::seconds limit) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (clock_type::now() - last < limit) {
      timer.expires_at(last + limit);
      co_await timer.async_wait(as_tuple(use_awaitable));
    }
    if (!first_error) first_error = std::make_error_code(std::errc::timed_out), op = "idle";
  }

  asio::awaitable<void> run(connection& c, int idle_timeout_s) {
    try {
      if (idle_timeout_s > 0) {
        co_await ((one_way(c.client, c.upstream, up) && one_way(c.upstream, c.client, down)) ||
                  idle(std::chrono::seconds(idle_timeout_s)));
      } else {
        co_await (one_way(c.client, c.upstream, up) && one_way(c.upstream, c.client, down));
      }
    } catch (const std::exception&) {
      // first_error says which direction failed and how; when both failed (the other one on being
      // cancelled), && throws multiple_exceptions
    }
  }
};

class proxy {
 public:
  proxy(asio::io_context& ctx, const example::settings& cfg, tcp::endpoint upstream, tcp::acceptor acceptor,
        example::mirror_targets mirror_to)
      : ctx_(ctx), cfg_(cfg), upstream_(upstream), mirror_to_(std::move(mirror_to)), acceptor_(std::move(acceptor)),
        room_(acceptor_.get_executor()), cut_timer_(acceptor_.get_executor()), signals_(ctx, SIGINT, SIGTERM),
        limits_(cfg) {
    example::apply(cfg, opt_.copy);
    opt_.idle_timeout = cfg.idle_timeout_s > 0 ? std::chrono::milliseconds(cfg.idle_timeout_s * 1000)
                                               : std::chrono::milliseconds(-1);
    opt_.drain = &drain_;
  }

  void start() {
    asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
    wait_signal();
  }

  /// Returns the exit status once run() has returned: 0, or 1 when the drain cut connections.
  int exit_status() const { return example::exit_status(cut_); }

 private:
  // accept_loop runs on the acceptor's strand; room_ is its condition variable: a timer that never
  // expires, cancelled when a connection ends.
  asio::awaitable<void> accept_loop() {
    for (;;) {
      while (live_ >= cfg_.max_conns && acceptor_.is_open()) {
        room_.expires_at(asio::steady_timer::time_point::max());
        co_await room_.async_wait(as_tuple(use_awaitable));
      }
      auto [ec, sock] = co_await acceptor_.async_accept(asio::make_strand(ctx_), as_tuple(use_awaitable));
      if (!acceptor_.is_open()) co_return;
      if (ec) {  // EMFILE and friends: try again when a connection ends, or in 100 ms
        room_.expires_after(std::chrono::milliseconds(100));
        co_await room_.async_wait(as_tuple(use_awaitable));
        continue;
      }
      admit(std::move(sock));
    }
  }

  // admit serves an accepted connection on its own strand.
  void admit(tcp::socket sock) {
    auto c = std::make_shared<connection>(std::move(sock), limits_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      conns_.insert(c);
    }
    ++live_;
    asio::co_spawn(c->client.get_executor(), serve(c, ++next_id_), asio::detached);
  }

  // wait_signal waits for SIGINT or SIGTERM: each is a drain request (the first: finish within
  // --drain-timeout; the next: now), handled on the acceptor's strand, then it waits again.
  void wait_signal() {
    signals_.async_wait([this](std::error_code ec, int signo) {
      if (!ec) asio::post(acceptor_.get_executor(), [this, signo] { stop(signo); });
    });
  }

  // serve reads the client's PROXY header (--accept-proxy), connects upstream, writes a header
  // there (--send-proxy, --send-proxy-v2) and relays; a bad or late header closes the client
  // before anything is connected or sent.
  asio::awaitable<void> serve(std::shared_ptr<connection> c, unsigned long id) {
    std::error_code ignored;
    const auto peer = c->client.remote_endpoint(ignored);
    std::string who = example::to_string(peer.data()), header;
    if (cfg_.accept_proxy) {
      auto [hec, in] = co_await splice::async_read_proxy_header(c->client, cfg_.proxy_timeout, as_tuple(use_awaitable));
      if (hec) {
        example::log_refused(id, who, in);
        finish(c);
        co_return;
      }
      who = example::peer_of(who, in.header());
      header = example::upstream_header(cfg_, c->client.native_handle(), &in.header());
    } else {
      header = example::upstream_header(cfg_, c->client.native_handle(), nullptr);
    }
    auto [ec] = co_await c->upstream.async_connect(upstream_, as_tuple(use_awaitable));
    const char* op = "connect";
    if (!ec && !header.empty()) {
      std::tie(ec, std::ignore) = co_await asio::async_write(c->upstream, asio::buffer(header), as_tuple(use_awaitable));
      op = "send";
    }
    if (ec) {
      example::log_connection(id, who, 0, 0, false, ec, op);
    } else {
      if (cfg_.userspace) {  // async_proxy sets TCP_NODELAY itself (proxy_options::nodelay)
        c->client.set_option(tcp::no_delay(true), ignored);
        c->upstream.set_option(tcp::no_delay(true), ignored);
        userspace_relay relay;
        co_await relay.run(*c, cfg_.idle_timeout_s);
        if (c->cut) ++cut_, relay.first_error = std::make_error_code(std::errc::timed_out), relay.op = "drain";
        example::log_connection(id, who, relay.up, relay.down, false, relay.first_error, relay.op,
                                "option");
      } else {
        const example::mirrors mirrors = example::open_mirrors(mirror_to_, id);
        const splice::proxy_options opt = mirrors.attach(c->rates.apply(opt_));
        auto [pec, r] = co_await splice::async_proxy(c->client, c->upstream, opt, as_tuple(use_awaitable));
        if (example::was_cut(r)) ++cut_;
        example::log_connection(id, who, r);
        example::log_mirrors(id, mirrors);
      }
    }
    finish(c);
  }

  // finish closes a connection's sockets, forgets it, and lets the accept loop take another.
  void finish(const std::shared_ptr<connection>& c) {
    std::error_code ignored;
    c->client.close(ignored);
    c->upstream.close(ignored);
    {
      std::lock_guard<std::mutex> lock(mu_);
      conns_.erase(c);
    }
    --live_;
    asio::post(acceptor_.get_executor(), [this] {
      room_.cancel();
      if (draining_ && live_ == 0) finish();
    });
  }

  // stop runs on the acceptor's strand for each signal. The first takes the connections queued on
  // the listener (their clients see them open) and closes it, so new ones are refused, and asks the
  // drain to finish within --drain-timeout; a later one asks it to end now. async_proxy honours the
  // drain itself; the cut timer closes the --userspace relays still open at the deadline.
  void stop(int signo) {
    example::request_drain(drain_, cfg_.drain_timeout_s, signo);
    if (!draining_) {
      draining_ = true;
      std::error_code ec;
      acceptor_.non_blocking(true, ec);
      while (!ec) {
        tcp::socket sock = acceptor_.accept(asio::make_strand(ctx_), ec);
        if (!ec) admit(std::move(sock));
      }
      acceptor_.close(ec);
      room_.cancel();
    }
    if (live_ == 0) return finish();
    wait_signal();
    cut_timer_.expires_at(drain_.deadline());
    cut_timer_.async_wait([this](std::error_code ec) {
      if (!ec) cut_userspace();
    });
  }

  // cut_userspace closes the sockets of the --userspace relays still running at the drain's deadline.
  void cut_userspace() {
    if (!cfg_.userspace) return;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : conns_) {
      asio::post(c->client.get_executor(), [c] {
        std::error_code ignored;
        c->cut = true;
        c->client.close(ignored);
        c->upstream.close(ignored);
      });
    }
  }

  // finish runs on the acceptor's strand once the drain has left no connection: with the signal
  // wait and the cut timer gone, run() returns on every thread.
  void finish() {
    signals_.cancel();
    cut_timer_.cancel();
  }

  asio::io_context& ctx_;
  example::settings cfg_;
  tcp::endpoint upstream_;
  example::mirror_targets mirror_to_;
  tcp::acceptor acceptor_;
  asio::steady_timer room_;
  asio::steady_timer cut_timer_;  // the drain's deadline, for the --userspace relays
  asio::signal_set signals_;
  splice::drain drain_;
  example::limits limits_;
  splice::proxy_options opt_;
  bool draining_ = false;  // on the acceptor's strand
  std::atomic<unsigned long> cut_{0};
  std::atomic<int> live_{0};
  unsigned long next_id_ = 0;
  std::mutex mu_;
  std::set<std::shared_ptr<connection>> conns_;
};

}  // namespace

int main(int argc, char** argv) {
  const example::settings cfg = example::parse(argc, argv);
  const int threads = cfg.threads;
  addrinfo* up = example::resolve(cfg.upstream, false);
  if (!up) return 1;
  tcp::endpoint upstream;
  upstream.resize(up->ai_addrlen);
  std::memcpy(upstream.data(), up->ai_addr, up->ai_addrlen);
  freeaddrinfo(up);
  example::mirror_targets mirror_to;
  if (!example::resolve_mirrors(cfg, mirror_to)) return 1;

  asio::io_context ctx(threads);
  const int fd = example::listen_on(cfg.listen);
  if (fd < 0) return 1;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  tcp::acceptor acceptor(asio::make_strand(ctx), ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd);

  example::metrics_server metrics;  // --metrics: GET /metrics on a thread of its own
  if (!cfg.metrics.empty() && !metrics.start(cfg.metrics)) return 1;
  proxy p(ctx, cfg, upstream, std::move(acceptor), mirror_to);
  p.start();
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { ctx.run(); });
  ctx.run();
  for (auto& t : pool) t.join();
  metrics.stop();
  example::print_pool();
  std::printf("stopped\n");
  return p.exit_status();
}
