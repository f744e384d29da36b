// SPDX-License-Identifier: MIT
// "Writing your own integration" (README): a fiber scheduler on ucontext, one thread, poll(2), and
// copiers driven by their steps. Everything here runs on the test's thread: two copies, their
// writers and their readers are fibers, each waiting for its own fds.
#include "splice/copier.hpp"  // first: the header must be self-contained

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include <poll.h>
#include <ucontext.h>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "support.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define SPLICE_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPLICE_TEST_ASAN 1
#endif
#endif
#if defined(SPLICE_TEST_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

namespace {

/// scheduler runs fibers on the calling thread. A fiber parks itself with wait() until one of its
/// fds is ready (poll(2) over every parked fiber's fds, once nothing else can run), or with yield()
/// until the fibers already ready have run. Not thread-safe: one scheduler per thread.
class scheduler {
 public:
  void spawn(std::function<void()> fn) {
    auto f = std::make_unique<fiber>();
    f->fn = std::move(fn);
    f->stack.reset(new char[stack_size]);
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = f->stack.get();
    f->ctx.uc_stack.ss_size = stack_size;
    f->ctx.uc_link = &main_;
    makecontext(&f->ctx, reinterpret_cast<void (*)()>(&scheduler::entry), 0);
    ready_.push_back(f.get());
    fibers_.push_back(std::move(f));
  }

  /// Runs until every fiber has returned.
  void run() {
    while (!fibers_.empty()) {
      if (ready_.empty()) poll_parked();
      fiber* f = ready_.front();
      ready_.pop_front();
      switch_to(f);
      if (f->done) fibers_.erase(std::find_if(fibers_.begin(), fibers_.end(), [f](const auto& p) { return p.get() == f; }));
    }
  }

  /// Parks the running fiber until one of fds is ready; returns the index of the first ready one.
  std::size_t wait(std::vector<pollfd> fds) {
    current_->waiting = std::move(fds);
    switch_to_main();
    return current_->woken_by;
  }

  /// Lets the fibers that are ready run first.
  void yield() {
    ready_.push_back(current_);
    switch_to_main();
  }

 private:
  static constexpr std::size_t stack_size = 256 << 10;
  struct fiber {
    ucontext_t ctx;
    std::unique_ptr<char[]> stack;
    std::function<void()> fn;
    std::vector<pollfd> waiting;  // empty unless parked
    std::size_t woken_by = 0;
    bool done = false;
    void* fake = nullptr;  // AddressSanitizer's fake stack while switched out
  };

  // poll_parked waits until at least one parked fiber's fd is ready and makes those fibers ready.
  void poll_parked() {
    std::vector<pollfd> all;
    for (auto& f : fibers_) all.insert(all.end(), f->waiting.begin(), f->waiting.end());
    REQUIRE(!all.empty());  // fibers that are neither ready nor waiting would sleep forever
    while (::poll(all.data(), all.size(), -1) < 0) REQUIRE(errno == EINTR);
    const pollfd* p = all.data();
    for (auto& f : fibers_) {
      const std::size_t n = f->waiting.size();
      for (std::size_t i = 0; i < n; ++i) {
        if (p[i].revents) {
          f->woken_by = i;  // the first ready fd wins; the fiber's other interests are dropped
          f->waiting.clear();
          ready_.push_back(f.get());
          break;
        }
      }
      p += n;
    }
  }

  static void entry() {
    scheduler* s = running_;
    s->entered();
    s->current_->fn();
    s->current_->done = true;
    s->leaving(nullptr);  // back to main through uc_link; this stack is not used again
  }

  void switch_to(fiber* f) {
    current_ = f;
    running_ = this;
    leaving(f);
    swapcontext(&main_, &f->ctx);
    entered();
  }
  void switch_to_main() {
    leaving(nullptr);
    swapcontext(&current_->ctx, &main_);
    entered();
  }

  // AddressSanitizer must be told when the stack changes (leaving: to fiber `to`, or to main when
  // null); nothing else needs to know.
#if defined(SPLICE_TEST_ASAN)
  void leaving(fiber* to) {
    if (to) {
      running_main_ = false;
      __sanitizer_start_switch_fiber(&main_fake_, to->stack.get(), stack_size);
    } else {
      running_main_ = true;
      __sanitizer_start_switch_fiber(current_->done ? nullptr : &current_->fake, main_bottom_, main_size_);
    }
  }
  void entered() {
    if (running_main_) __sanitizer_finish_switch_fiber(main_fake_, nullptr, nullptr);
    else __sanitizer_finish_switch_fiber(current_->fake, &main_bottom_, &main_size_);
  }
  bool running_main_ = true;
  void* main_fake_ = nullptr;
  const void* main_bottom_ = nullptr;
  std::size_t main_size_ = 0;
#else
  void leaving(fiber*) {}
  void entered() {}
#endif

  static inline thread_local scheduler* running_ = nullptr;
  ucontext_t main_{};
  std::vector<std::unique_ptr<fiber>> fibers_;
  std::deque<fiber*> ready_;
  fiber* current_ = nullptr;
};

/// copy_in_fiber is the whole integration: one copier, driven by its steps, on the running fiber.
template <class Copier = splice::copier<>>
splice::result copy_in_fiber(scheduler& s, int dst, int src, std::uint64_t limit = splice::no_limit) {
  Copier c(dst, src, limit);
  for (;;) {
    switch (c.advance()) {
      case splice::step::read:
        s.wait({{src, POLLIN, 0}});
        break;
      case splice::step::write:
        s.wait({{dst, POLLOUT, 0}});
        break;
      case splice::step::either:  // whichever comes first; the other wait is dropped
        s.wait({{src, POLLIN, 0}, {dst, POLLOUT, 0}});
        break;
      case splice::step::again:  // more is ready: let the other fibers run first
        s.yield();
        break;
      case splice::step::later:  // a rate limit (none here): a scheduler would park until c.wake_at()
        s.yield();
        break;
      case splice::step::done:
        return c.result();
    }
  }
}

/// A copier that also says step::again (every other call) and step::either (for read and write).
struct forcing_copier : splice::copier<> {
  using splice::copier<>::copier;
  bool skip = false;
  int agains = 0, eithers = 0;
  splice::step advance() {
    if ((skip = !skip)) return ++agains, splice::step::again;
    const auto s = splice::copier<>::advance();
    if (s != splice::step::read && s != splice::step::write) return s;
    return ++eithers, splice::step::either;
  }
};

// Non-blocking writes and reads for the writer and reader fibers. They report failure by their
// result: an exception must not unwind out of a fiber.
bool send_all(scheduler& s, int fd, const std::string& data) {
  for (std::size_t off = 0; off < data.size();) {
    const ssize_t n = ::send(fd, data.data() + off, std::min<std::size_t>(data.size() - off, 1 << 16), MSG_NOSIGNAL);
    if (n > 0) off += std::size_t(n);
    else if (n < 0 && errno == EAGAIN) s.wait({{fd, POLLOUT, 0}});
    else return false;
  }
  return ::shutdown(fd, SHUT_WR) == 0;
}
std::string receive_all(scheduler& s, int fd) {
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) out.append(buf, std::size_t(n));
    else if (n < 0 && errno == EAGAIN) s.wait({{fd, POLLIN, 0}});
    else return out;  // end of file, or an error: what arrived is compared with what was sent
  }
}

}  // namespace

TEST_CASE("a fiber scheduler drives two copiers with their own waits on one thread", "[fiber]") {
  const bool forced = GENERATE(false, true);  // also through step::again and step::either
  scheduler s;
  struct lane {
    test::relay r;
    std::string data, got;
    splice::result res;
    bool sent = false;
  };
  lane lanes[2];
  lanes[0].data = test::payload(8 << 20, 1);
  lanes[1].data = test::payload(3 << 20, 2);
  for (auto& l : lanes) {
    for (int fd : {l.r.in.a.get(), l.r.src(), l.r.dst(), l.r.out.b.get()}) test::set_nonblocking(fd);
    test::set_buffers(l.r.dst(), 65536);  // so that both copies wait for dst as well as for src
    s.spawn([&] { l.sent = send_all(s, l.r.in.a.get(), l.data); });
    s.spawn([&] {
      l.res = forced ? copy_in_fiber<forcing_copier>(s, l.r.dst(), l.r.src())
                     : copy_in_fiber(s, l.r.dst(), l.r.src());
      ::shutdown(l.r.dst(), SHUT_WR);
    });
    s.spawn([&] { l.got = receive_all(s, l.r.out.b.get()); });
  }
  s.run();
  for (auto& l : lanes) {
    CHECK(l.sent);
    CHECK_FALSE(l.res.error);
    CHECK(l.res.bytes == l.data.size());
    CHECK((l.got == l.data));
  }
}

TEST_CASE("a copier in a fiber stops at its limit and leaves the rest in src", "[fiber]") {
  scheduler s;
  test::relay r;
  for (int fd : {r.in.a.get(), r.src(), r.dst(), r.out.b.get()}) test::set_nonblocking(fd);
  const auto data = test::payload(1 << 20, 3);
  std::string got, rest;
  splice::result res;
  bool sent = false;
  s.spawn([&] { sent = send_all(s, r.in.a.get(), data); });
  s.spawn([&] {
    res = copy_in_fiber(s, r.dst(), r.src(), 300000);
    ::shutdown(r.dst(), SHUT_WR);
    rest = receive_all(s, r.src());
  });
  s.spawn([&] { got = receive_all(s, r.out.b.get()); });
  s.run();
  CHECK(sent);
  CHECK(res.bytes == 300000);
  CHECK((got + rest == data));
  CHECK(got.size() == 300000);
}
