// SPDX-License-Identifier: MIT
// asio_proxy: a TCP proxy on standalone asio and C++20 coroutines. Each connection is one coroutine
// on its own strand: connect upstream, then one co_await splice::async_proxy(...). --userspace runs
// the same proxy with the relay it replaces: async_read_some and async_write through a buffer.
//   asio_proxy LISTEN_HOST:PORT UPSTREAM_HOST:PORT [--userspace] [--idle-timeout SECONDS] [--threads N]
//              [--max-conns N] [--max-splice BYTES] [--max-advance BYTES] [--mirror HOST:PORT]
//              [--mirror-down HOST:PORT] [--mirror-file PATH] [--mirror-lag BYTES]
// Mirrors (not with --userspace) are opened per connection and serviced by async_proxy, which waits
// on their fds too.
// --threads N runs one io_context on N threads (default 1). Past --max-conns (default 1024) it stops
// accepting; new connections wait in the listen backlog.
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

#include "net.hpp"

namespace {

using asio::ip::tcp;
using asio::use_awaitable;
using asio::experimental::as_tuple;
using namespace asio::experimental::awaitable_operators;
using clock_type = std::chrono::steady_clock;

/// One client connection and its upstream, both on the connection's strand.
struct connection {
  explicit connection(tcp::socket c) : client(std::move(c)), upstream(client.get_executor()) {}
  tcp::socket client, upstream;
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
        room_(acceptor_.get_executor()), signals_(ctx, SIGINT, SIGTERM) {
    example::apply(cfg, opt_.copy);
    opt_.idle_timeout = cfg.idle_timeout_s > 0 ? std::chrono::milliseconds(cfg.idle_timeout_s * 1000)
                                               : std::chrono::milliseconds(-1);
  }

  void start() {
    asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
    signals_.async_wait([this](std::error_code ec, int) {
      if (!ec) asio::post(acceptor_.get_executor(), [this] { stop(); });
    });
  }

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
      auto c = std::make_shared<connection>(std::move(sock));
      {
        std::lock_guard<std::mutex> lock(mu_);
        conns_.insert(c);
      }
      ++live_;
      asio::co_spawn(c->client.get_executor(), serve(c, ++next_id_), asio::detached);
    }
  }

  asio::awaitable<void> serve(std::shared_ptr<connection> c, unsigned long id) {
    std::error_code ignored;
    const auto peer = c->client.remote_endpoint(ignored);
    const std::string who = example::to_string(peer.data());
    auto [ec] = co_await c->upstream.async_connect(upstream_, as_tuple(use_awaitable));
    if (ec) {
      example::log_connection(id, who, 0, 0, false, ec, "connect");
    } else {
      if (cfg_.userspace) {  // async_proxy sets TCP_NODELAY itself (proxy_options::nodelay)
        c->client.set_option(tcp::no_delay(true), ignored);
        c->upstream.set_option(tcp::no_delay(true), ignored);
        userspace_relay relay;
        co_await relay.run(*c, cfg_.idle_timeout_s);
        example::log_connection(id, who, relay.up, relay.down, false, relay.first_error, relay.op,
                                "option");
      } else {
        const example::mirrors mirrors = example::open_mirrors(mirror_to_, id);
        auto [pec, r] = co_await splice::async_proxy(c->client, c->upstream, mirrors.attach(opt_), as_tuple(use_awaitable));
        example::log_connection(id, who, r);
        example::log_mirrors(id, mirrors);
      }
    }
    c->client.close(ignored);
    c->upstream.close(ignored);
    {
      std::lock_guard<std::mutex> lock(mu_);
      conns_.erase(c);
    }
    --live_;
    asio::post(acceptor_.get_executor(), [this] { room_.cancel(); });
  }

  // stop runs on the acceptor's strand: no more accepts, and every open connection is cut on its own
  // strand. run() returns on every thread once the last connection has logged and closed.
  void stop() {
    std::error_code ignored;
    acceptor_.close(ignored);
    room_.cancel();
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : conns_) {
      asio::post(c->client.get_executor(), [c] {
        std::error_code ignored;
        c->client.close(ignored);
        c->upstream.close(ignored);
      });
    }
  }

  asio::io_context& ctx_;
  example::settings cfg_;
  tcp::endpoint upstream_;
  example::mirror_targets mirror_to_;
  tcp::acceptor acceptor_;
  asio::steady_timer room_;
  asio::signal_set signals_;
  splice::proxy_options opt_;
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

  proxy p(ctx, cfg, upstream, std::move(acceptor), mirror_to);
  p.start();
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { ctx.run(); });
  ctx.run();
  for (auto& t : pool) t.join();
  example::print_pool();
  std::printf("stopped\n");
  return 0;
}
