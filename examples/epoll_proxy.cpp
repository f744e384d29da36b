// SPDX-License-Identifier: MIT
// epoll_proxy: edge-triggered epoll loops, thousands of connections each, every connection relayed
// by two resumable copiers (client -> upstream and upstream -> client).
//   epoll_proxy LISTEN_HOST:PORT UPSTREAM_HOST:PORT [--userspace] [--idle-timeout SECONDS]
//               [--max-conns N] [--threads N] [--max-splice BYTES] [--max-advance BYTES]
//               [--mirror HOST:PORT] [--mirror-down HOST:PORT] [--mirror-file PATH] [--mirror-lag BYTES]
// A connection's mirror sockets are watched in the same epoll set, edge-triggered, and drive the
// duplex with its mirror ready bits; a connection whose mirror finishes waits on the duplex's
// wake_at() (the mirror's linger) in a short list of timed connections.
// --threads N (default 1) runs N loops, each on its own thread with its own epoll and its own
// SO_REUSEPORT listener on the same address; they share the pipe pool. Past --max-conns (default
// 1024, counted for the whole process) the loops stop accepting and new connections wait in the
// backlog. SO_REUSEPORT ties each queued connection to one loop's listener, so a loop that stops
// accepting leaves its own queue waiting, even while another loop could take it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <list>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <splice/splice.hpp>

#include "net.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

struct connection;

// An fd of a connection, as epoll names it: which connection, and which of its fds.
enum class fd_kind { client, upstream, mirror_up, mirror_down };
struct side {
  connection* c;
  fd_kind kind;

  // bits are the duplex's ready bits for epoll events on this fd.
  unsigned bits(std::uint32_t ev) const {
    if (kind == fd_kind::client || kind == fd_kind::upstream) return splice::ready::of(kind == fd_kind::client, ev);
    return splice::ready::of_mirror(kind == fd_kind::mirror_up, ev);
  }
};

// A connection is a duplex (the library's proxy rules: half-close, first error, what to wait for)
// between the client (its fd a) and the upstream (b).
struct connection {
  connection(unsigned long i, std::string p, int c, int u, const splice::proxy_options& opt, example::mirrors m)
      : id(i), peer(std::move(p)), client(c), upstream(u), mirrors(std::move(m)), relay(c, u, mirrors.attach(opt)),
        client_side{this, fd_kind::client}, upstream_side{this, fd_kind::upstream},
        mirror_sides{{this, fd_kind::mirror_up}, {this, fd_kind::mirror_down}} {}
  unsigned long id;
  std::string peer;
  int client, upstream;
  example::mirrors mirrors;  // before relay, which refers to them
  splice::duplex<> relay;
  side client_side, upstream_side, mirror_sides[2];
  bool queued = false;  // on the ready queue
  bool timed = false;   // on the timed list: relay.wake_at() is set
  bool ended = false;   // fds closed; freed at the end of the round
  clock_type::time_point last;           // last activity
  std::list<connection>::iterator self;  // its place in the loop's list, ordered by last activity
};

class proxy_loop;

// What the loops share: the settings, the connection count for --max-conns, the stop flag.
struct process {
  example::settings cfg;
  example::address upstream;
  example::mirror_targets mirror_to;
  std::atomic<int> conns{0};
  std::atomic<unsigned long> next_id{0};
  std::atomic<bool> stopping{false};
  std::vector<std::unique_ptr<proxy_loop>> loops;
};

class proxy_loop {
 public:
  proxy_loop(process& p, int listener) : p_(p), listener_(listener) {
    example::apply(p.cfg, opt_.copy);
    idle_ = std::chrono::seconds(p.cfg.idle_timeout_s);
  }
  ~proxy_loop() {
    for (int fd : {ep_, wake_, spare_, listener_})
      if (fd >= 0) close(fd);
  }

  /// open makes the epoll instance and registers the listener and the wake-up eventfd.
  bool open() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    spare_ = example::socket_for(p_.upstream, SOCK_NONBLOCK);
    if (ep_ < 0 || wake_ < 0 || spare_ < 0 || !watch(listener_, EPOLLIN | EPOLLET, &listener_) || !watch(wake_, EPOLLIN, &wake_)) {
      std::perror("epoll_proxy");
      return false;
    }
    return true;
  }

  /// wake makes the loop look at the stop flag and the connection limit again. Any thread.
  void wake() {
    const std::uint64_t one = 1;
    // It fails only with EAGAIN, when the counter is so high that the loop wakes anyway.
    [[maybe_unused]] const ssize_t r = write(wake_, &one, sizeof one);
  }

  /// wake_if_waiting wakes the loop if it stopped accepting at --max-conns.
  void wake_if_waiting() {
    if (waiting_for_slot_.exchange(false)) wake();
  }

  /// run serves connections until the process stops, then cuts the ones left.
  void run() {
    epoll_event events[256];
    while (!p_.stopping) {
      const int n = epoll_wait(ep_, events, 256, wait_ms());
      if (n < 0 && errno != EINTR) {
        std::perror("epoll_wait");
        kill(getpid(), SIGTERM);  // stops the process, as a signal would
        break;
      }
      now_ = clock_type::now();
      splice::sigpipe_scope scope;  // one for the whole round of advances
      for (int i = 0; i < n; ++i) {
        void* tag = events[i].data.ptr;
        if (tag == &wake_) {
          std::uint64_t count;
          [[maybe_unused]] const ssize_t r = read(wake_, &count, sizeof count);  // resets the counter
          accept_due_ = true;
        } else if (tag == &listener_) {
          accept_due_ = true;
        } else if (auto* s = static_cast<side*>(tag); !s->c->ended) {
          woken(*s, events[i].events, scope);
        }
      }
      run_ready(scope);
      run_timed(scope);
      if (out_of_fds_ && now_ >= retry_at_) accept_due_ = true;
      if (accept_due_ && !p_.stopping) accept_all(scope);
      expire();
      // Connections ended in this round are freed only now: events of this round may name them.
      if (!dead_.empty()) {
        ready_.erase(std::remove_if(ready_.begin(), ready_.end(), [](connection* c) { return c->ended; }),
                     ready_.end());
        timed_.erase(std::remove_if(timed_.begin(), timed_.end(), [](connection* c) { return c->ended; }), timed_.end());
        dead_.clear();
      }
    }
    while (!conns_.empty()) {
      conns_.front().relay.stop(std::make_error_code(std::errc::operation_canceled), "shutdown");
      end(conns_.front());
    }
    dead_.clear();
  }

 private:
  bool watch(int fd, std::uint32_t events, void* tag) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = tag;
    return epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }

  // wait_ms is how long epoll_wait may sleep: not at all while connections are ready to go on,
  // else until the idlest connection expires or the next accept retry, whichever is first.
  int wait_ms() const {
    if (!ready_.empty()) return 0;
    auto until = clock_type::time_point::max();
    if (idle_.count() > 0 && !conns_.empty()) until = conns_.front().last + idle_;
    if (out_of_fds_) until = std::min(until, retry_at_);
    for (const connection* c : timed_)
      if (!c->ended) until = std::min(until, c->relay.wake_at());
    if (until == clock_type::time_point::max()) return -1;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - clock_type::now()).count();
    return int(std::clamp<long long>(ms, 0, INT_MAX));
  }

  // take_slot reserves one of the process's --max-conns connections before accepting one.
  bool take_slot() {
    if (p_.conns.fetch_add(1) < p_.cfg.max_conns) return true;
    p_.conns.fetch_sub(1);
    return false;
  }

  // give_slot returns a slot. If the process was at the limit, loops that stopped accepting are
  // woken, this one included, since their queued connections give no new edge.
  void give_slot() {
    if (p_.conns.fetch_sub(1) < p_.cfg.max_conns) return;
    for (auto& l : p_.loops) l->wake_if_waiting();
  }

  // accept_all accepts until the queue is empty, the process is at --max-conns, or accept fails
  // for want of fds or memory. The listener is edge-triggered: a queue left behind gives no new
  // event, so each way out arranges the next try: EAGAIN waits for the next arrival, the
  // connection limit for give_slot's wake-up, a failure for a close in this loop or a timer.
  void accept_all(splice::sigpipe_scope& scope) {
    accept_due_ = false;
    for (;;) {
      if (spare_ < 0 && (spare_ = example::socket_for(p_.upstream, SOCK_NONBLOCK)) < 0) return accept_later(errno);
      waiting_for_slot_ = true;  // first: a slot freed after the check below wakes this loop
      if (!take_slot()) return;
      waiting_for_slot_ = false;
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      const int client = accept4(listener_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) {
        const int err = errno;
        give_slot();
        if (err == EAGAIN || err == EWOULDBLOCK) {
          out_of_fds_ = false;
          return;
        }
        if (err == ECONNABORTED || err == EINTR || err == EPROTO || err == EPERM) continue;  // that one only
        return accept_later(err);  // EMFILE, ENFILE, ENOBUFS, ENOMEM
      }
      out_of_fds_ = false;
      open_connection(client, std::exchange(spare_, -1), example::to_string(reinterpret_cast<sockaddr*>(&ss)), scope);
    }
  }

  // accept_later leaves the queue for now: the next try comes when a connection of this loop
  // closes, or in 100 ms (fds may free up elsewhere in the process), or at once if idle pipes in
  // the pool gave back their fds.
  void accept_later(int err) {
    if (!out_of_fds_) std::fprintf(stderr, "accept: %s; retrying as connections close\n", std::strerror(err));
    out_of_fds_ = true;
    retry_at_ = clock_type::now() + std::chrono::milliseconds(100);
    auto& pool = splice::pipe_pool::shared();
    if (pool.stats().idle > 0) {
      pool.clear();
      retry_at_ = clock_type::now();
    } else if ((err == EMFILE || err == ENFILE) && p_.conns == 0 && spare_ >= 0) {
      refuse_queued(err);
    }
  }

  // refuse_queued: out of fds with no connection open in the process, no close will free one.
  // Closing the spare makes room to accept each queued connection and close it at once, so its
  // client learns now rather than never, and the log says why.
  void refuse_queued(int err) {
    close(spare_);
    spare_ = -1;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    for (int fd; (fd = accept4(listener_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC)) >= 0; len = sizeof ss) {
      example::log_connection(++p_.next_id, example::to_string(reinterpret_cast<sockaddr*>(&ss)), 0, 0, false,
                              {err, std::system_category()}, "accept");
      close(fd);
    }
  }

  // open_connection relays client through upstream, the spare made before client was accepted.
  void open_connection(int client, int upstream, std::string peer, splice::sigpipe_scope& scope) {
    if (!example::connect_fd(upstream, p_.upstream)) {
      example::log_connection(++p_.next_id, peer, 0, 0, false, {errno, std::system_category()}, "connect");
      close(client);
      close(upstream);
      give_slot();
      return;
    }
    // The duplex can start while the connect is in progress: the kernel says EAGAIN until it is
    // done, and the connect's error, if any, comes back from the first read or write. The duplex
    // sets TCP_NODELAY on both (proxy_options::nodelay).
    const unsigned long id = ++p_.next_id;
    connection& c = conns_.emplace_back(id, std::move(peer), client, upstream, opt_, example::open_mirrors(p_.mirror_to, id));
    c.self = std::prev(conns_.end());
    c.last = now_;
    // Each fd is watched both ways, edge-triggered, for the life of the connection; an edge
    // drives the direction that waits for it (see woken).
    constexpr std::uint32_t both_ways = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    if (!watch(client, both_ways, &c.client_side) || !watch(upstream, both_ways, &c.upstream_side)) {
      c.relay.stop({errno, std::system_category()}, "epoll_ctl");
      end(c);
      return;
    }
    // A mirror socket likewise; epoll refuses a capture file (EPERM), which is always ready.
    for (int i = 0; i < 2; ++i)
      if (c.relay.mirror_fd(i == 0) >= 0) watch(c.relay.mirror_fd(i == 0), both_ways, &c.mirror_sides[i]);
    drive(c, scope, splice::ready::all);
  }

  // woken drives the connection with what the edge on s's fd says; the duplex runs only the
  // direction that waits for it (a direction waits only after its fd said EAGAIN, so it gets an
  // edge of its own).
  void woken(side& s, std::uint32_t ev, splice::sigpipe_scope& scope) {
    drive(*s.c, scope, s.bits(ev));
  }

  // drive advances c with what came. Each direction runs until EAGAIN (the next change is an edge
  // that epoll reports), the end, or options::max_advance bytes (busy: c goes on the ready queue).
  void drive(connection& c, splice::sigpipe_scope& scope, unsigned came) {
    c.last = now_;
    conns_.splice(conns_.end(), conns_, c.self);  // the list stays ordered by last activity
    c.relay.advance(came, scope);
    if (c.relay.done()) {
      end(c);
    } else if (c.relay.busy() && !c.queued) {
      c.queued = true;
      ready_.push_back(&c);
    }
    if (!c.ended && !c.timed && c.relay.wake_at() != clock_type::time_point::max()) {
      c.timed = true;
      timed_.push_back(&c);
    }
  }

  // run_timed drives the connections whose wake_at() has come (a finishing mirror's linger), and
  // keeps on the list those that still have one.
  void run_timed(splice::sigpipe_scope& scope) {
    if (timed_.empty()) return;
    now_ = clock_type::now();
    std::vector<connection*> due;
    due.swap(timed_);
    for (connection* c : due) {
      c->timed = false;
      if (c->ended) continue;
      if (now_ >= c->relay.wake_at()) drive(*c, scope, 0);
      if (!c->ended && !c->timed && c->relay.wake_at() != clock_type::time_point::max()) c->timed = true, timed_.push_back(c);
    }
  }

  // run_ready drives the connections that did their share last time and have more ready. Those
  // that queue again wait for the next round, after an epoll_wait that does not sleep: every other
  // ready fd, the idle expiry and the stop flag get their turn in between.
  void run_ready(splice::sigpipe_scope& scope) {
    running_.swap(ready_);
    for (connection* c : running_) {
      c->queued = false;
      if (!c->ended) drive(*c, scope, 0);
    }
    running_.clear();
  }

  // expire ends the connections idle for --idle-timeout: they are at the front of the list.
  void expire() {
    if (idle_.count() <= 0) return;
    const auto now = clock_type::now();
    while (!conns_.empty() && now - conns_.front().last >= idle_) {
      conns_.front().relay.expire();
      end(conns_.front());
    }
  }

  // end logs a connection whose duplex has ended, closes its fds (which takes them out of the
  // epoll set) and moves it to the dead list, freed at the end of the round.
  void end(connection& c) {
    example::log_connection(c.id, c.peer, c.relay.result());
    example::log_mirrors(c.id, c.mirrors);
    close(c.client);
    close(c.upstream);
    c.ended = true;
    dead_.splice(dead_.end(), conns_, c.self);
    give_slot();
    if (out_of_fds_) accept_due_ = true;  // two fds just came free
  }

  process& p_;
  splice::proxy_options opt_;
  std::chrono::seconds idle_;
  int ep_ = -1, wake_ = -1, listener_;
  // spare_ is the upstream socket of the next connection, made before it is accepted, so that a
  // client accepted with the last fd still has one; and out of fds, it is the fd to close to
  // refuse clients (see refuse_queued).
  int spare_ = -1;
  std::list<connection> conns_, dead_;  // conns_: the idlest first
  std::vector<connection*> ready_, running_, timed_;
  clock_type::time_point now_ = clock_type::now();
  bool accept_due_ = false;
  bool out_of_fds_ = false;  // accept failed for want of a resource; retry_at_ is the next try
  clock_type::time_point retry_at_;
  std::atomic<bool> waiting_for_slot_{false};
};

}  // namespace

int main(int argc, char** argv) {
  process p;
  p.cfg = example::parse(argc, argv);
  const int stop = example::stop_signals();  // before any thread starts: all inherit the mask
  const std::vector<int> listeners = example::open_listeners(p.cfg.listen, p.cfg.threads, SOCK_NONBLOCK);
  if (stop < 0 || listeners.empty() || !example::resolve_to(p.cfg.upstream, p.upstream) ||
      !example::resolve_mirrors(p.cfg, p.mirror_to))
    return 1;
  for (int fd : listeners) {
    p.loops.push_back(std::make_unique<proxy_loop>(p, fd));
    if (!p.loops.back()->open()) return 1;
  }
  std::vector<std::thread> threads;
  for (auto& l : p.loops) threads.emplace_back([&l] { l->run(); });

  pollfd pfd{stop, POLLIN, 0};
  while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
  }
  p.stopping = true;
  for (auto& l : p.loops) l->wake();
  for (auto& t : threads) t.join();
  example::print_pool();
  std::printf("stopped\n");
  return 0;
}
