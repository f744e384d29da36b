// SPDX-License-Identifier: MIT
#ifndef SPLICE_SIGPIPE_HPP_
#define SPLICE_SIGPIPE_HPP_

#include <cerrno>
#include <ctime>
#include <system_error>

#include <pthread.h>
#include <signal.h>

namespace splice_lib {

/// sigpipe_scope keeps a SIGPIPE that the library causes from reaching the process.
///
/// splice(2) and sendfile(2) into a socket whose peer is gone, and splice or write(2) into a pipe
/// without a reader, raise SIGPIPE (they have no MSG_NOSIGNAL), and the host's disposition may well
/// be the default, which kills the process. The kernel sends that signal to the calling thread, so
/// the scope blocks SIGPIPE in this thread only, and at its end consumes one pending SIGPIPE if a
/// call that can raise it failed with EPIPE under the scope (see note) and none was pending before
/// it began: a SIGPIPE meant for the host is left alone. The process-wide disposition is never
/// touched.
///
/// A scope must not outlive a wait for readiness: under a fiber scheduler another fiber could run
/// on the thread meanwhile, and scopes ended out of order unblock SIGPIPE under a running splice.
/// copier::advance() holds one for its own duration only; an event loop may hold one across a
/// batch of advance() calls between two waits, to save two system calls per call.
/// Not thread-safe: a scope belongs to the thread that made it.
class sigpipe_scope {
 public:
  /// Blocks SIGPIPE in this thread; `active = false` makes a scope that does nothing, for a host
  /// that ignores SIGPIPE.
  explicit sigpipe_scope(bool active = true) noexcept : active_(active) {
    if (!active_) return;
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old_);
    was_blocked_ = sigismember(&old_, SIGPIPE) == 1;
    if (was_blocked_) {
      // Only a thread that already blocked SIGPIPE can have one pending that is not ours.
      sigset_t pending;
      sigpending(&pending);
      pending_before_ = sigismember(&pending, SIGPIPE) == 1;
    }
  }
  sigpipe_scope(const sigpipe_scope&) = delete;
  sigpipe_scope& operator=(const sigpipe_scope&) = delete;

  ~sigpipe_scope() {
    if (!active_) return;
    const int saved = errno;
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    if (raised_ && !pending_before_) {
      const timespec zero{};
      while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    if (!was_blocked_) pthread_sigmask(SIG_UNBLOCK, &pipe_only, nullptr);
    errno = saved;
  }

  /// Records the failure of a call that raises SIGPIPE along with EPIPE (splice, sendfile, write;
  /// not send with MSG_NOSIGNAL, which raises nothing).
  void note(const std::error_code& ec) noexcept {
    if (ec == std::errc::broken_pipe) raised_ = true;
  }

  /// Returns whether the process ignores SIGPIPE now (one sigaction(2) call).
  static bool ignored_by_host() noexcept {
    struct sigaction sa {};
    return sigaction(SIGPIPE, nullptr, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN;
  }

 private:
  sigset_t old_{};
  bool active_;
  bool was_blocked_ = false;
  bool pending_before_ = false;
  bool raised_ = false;
};

}  // namespace splice_lib

#endif  // SPLICE_SIGPIPE_HPP_
