// SPDX-License-Identifier: MIT
#ifndef SPLICE_RESULT_HPP_
#define SPLICE_RESULT_HPP_

#include <cstdint>
#include <limits>
#include <system_error>

namespace splice_lib {

/// The limit that means "copy until end of file".
inline constexpr std::uint64_t no_limit = std::numeric_limits<std::uint64_t>::max();

/// result is what a copy did. End of file and a reached limit are success: `error` is falsy.
///
/// Errors, and whether retrying helps (README, "Errors", has the whole convention):
/// - EBADF, ENOTSOCK, EINVAL from a call, errc::not_readable, errc::not_writable,
///   errc::blocking_fd, errc::invalid_options: the fds or options are wrong; retrying does not help.
/// - ECONNRESET, EPIPE: a peer went away; the connection is over, retrying does not help.
/// - ENOMEM, ENOBUFS: the kernel is short of memory; a later retry may work.
/// - std::errc::timed_out: the poller's deadline passed; retrying waits again.
/// On any error, `bytes` is still exact, and the next call continues from the next unread byte of
/// src, except for `unsent` bytes, which were read from src and could not be delivered.
struct result {
  /// Bytes written to dst.
  std::uint64_t bytes = 0;
  /// Falsy on success (end of file, or limit reached).
  std::error_code error;
  /// True when a kernel path (splice, sendfile, copy_file_range) moved bytes.
  bool spliced = false;
  /// The system call that failed ("splice", "read", ...), a word of README's list where none did
  /// ("options", "fd", "idle", ...), or "" on success.
  const char* op = "";
  /// Bytes read from src but not delivered to dst because the copy failed; 0 on success.
  std::uint64_t unsent = 0;
  /// Why bytes went through user space, when some did, as a word of README's list ("option",
  /// "fd pair", "small writes", "pool", "kernel refused", "urgent data", "size 0 file"); else "".
  const char* fallback = "";
};

/// What a proxy did: each direction's copy, and the first error of either.
struct proxy_result {
  result a_to_b, b_to_a;
  /// The first error in either direction; falsy when both ended with end of file.
  std::error_code error;
  /// The system call behind error, or a word of README's list, or "".
  const char* op = "";
};

/// What a copier waits for after advance().
enum class step {
  read,    ///< src to become readable
  write,   ///< dst to become writable
  either,  ///< src to become readable or dst writable, whichever comes first: the copier cannot
           ///< tell which one said EAGAIN. A caller that can wait on one fd only may call
           ///< advance() again at once; that call names one fd.
  again,   ///< nothing: more is ready, but this call did its share (options::max_advance). Call
           ///< advance() again after other ready work; never wait on a poller for it.
  later,   ///< the time copier::wake_at(): the copy's rate_limit has no bytes for it before then
  done,    ///< nothing: the copy has ended; result() says how
};

}  // namespace splice_lib

#endif  // SPLICE_RESULT_HPP_
