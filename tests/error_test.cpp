// SPDX-License-Identifier: MIT
#include "splice/error.hpp"  // first: the header must be self-contained

#include <catch2/catch.hpp>

#include "splice/splice.hpp"

TEST_CASE("the library's errors have a category of their own and their std::errc equivalents", "[error]") {
  using splice_lib::errc;
  const std::error_code invalid = errc::invalid_options;
  CHECK(invalid.category() == splice::category());
  CHECK(std::string(invalid.category().name()) == "splice");
  CHECK(invalid.message() == "invalid options");
  CHECK(invalid == std::errc::invalid_argument);
  CHECK(invalid != std::make_error_code(std::errc::invalid_argument));  // a code of its own, equivalent only
  CHECK(std::error_code(errc::not_readable) == std::errc::bad_file_descriptor);
  CHECK(std::error_code(errc::not_writable) == std::errc::bad_file_descriptor);
  CHECK(std::error_code(errc::blocking_fd) == std::errc::invalid_argument);
  CHECK(std::error_code(errc::pool_exhausted) == std::errc::resource_unavailable_try_again);
  CHECK(std::error_code(errc::wrote_nothing) == std::errc::io_error);
  CHECK(std::error_code(errc::bad_proxy_header) == std::errc::protocol_error);
  for (int v = 1; v <= int(errc::bad_proxy_header); ++v)
    CHECK(splice::category().message(v) != "unknown splice error");
  CHECK(splice::category().message(999) == "unknown splice error");
}
