// SPDX-License-Identifier: MIT
#include "splice/sigpipe.hpp"  // first: the header must be self-contained

#include <atomic>
#include <csignal>
#include <functional>
#include <memory>
#include <vector>

#include <poll.h>
#include <sys/wait.h>
#include <ucontext.h>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

namespace {
bool blocked() {
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  return sigismember(&now, SIGPIPE) == 1;
}
bool pending() {
  sigset_t p;
  sigpending(&p);
  return sigismember(&p, SIGPIPE) == 1;
}
}  // namespace

TEST_CASE("sigpipe_scope blocks SIGPIPE only while it lives and consumes only its own", "[sigpipe]") {
  REQUIRE_FALSE(blocked());
  {
    splice_lib::sigpipe_scope scope;
    CHECK(blocked());
    pthread_kill(pthread_self(), SIGPIPE);  // as splice(2) does on EPIPE
    scope.note(std::make_error_code(std::errc::broken_pipe));
  }
  CHECK_FALSE(blocked());
  CHECK_FALSE(pending());
}

TEST_CASE("sigpipe_scope leaves the mask and a pending SIGPIPE of the host as they were", "[sigpipe]") {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  pthread_kill(pthread_self(), SIGPIPE);
  {
    splice_lib::sigpipe_scope scope;
    scope.note(std::make_error_code(std::errc::broken_pipe));
  }
  CHECK(blocked());
  CHECK(pending());
  const timespec zero{};
  CHECK(sigtimedwait(&set, nullptr, &zero) == SIGPIPE);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

TEST_CASE("sigpipe_scope without EPIPE consumes nothing", "[sigpipe]") {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  { splice_lib::sigpipe_scope scope; }
  pthread_kill(pthread_self(), SIGPIPE);
  { splice_lib::sigpipe_scope scope; }
  CHECK(pending());
  const timespec zero{};
  CHECK(sigtimedwait(&set, nullptr, &zero) == SIGPIPE);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

namespace {

/// fibers runs functions as fibers on the calling thread, switching only where a fiber waits for an
/// fd: the way a fiber scheduler drives splice::copy through a poller of its own. It switches with
/// ucontext, which also swaps the signal mask; fast fiber libraries (Boost.Context and the like)
/// do not, so the mask is carried across each switch: it belongs to the thread, as there.
class fibers {
 public:
  /// A poller that suspends the calling fiber until fd is ready.
  struct poller {
    fibers* f;
    std::error_code wait_readable(int fd) { return f->wait(fd, POLLIN); }
    std::error_code wait_writable(int fd) { return f->wait(fd, POLLOUT); }
  };

  void spawn(std::function<void()> body) {
    auto* t = new task{};
    t->body = std::move(body);
    t->stack.resize(256 << 10);
    getcontext(&t->ctx);
    t->ctx.uc_stack.ss_sp = t->stack.data();
    t->ctx.uc_stack.ss_size = t->stack.size();
    t->ctx.uc_link = &main_;
    makecontext(&t->ctx, &fibers::start, 0);
    tasks_.emplace_back(t);
  }

  /// Runs every fiber until all have returned; before each round of polling, calls tick(round).
  void run(const std::function<void(int)>& tick) {
    for (auto& t : tasks_) resume(*t);  // each runs until its first wait
    for (int round = 0;; ++round) {
      tick(round);
      std::vector<pollfd> p;
      std::vector<task*> waiting;
      for (auto& t : tasks_)
        if (!t->done) p.push_back({t->fd, t->events, 0}), waiting.push_back(t.get());
      if (waiting.empty()) return;
      ::poll(p.data(), p.size(), 1000);
      for (std::size_t i = 0; i < p.size(); ++i)
        if (p[i].revents) resume(*waiting[i]);
    }
  }

 private:
  struct task {
    ucontext_t ctx{};
    std::vector<char> stack;
    std::function<void()> body;
    int fd = -1;
    short events = 0;
    bool done = false;
  };

  static void start() {
    carry_mask();
    task* t = current_->running_;
    t->body();
    t->done = true;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask_);  // then uc_link returns to main_
  }

  void resume(task& t) {
    running_ = &t;
    current_ = this;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask_);
    swapcontext(&main_, &t.ctx);
    carry_mask();
  }

  std::error_code wait(int fd, short events) {
    task* t = running_;
    t->fd = fd, t->events = events;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask_);
    swapcontext(&t->ctx, &main_);
    carry_mask();
    return {};
  }

  // carry_mask sets the mask the thread had before the switch that just happened.
  static void carry_mask() { pthread_sigmask(SIG_SETMASK, &mask_, nullptr); }

  static inline sigset_t mask_{};
  static inline fibers* current_ = nullptr;
  task* running_ = nullptr;
  ucontext_t main_{};
  std::vector<std::unique_ptr<task>> tasks_;
};

}  // namespace

namespace {

// two_fibers runs the copies of the test below: both fibers wait; a ends first; b then splices into
// a pipe whose reader has gone. Returns whether each copy ended as it should.
bool two_fibers() {
  auto ta = test::make_tcp(), tb = test::make_tcp();
  auto pa = test::make_pipe(), pb = test::make_pipe();  // {read end, write end}
  for (int fd : {ta.b.get(), tb.b.get(), pa.second.get(), pb.second.get()}) test::set_nonblocking(fd);
  fibers f;
  fibers::poller p{&f};
  splice::result ra, rb;
  f.spawn([&] { ra = splice::copy(pa.second.get(), ta.b.get(), 1, p); });
  f.spawn([&] { rb = splice::copy(pb.second.get(), tb.b.get(), 1, p); });
  f.run([&](int round) {
    if (round == 0) test::write_all(ta.a.get(), "a");  // a ends first...
    if (round == 1) {                                   // ...then b splices into a pipe whose reader has gone
      pb.first.reset();
      test::write_all(tb.a.get(), "b");
    }
  });
  return ra.bytes == 1 && !ra.error && rb.error == std::errc::broken_pipe && rb.bytes == 0;
}

}  // namespace

TEST_CASE("two copies interleaved as fibers on one thread never let SIGPIPE through", "[sigpipe][fibers]") {
  // A scope held across a wait would let a's end unblock SIGPIPE under b's splice, and the default
  // disposition would kill the process: so the copies run in a child, which reports by exit code.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::signal(SIGPIPE, SIG_DFL);  // the host's defaults: SIGPIPE kills, and it is not blocked
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &pipe_only, nullptr);
    ::_exit(two_fibers() ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));  // not killed by SIGPIPE
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
}

namespace {
std::atomic<int> sigpipes_delivered{0};

/// The real system calls; send fails with EPIPE as MSG_NOSIGNAL makes it (no signal), just after
/// the host's own SIGPIPE reached this thread.
struct host_signal_then_epipe : splice::system_calls {
  ssize_t send(int, const void*, std::size_t, int) {
    ::pthread_kill(::pthread_self(), SIGPIPE);  // the host's, arriving while the copy runs
    errno = EPIPE;
    return -1;
  }
};

/// The real system calls, recording whether SIGPIPE was blocked during each read.
struct mask_watcher : splice::system_calls {
  int* blocked_reads;
  ssize_t read(int fd, void* b, std::size_t n) {
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, nullptr, &now);
    *blocked_reads += sigismember(&now, SIGPIPE) == 1;
    return splice::system_calls::read(fd, b, n);
  }
};
}  // namespace

TEST_CASE("an EPIPE from send(MSG_NOSIGNAL) consumes no SIGPIPE of the host's", "[sigpipe]") {
  struct sigaction sa {}, old{};
  sa.sa_handler = [](int) { ++sigpipes_delivered; };
  sigaction(SIGPIPE, &sa, &old);
  sigpipes_delivered = 0;
  test::relay r;
  test::write_all(r.in.a.get(), "x");
  splice::options opt;
  opt.userspace = true;  // the bytes go out by send
  splice::poll_poller p;
  const auto res = splice::copy(r.dst(), r.src(), 1, p, opt, host_signal_then_epipe{});
  CHECK(res.error == std::errc::broken_pipe);
  CHECK(std::string(res.op) == "send");
  CHECK(sigpipes_delivered == 1);  // delivered once the copy unblocked it, not swallowed
  sigaction(SIGPIPE, &old, nullptr);
}

TEST_CASE("a host that ignores SIGPIPE can spare the copy the mask calls", "[sigpipe]") {
  const bool ignored = GENERATE(false, true);
  const bool option = GENERATE(false, true);
  CAPTURE(ignored, option);
  auto old = std::signal(SIGPIPE, ignored ? SIG_IGN : SIG_DFL);
  test::relay r;
  test::write_all(r.in.a.get(), "abc");
  splice::options opt;
  opt.userspace = true;  // reads go through the seam
  opt.sigpipe_ignored = option;
  int blocked_reads = 0;
  splice::poll_poller p;
  const auto res = splice::copy(r.dst(), r.src(), 3, p, opt, mask_watcher{{}, &blocked_reads});
  CHECK(res.bytes == 3);
  // Masked unless the host said it ignores SIGPIPE and really does.
  CHECK(blocked_reads == (ignored && option ? 0 : 1));
  std::signal(SIGPIPE, old);
}
