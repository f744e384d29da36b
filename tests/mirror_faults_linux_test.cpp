// SPDX-License-Identifier: MIT
// A mirror that fails midway, through the system-call seam (tests/faults.hpp): it is cut with
// that error, holds an exact prefix, and the primary is exact.
#include "splice/mirror.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <thread>

#include "faults.hpp"
#include "mirror_support.hpp"
#include "support.hpp"

using splice_lib::mirror;

TEST_CASE("a mirror that fails midway (EPIPE, ECONNRESET through the seam) is cut; the primary is exact", "[mirror]") {
  const bool userspace = GENERATE(false, true);
  const int err = GENERATE(EPIPE, ECONNRESET);
  const std::string up = test::payload(8 << 20, 8);
  test::mirror_end e;
  const int near = e.near();
  mirror m(near, test::roomy(up.size()));
  test::script s;
  s.only_out = near;
  s.fault = [&](const std::string&, int nth) { return nth == 3 ? err : 0; };  // its third write
  std::string got;
  std::thread reader([&] { got = test::read_all(e.far()); });
  test::proxied(m, up, "", userspace, test::faulty(s));
  reader.join();
  CHECK(m.cut());
  CHECK(m.error() == std::error_code(err, std::system_category()));
  CHECK(got.size() == m.bytes());
  CHECK(got == up.substr(0, got.size()));
}
