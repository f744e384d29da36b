// SPDX-License-Identifier: MIT
#include "splice/sigpipe.hpp"  // first: the header must be self-contained

#include <catch2/catch.hpp>

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
