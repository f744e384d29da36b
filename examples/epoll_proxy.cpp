// SPDX-License-Identifier: MIT
// epoll_proxy: edge-triggered epoll loops, thousands of connections each, every connection relayed
// by two resumable copiers (client -> upstream and upstream -> client).
//   epoll_proxy LISTEN_HOST:PORT UPSTREAM_HOST:PORT [--userspace] [--idle-timeout SECONDS]
//               [--max-conns N] [--threads N] [--max-splice BYTES] [--max-advance BYTES]
//               [--accept-proxy] [--send-proxy | --send-proxy-v2] [--proxy-timeout SECONDS]
//               [--metrics HOST:PORT] [--drain-timeout SECONDS] [--rate BYTES_PER_S]
//               [--rate-total BYTES_PER_S] [--rate-burst BYTES] [--mirror HOST:PORT] [--mirror-down HOST:PORT]
//               [--mirror-file PATH] [--mirror-lag BYTES]
// A connection's mirror sockets are watched in the same epoll set, edge-triggered, and drive the
// duplex with its mirror ready bits.
// --threads N (default: one per CPU the process may run on) runs N loops, each on its own thread with its
// own epoll and its own
// SO_REUSEPORT listener on the same address; they share the pipe pool. Past --max-conns (default
// 1024, counted for the whole process) the loops stop accepting and new connections wait in the
// backlog. SO_REUSEPORT ties each queued connection to one loop's listener, so a loop that stops
// accepting leaves its own queue waiting, even while another loop could take it.
// --accept-proxy reads each client's PROXY header with a proxy_header_reader that the loop drives on
// the client's edges, before connecting upstream; the deadline is the loop's timer (epoll_wait's
// timeout), so a client that sends nothing costs nothing until it expires. --send-proxy(-v2) writes
// a header upstream once the connect is done, before the duplex starts.
// SIGTERM or SIGINT drains every loop: each takes what its listener has queued and closes it, its
// connections go on, and it ends with its last one; the process exits then, 0, or 1 when
// --drain-timeout (30 s) or a second signal cut some. --rate, --rate-total: see net.hpp's limits.
// Each loop sleeps in epoll_wait until the nearest of: the idlest connection's expiry, the next
// accept retry, and the oldest header read's deadline, and the earliest duplex::wake_at() of its connections (a rate limit's tokens, the
// drain's cut), kept in an ordered map (see timers_).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <splice/splice.hpp>

#include "metrics_http.hpp"
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

// What a connection is doing: reading the client's PROXY header, writing one upstream, relaying.
enum class phase { greeting, announcing, relaying };

// A connection is a duplex (the library's proxy rules: half-close, first error, what to wait for)
// between the client (its fd a) and the upstream (b), which starts once the headers are through.
struct connection {
  connection(unsigned long i, std::string p, int c, int u, const splice::proxy_options& opt, example::limits& l,
             example::mirrors m)
      : id(i), peer(std::move(p)), client(c), upstream(u), rates(l), mirrors(std::move(m)),
        relay(c, u, mirrors.attach(rates.apply(opt))), client_side{this, fd_kind::client},
        upstream_side{this, fd_kind::upstream}, mirror_sides{{this, fd_kind::mirror_up}, {this, fd_kind::mirror_down}} {}
  unsigned long id;
  std::string peer;
  int client, upstream;
  example::connection_rates rates;  // before relay, which points to them
  example::mirrors mirrors;         // likewise
  splice::duplex<> relay;
  side client_side, upstream_side, mirror_sides[2];
  phase at = phase::relaying;
  std::optional<splice::proxy_header_reader<>> greeting;  // --accept-proxy: the header being read
  clock_type::time_point deadline;                         // for the whole of it
  std::string header;                                      // to write upstream, then the relay
  std::size_t sent = 0;                                    // bytes of header written
  std::list<connection>* home = nullptr;                   // greeting_ while reading the header, else conns_
  bool queued = false;  // on the ready queue
  bool ended = false;   // fds closed; freed at the end of the round
  clock_type::time_point last;           // last activity
  std::list<connection>::iterator self;  // its place in the loop's list, ordered by last activity
  // Its entry in the loop's timers_ (relay.wake_at()), when armed is true.
  std::multimap<clock_type::time_point, connection*>::iterator timer;
  bool armed = false;
};

class proxy_loop;

// What the loops share: the settings, the connection count for --max-conns, the graceful stop
// (its deadline; each loop is woken to read it) and the count of connections it cut, the rate
// limits.
struct process {
  explicit process(const example::settings& s) : cfg(s), limits(s) {}
  example::settings cfg;
  example::address upstream;
  example::mirror_targets mirror_to;
  std::atomic<int> conns{0};
  std::atomic<unsigned long> next_id{0};
  splice::drain drain;
  std::atomic<unsigned long> cut{0};
  example::limits limits;
  std::vector<std::unique_ptr<proxy_loop>> loops;
};

class proxy_loop {
 public:
  proxy_loop(process& p, int index, int listener) : p_(p), index_(index), listener_(listener) {
    example::apply(p.cfg, opt_.copy);
    // A short read means drained: each fd is watched for EPOLLPRI and EPOLLRDHUP, and ready::of passes
    // them on to the duplex as marks, so a read that stopped short at an urgent mark or before an
    // end of file is not taken for empty.
    opt_.copy.short_read_drains = true;
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

  /// wake makes the loop look at the drain and the connection limit again. Any thread.
  void wake() {
    const std::uint64_t one = 1;
    // It fails only with EAGAIN, when the counter is so high that the loop wakes anyway.
    [[maybe_unused]] const ssize_t r = write(wake_, &one, sizeof one);
  }

  /// wake_if_waiting wakes the loop if it stopped accepting at --max-conns.
  void wake_if_waiting() {
    if (waiting_for_slot_.exchange(false)) wake();
  }

  /// run serves connections until a drain has been requested and its last connection has ended.
  void run() {
    epoll_event events[256];
    while (!drained()) {
      const int n = epoll_wait(ep_, events, 256, wait_ms());
      if (n < 0 && errno != EINTR) {
        std::perror("epoll_wait");
        kill(getpid(), SIGTERM);  // drains the process, as a signal would
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
      if (p_.drain.deadline() != seen_deadline_) start_drain(scope);
      run_ready(scope);
      run_timers(scope);
      if (out_of_fds_ && now_ >= retry_at_) accept_due_ = true;
      if (accept_due_ && listener_ >= 0) accept_all(scope);
      expire();
      expire_greetings();
      // Connections ended in this round are freed only now: events of this round may name them.
      if (!dead_.empty()) {
        ready_.erase(std::remove_if(ready_.begin(), ready_.end(), [](connection* c) { return c->ended; }),
                     ready_.end());
        dead_.clear();
      }
    }
    while (!conns_.empty()) {
      conns_.front().relay.stop(std::make_error_code(std::errc::operation_canceled), "shutdown");
      end(conns_.front());
    }
    while (!greeting_.empty()) {
      greeting_.front().greeting->stop(std::make_error_code(std::errc::operation_canceled), "shutdown");
      refuse(greeting_.front());
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

  // drained: a drain has begun here and no connection of this loop is left (one reading its PROXY
  // header ends by its deadline).
  bool drained() const { return listener_ < 0 && conns_.empty() && greeting_.empty(); }

  // start_drain takes the drain's deadline: the first time, the loop accepts what its listener has
  // queued (those clients already see an open connection) and closes it, so new ones are refused;
  // every connection gets the deadline (a nearer one on a second signal), and its timer with it.
  void start_drain(splice::sigpipe_scope& scope) {
    seen_deadline_ = p_.drain.deadline();
    if (listener_ >= 0) {
      accept_all(scope);
      close(listener_);
      listener_ = -1;
      out_of_fds_ = false;
      std::printf("loop %d: draining %zu connections\n", index_, conns_.size());
      std::fflush(stdout);
    }
    for (connection& c : conns_) {
      c.relay.drain(seen_deadline_);
      arm(c);
    }
  }

  // arm keeps c's entry in timers_ at c.relay.wake_at(), or takes it out when there is none.
  void arm(connection& c) {
    const auto at = c.relay.wake_at();
    if (c.armed && c.timer->first == at) return;
    disarm(c);
    if (at == clock_type::time_point::max()) return;
    c.timer = timers_.emplace(at, &c);
    c.armed = true;
  }

  void disarm(connection& c) {
    if (c.armed) timers_.erase(c.timer), c.armed = false;
  }

  // run_timers drives the connections whose wake_at() has come: a direction whose rate limit has
  // tokens again runs, and one the drain's deadline has reached is cut (advance(0) does both).
  void run_timers(splice::sigpipe_scope& scope) {
    const auto now = clock_type::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      connection& c = *timers_.begin()->second;
      disarm(c);
      drive(c, scope, 0);
    }
  }

  // wait_ms is how long epoll_wait may sleep: not at all while connections are ready to go on,
  // else until the idlest connection expires, the oldest header read is due, the next accept
  // retry, or the earliest timer, whichever is first; rounded up to whole milliseconds, so a timer
  // is never early.
  int wait_ms() const {
    if (!ready_.empty()) return 0;
    auto until = clock_type::time_point::max();
    if (idle_.count() > 0 && !conns_.empty()) until = conns_.front().last + idle_;
    if (!greeting_.empty()) until = std::min(until, greeting_.front().deadline);
    if (out_of_fds_) until = std::min(until, retry_at_);
    if (!timers_.empty()) until = std::min(until, timers_.begin()->first);
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
  // With --accept-proxy it reads the client's header first and connects only once it is whole.
  void open_connection(int client, int upstream, std::string peer, splice::sigpipe_scope& scope) {
    std::list<connection>& home = p_.cfg.accept_proxy ? greeting_ : conns_;
    const unsigned long id = ++p_.next_id;
    connection& c = home.emplace_back(id, std::move(peer), client, upstream, opt_, p_.limits,
                                      example::open_mirrors(p_.mirror_to, id));
    c.self = std::prev(home.end());
    c.home = &home;
    c.last = now_;
    if (!p_.cfg.accept_proxy) return connect_upstream(c, scope);
    c.at = phase::greeting;
    c.greeting.emplace(client);
    c.deadline = now_ + p_.cfg.proxy_timeout;  // greeting_ stays in deadline order: one timeout for all
    if (!watch(client, both_ways, &c.client_side)) return fail(c, errno, "epoll_ctl");
    read_greeting(c, scope);
  }

  // read_greeting reads what has come of c's PROXY header. The reader never leaves a byte it has
  // seen in the socket, so an edge-triggered wait for the next byte is sound; whatever follows the
  // header stays there for the relay.
  void read_greeting(connection& c, splice::sigpipe_scope& scope) {
    if (c.greeting->advance() == splice::step::read) return;
    if (c.greeting->error()) return refuse(c);
    c.peer = example::peer_of(c.peer, c.greeting->header());
    conns_.splice(conns_.end(), greeting_, c.self);
    c.home = &conns_;
    c.last = now_;
    connect_upstream(c, scope);
  }

  // expire_greetings closes the clients whose header is not whole by its deadline: the oldest
  // first, which is the front of greeting_.
  void expire_greetings() {
    const auto now = clock_type::now();
    while (!greeting_.empty() && now >= greeting_.front().deadline) {
      greeting_.front().greeting->stop(std::make_error_code(std::errc::timed_out), "deadline");
      refuse(greeting_.front());
    }
  }

  // connect_upstream connects c's upstream and, with --send-proxy(-v2), writes its header before
  // the relay starts. The duplex may start while the connect is in progress: the kernel says
  // EAGAIN until it is done, and the connect's error, if any, comes back from the first read or
  // write. The duplex sets TCP_NODELAY on both (proxy_options::nodelay).
  void connect_upstream(connection& c, splice::sigpipe_scope& scope) {
    if (!example::connect_fd(c.upstream, p_.upstream)) return fail(c, errno, "connect");
    // Each fd is watched both ways, edge-triggered, for the life of the connection; an edge
    // drives the direction that waits for it (see woken), and urgent data and the peer's end
    // (EPOLLPRI, EPOLLRDHUP) are reported.
    if (!c.greeting && !watch(c.client, both_ways, &c.client_side)) return fail(c, errno, "epoll_ctl");
    if (!watch(c.upstream, both_ways, &c.upstream_side)) return fail(c, errno, "epoll_ctl");
    // A mirror socket likewise; epoll refuses a capture file (EPERM), which is always ready.
    for (int i = 0; i < 2; ++i)
      if (c.relay.mirror_fd(i == 0) >= 0) watch(c.relay.mirror_fd(i == 0), both_ways, &c.mirror_sides[i]);
    c.header = example::upstream_header(p_.cfg, c.client, c.greeting ? &c.greeting->header() : nullptr);
    c.at = c.header.empty() ? phase::relaying : phase::announcing;
    if (c.at == phase::relaying) return drive(c, scope, splice::ready::all);
    announce(c, scope);
  }

  // announce writes what is left of c's header upstream. EAGAIN (the connect in progress, which
  // send reports so, or a full buffer) waits for the upstream's next writable edge, and a failed
  // connect comes back here as send's error. Once the header is out, the relay starts with every
  // direction to try: the edges that came meanwhile are not lost.
  void announce(connection& c, splice::sigpipe_scope& scope) {
    while (c.sent < c.header.size()) {
      const ssize_t n = send(c.upstream, c.header.data() + c.sent, c.header.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0) {
        const int err = errno;
        const bool connecting = err == ECONNREFUSED || err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH;
        return fail(c, err, connecting ? "connect" : "send");
      }
      c.sent += std::size_t(n);
    }
    c.at = phase::relaying;
    drive(c, scope, splice::ready::all);
  }

  // woken acts on an edge of s's fd as c's phase asks: the header reader takes the client's, the
  // header's writer the upstream's; the duplex runs only the direction that waits for it (a
  // direction waits only after its fd said EAGAIN, so it gets an edge of its own).
  void woken(side& s, std::uint32_t ev, splice::sigpipe_scope& scope) {
    connection& c = *s.c;
    const bool client = s.kind == fd_kind::client;
    if (c.at == phase::greeting && client) read_greeting(c, scope);
    else if (c.at == phase::announcing && s.kind == fd_kind::upstream) announce(c, scope);
    else if (c.at == phase::relaying) drive(c, scope, s.bits(ev));
  }

  // drive advances c with what came. Each direction runs until EAGAIN (the next change is an edge
  // that epoll reports), the end, or options::max_advance bytes (busy: c goes on the ready queue).
  void drive(connection& c, splice::sigpipe_scope& scope, unsigned came) {
    c.last = now_;
    conns_.splice(conns_.end(), conns_, c.self);  // the list stays ordered by last activity
    if (p_.drain.requested()) c.relay.drain(p_.drain.deadline());  // accepted while draining
    c.relay.advance(came, scope);
    if (c.relay.done()) {
      end(c);
      return;
    }
    if (c.relay.busy() && !c.queued) {
      c.queued = true;
      ready_.push_back(&c);
    }
    arm(c);
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

  // fail ends c with errno err from op before its relay has started, and logs it.
  void fail(connection& c, int err, const char* op) {
    c.relay.stop({err, std::system_category()}, op);
    end(c);
  }

  // refuse closes a client whose PROXY header was bad, incomplete or late, and logs why. Nothing
  // went upstream: the upstream socket was never connected.
  void refuse(connection& c) {
    example::log_refused(c.id, c.peer, *c.greeting);
    retire(c);
  }

  // end logs a connection whose duplex has ended and retires it.
  void end(connection& c) {
    disarm(c);
    if (example::was_cut(c.relay.result())) ++p_.cut;
    example::log_connection(c.id, c.peer, c.relay.result());
    example::log_mirrors(c.id, c.mirrors);
    retire(c);
  }

  // retire closes c's fds (which takes them out of the epoll set) and moves it to the dead list,
  // freed at the end of the round.
  void retire(connection& c) {
    close(c.client);
    close(c.upstream);
    c.ended = true;
    dead_.splice(dead_.end(), *c.home, c.self);
    give_slot();
    if (out_of_fds_) accept_due_ = true;  // two fds just came free
  }

  static constexpr std::uint32_t both_ways = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
  process& p_;
  int index_;  // which of the process's loops
  splice::proxy_options opt_;
  std::chrono::seconds idle_;
  int ep_ = -1, wake_ = -1, listener_;
  // spare_ is the upstream socket of the next connection, made before it is accepted, so that a
  // client accepted with the last fd still has one; and out of fds, it is the fd to close to
  // refuse clients (see refuse_queued).
  int spare_ = -1;
  std::list<connection> conns_, dead_;  // conns_: the idlest first
  std::list<connection> greeting_;      // reading their PROXY header, the oldest first
  std::vector<connection*> ready_, running_;
  // timers_ holds each connection's relay.wake_at() that is not "never": a direction waiting for
  // its rate limit's tokens, or the drain's cut. An ordered map rather than a timer wheel: the
  // times range from a rate limit's 10 ms quanta to a 30 s drain and must not be rounded to a
  // tick, and only the connections that wait for a time are in it; rather than a timerfd: the
  // earliest entry is epoll_wait's timeout, with no system call to re-arm it. O(log n) to arm or
  // take out (each connection has one entry, found through its own iterator), O(1) to find the
  // earliest.
  std::multimap<clock_type::time_point, connection*> timers_;
  clock_type::time_point seen_deadline_ = clock_type::time_point::max();  // the drain's, as applied
  clock_type::time_point now_ = clock_type::now();
  bool accept_due_ = false;
  bool out_of_fds_ = false;  // accept failed for want of a resource; retry_at_ is the next try
  clock_type::time_point retry_at_;
  std::atomic<bool> waiting_for_slot_{false};
};

}  // namespace

int main(int argc, char** argv) {
  process p(example::parse(argc, argv));
  const int stop = example::stop_signals();  // before any thread starts: all inherit the mask
  const int finished = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);  // a loop has drained
  const std::vector<int> listeners = example::open_listeners(p.cfg.listen, p.cfg.threads, SOCK_NONBLOCK);
  if (stop < 0 || finished < 0 || listeners.empty() || !example::resolve_to(p.cfg.upstream, p.upstream) ||
      !example::resolve_mirrors(p.cfg, p.mirror_to))
    return 1;
  example::metrics_server metrics;  // --metrics: GET /metrics on a thread of its own
  if (!p.cfg.metrics.empty() && !metrics.start(p.cfg.metrics)) return 1;
  for (int fd : listeners) {
    p.loops.push_back(std::make_unique<proxy_loop>(p, int(p.loops.size()), fd));
    if (!p.loops.back()->open()) return 1;
  }
  std::vector<std::thread> threads;
  for (auto& l : p.loops) {
    threads.emplace_back([&l, finished] {
      l->run();
      const std::uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = write(finished, &one, sizeof one);
    });
  }

  // Each signal becomes a drain request (the first: finish within --drain-timeout; the next: now)
  // that every loop is woken to take; the process ends when every loop has drained.
  for (std::uint64_t done = 0; done < p.loops.size();) {
    pollfd fds[2] = {{stop, POLLIN, 0}, {finished, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) std::exit(1);  // the loops' threads still run
    if (example::on_signal(stop, p.drain, p.cfg.drain_timeout_s))
      for (auto& l : p.loops) l->wake();
    std::uint64_t n = 0;
    if (read(finished, &n, sizeof n) == ssize_t(sizeof n)) done += n;
  }
  for (auto& t : threads) t.join();
  metrics.stop();
  example::print_pool();
  std::printf("stopped\n");
  return example::exit_status(p.cut);
}
