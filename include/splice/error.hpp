// SPDX-License-Identifier: MIT
// The library's own error values: what went wrong where no system call failed.
#ifndef SPLICE_ERROR_HPP_
#define SPLICE_ERROR_HPP_

#include <string>
#include <system_error>
#include <type_traits>

namespace splice_lib {

/// errc names the failures that no system call returned. They live in splice_lib::category(),
/// beside std::system_category() (errno from a call) as asio's misc category sits beside its system
/// one. Each is equivalent to the std::errc condition named with it, so `ec == std::errc::...`
/// keeps working. Deadlines are std::errc::timed_out and a direction ended because the other one
/// failed is std::errc::operation_canceled, as the standard library says them.
enum class errc {
  /// An option would lose bytes (a zero buffer_size, max_splice or max_advance). Fix the options;
  /// retrying does not help. ~ std::errc::invalid_argument.
  invalid_options = 1,
  /// src is not open for reading. ~ std::errc::bad_file_descriptor.
  not_readable,
  /// dst is not open for writing. ~ std::errc::bad_file_descriptor.
  not_writable,
  /// A copier's socket or pipe is blocking: set O_NONBLOCK (or drive it with copy()).
  /// ~ std::errc::invalid_argument.
  blocking_fd,
  /// The pipe pool is at max_pipes or max_bytes. A copy then runs in user space; retrying after
  /// another copy ends may work. ~ std::errc::resource_unavailable_try_again.
  pool_exhausted,
  /// A write that asked to move bytes moved none: dst takes no more. Retrying does not help.
  /// ~ std::errc::io_error.
  wrote_nothing,
  /// A PROXY protocol header is malformed or not allowed; the connection carries no usable
  /// stream. ~ std::errc::protocol_error.
  bad_proxy_header,
};

namespace detail {
class error_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "splice"; }
  std::string message(int v) const override {
    switch (static_cast<errc>(v)) {
      case errc::invalid_options: return "invalid options";
      case errc::not_readable: return "not open for reading";
      case errc::not_writable: return "not open for writing";
      case errc::blocking_fd: return "socket or pipe is blocking";
      case errc::pool_exhausted: return "pipe pool exhausted";
      case errc::wrote_nothing: return "write moved no byte";
      case errc::bad_proxy_header: return "bad PROXY protocol header";
    }
    return "unknown splice error";
  }
  std::error_condition default_error_condition(int v) const noexcept override {
    switch (static_cast<errc>(v)) {
      case errc::invalid_options:
      case errc::blocking_fd: return std::errc::invalid_argument;
      case errc::not_readable:
      case errc::not_writable: return std::errc::bad_file_descriptor;
      case errc::pool_exhausted: return std::errc::resource_unavailable_try_again;
      case errc::wrote_nothing: return std::errc::io_error;
      case errc::bad_proxy_header: return std::errc::protocol_error;
    }
    return {v, *this};
  }
};
}  // namespace detail

/// Returns the category of errc values.
inline const std::error_category& category() noexcept {
  static const detail::error_category c;
  return c;
}

/// Returns e as a std::error_code in category().
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

namespace detail {
/// error_of says a failed move's err (detail/moves.hpp: errno, or a value no call returned) as an
/// error_code: errno in the system category, an empty write as errc::wrote_nothing, a buffer that
/// could not be had as std::errc::not_enough_memory.
inline std::error_code error_of(int err) noexcept {
  if (err == -1) return make_error_code(errc::wrote_nothing);
  if (err == -2) return std::make_error_code(std::errc::not_enough_memory);
  return {err, std::system_category()};
}
}  // namespace detail

}  // namespace splice_lib

namespace std {
template <>
struct is_error_code_enum<splice_lib::errc> : true_type {};
}  // namespace std

#endif  // SPLICE_ERROR_HPP_
