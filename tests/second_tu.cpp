// SPDX-License-Identifier: MIT
// A second translation unit with every header: a function defined in a header without `inline`
// makes the link fail.
#include <splice/splice.hpp>

#include <catch2/catch.hpp>

TEST_CASE("the headers link from two translation units", "[build]") {
  CHECK(splice::copy(-1, -1, 0).bytes == 0);
  CHECK(&splice::pipe_pool::shared() == &splice_lib::pipe_pool::shared());
  CHECK(SPLICE_VERSION == 100);
}
