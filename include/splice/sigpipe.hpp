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
/// splice(2) into a socket whose peer is gone, or into a pipe without a reader, raises SIGPIPE
/// (the kernel has no MSG_NOSIGNAL for splice), and the host's disposition may well be the default,
/// which kills the process. The kernel sends that signal to the calling thread, so the scope blocks
/// SIGPIPE in this thread only, and at its end consumes one pending SIGPIPE if a call under it
/// failed with EPIPE and none was pending before it began: a SIGPIPE meant for the host is left
/// alone. The process-wide disposition is never touched.
///
/// Not thread-safe: a scope belongs to the thread that made it. An event loop may hold one scope
/// across a whole batch of copier::advance calls to save two system calls per call.
class sigpipe_scope {
 public:
  sigpipe_scope() noexcept {
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

  /// Records the outcome of a call made under the scope; EPIPE means it may have raised SIGPIPE.
  void note(const std::error_code& ec) noexcept {
    if (ec == std::errc::broken_pipe) raised_ = true;
  }

 private:
  sigset_t old_;
  bool was_blocked_ = false;
  bool pending_before_ = false;
  bool raised_ = false;
};

}  // namespace splice_lib

#endif  // SPLICE_SIGPIPE_HPP_
