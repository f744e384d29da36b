// SPDX-License-Identifier: MIT
// epoll_proxy: one thread, one edge-triggered epoll loop, thousands of connections, each relayed by
// two resumable copiers (client -> upstream and upstream -> client).
//   epoll_proxy LISTEN_HOST:PORT UPSTREAM_HOST:PORT [--userspace] [--idle-timeout SECONDS] [--max-conns N]
// Past --max-conns (default 1024) it stops accepting; new connections wait in the listen backlog.
#include <chrono>
#include <memory>
#include <unordered_map>
#include <vector>

#include <sys/epoll.h>

#include <splice/splice.hpp>

#include "net.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

struct connection {
  connection(unsigned long i, std::string p, int c, int u, const splice::options& opt)
      : id(i), peer(std::move(p)), client(c), upstream(u), up(u, c, splice::no_limit, opt),
        down(c, u, splice::no_limit, opt) {}
  unsigned long id;
  std::string peer;
  int client, upstream;
  splice::copier<> up, down;  // up: client -> upstream; down: upstream -> client
  splice::step s_up = splice::step::read, s_down = splice::step::read;
  bool up_ended = false, down_ended = false;
  std::error_code error;
  const char* op = "";
  clock_type::time_point last = clock_type::now();
};

class proxy_loop {
 public:
  explicit proxy_loop(const example::settings& cfg) : cfg_(cfg) {
    opt_.userspace = cfg.userspace;
  }

  int run() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    const int stop = example::stop_signals();
    listener_ = example::listen_on(cfg_.listen, SOCK_NONBLOCK);
    if (ep_ < 0 || stop < 0 || listener_ < 0) return 1;
    watch(listener_, EPOLLIN | EPOLLET, &listener_);
    watch(stop, EPOLLIN, &stop_tag_);
    epoll_event events[256];
    for (bool stopping = false; !stopping;) {
      const int n = epoll_wait(ep_, events, 256, cfg_.idle_timeout_s > 0 ? 1000 : -1);
      if (n < 0 && errno != EINTR) break;
      splice::sigpipe_scope scope;  // one for the whole batch of advances
      for (int i = 0; i < n; ++i) {
        void* tag = events[i].data.ptr;
        if (tag == &stop_tag_) {
          stopping = true;
        } else if (tag == &listener_) {
          accept_all(scope);
        } else {
          auto* c = static_cast<connection*>(tag);
          if (conns_.count(c)) drive(*c, scope);  // a connection closed earlier in this batch is gone
        }
      }
      if (cfg_.idle_timeout_s > 0) expire(scope);
    }
    close(listener_);
    listener_ = -1;  // no more accepts while the connections end
    end_where([](const connection&) { return true; }, std::make_error_code(std::errc::operation_canceled),
              "shutdown");
    example::print_pool();
    std::printf("stopped\n");
    return 0;
  }

 private:
  void watch(int fd, std::uint32_t events, void* tag) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = tag;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }

  // accept_all accepts until the backlog is empty or the connection limit is reached. With edge
  // triggering a backlog left behind gives no new event, so a closing connection calls this again.
  void accept_all(splice::sigpipe_scope& scope) {
    while (conns_.size() < std::size_t(cfg_.max_conns)) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      const int client = accept4(listener_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) return;  // EAGAIN: empty; EMFILE/ENFILE: retried when a connection closes
      const std::string peer = example::to_string(reinterpret_cast<sockaddr*>(&ss));
      const int upstream = example::connect_to(cfg_.upstream, SOCK_NONBLOCK);
      if (upstream < 0) {
        example::log_connection(++next_id_, peer, 0, 0, false, {errno, std::system_category()}, "connect");
        close(client);
        continue;
      }
      // The copiers can start while the connect is in progress: the kernel says EAGAIN until it is
      // done, and the connect's error, if any, comes back from the first read or write.
      auto c = std::make_unique<connection>(++next_id_, peer, client, upstream, opt_);
      connection* p = c.get();
      conns_.emplace(p, std::move(c));
      watch(client, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, p);
      watch(upstream, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, p);
      drive(*p, scope);
    }
  }

  // drive advances both directions of c as far as they go. Every advance runs until EAGAIN, so the
  // next change of readiness is an edge that epoll reports.
  void drive(connection& c, splice::sigpipe_scope& scope) {
    c.last = clock_type::now();
    while (c.s_up != splice::step::done && (c.s_up = c.up.advance(scope)) == splice::step::again) {
    }
    while (c.s_down != splice::step::done && (c.s_down = c.down.advance(scope)) == splice::step::again) {
    }
    settle(c, c.up, c.s_up, c.up_ended, c.upstream);
    settle(c, c.down, c.s_down, c.down_ended, c.client);
    if (c.error) {
      end(c, c.error, c.op);
    } else if (c.up_ended && c.down_ended) {
      end(c, {}, "");
    }
  }

  // settle handles one direction that has just ended: end of file is passed on with a half-close,
  // an error is kept as the connection's first.
  static void settle(connection& c, splice::copier<>& d, splice::step s, bool& ended, int dst) {
    if (s != splice::step::done || ended) return;
    ended = true;
    if (!d.result().error) {
      shutdown(dst, SHUT_WR);
    } else if (!c.error) {
      c.error = d.result().error;
      c.op = d.result().op;
    }
  }

  void expire(splice::sigpipe_scope&) {
    const auto now = clock_type::now();
    end_where([&](const connection& c) { return now - c.last > std::chrono::seconds(cfg_.idle_timeout_s); },
              std::make_error_code(std::errc::timed_out), "idle");
  }

  // end_where ends every connection that pred picks. They are picked first and ended after, since
  // ending one may accept others, which changes the map.
  template <class Pred>
  void end_where(Pred pred, std::error_code ec, const char* op) {
    std::vector<connection*> doomed;
    for (auto& [p, c] : conns_)
      if (pred(*c)) doomed.push_back(p);
    for (connection* p : doomed)
      if (conns_.count(p)) end(*p, ec, op);
  }

  // end stops both directions, logs the connection, closes its fds and forgets it.
  void end(connection& c, std::error_code ec, const char* op) {
    c.up.stop(ec, op);
    c.down.stop(ec, op);
    example::log_connection(c.id, c.peer, c.up.result().bytes, c.down.result().bytes,
                            c.up.result().spliced || c.down.result().spliced, ec, op);
    close(c.client);  // closing removes the fd from the epoll set
    close(c.upstream);
    const bool was_full = conns_.size() >= std::size_t(cfg_.max_conns);
    conns_.erase(&c);
    if (was_full && listener_ >= 0) {
      splice::sigpipe_scope scope;
      accept_all(scope);
    }
  }

  example::settings cfg_;
  splice::options opt_;
  int ep_ = -1, listener_ = -1;
  int stop_tag_ = 0;
  unsigned long next_id_ = 0;
  std::unordered_map<connection*, std::unique_ptr<connection>> conns_;
};

}  // namespace

int main(int argc, char** argv) { return proxy_loop(example::parse(argc, argv)).run(); }
