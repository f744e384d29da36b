// SPDX-License-Identifier: MIT
// What the mirror tests share: a mirror socket whose far end the test reads, and a proxy() run
// with a mirror on the client's direction.
#ifndef SPLICE_TESTS_MIRROR_SUPPORT_HPP_
#define SPLICE_TESTS_MIRROR_SUPPORT_HPP_

#include <catch2/catch.hpp>

#include <string>

#include "splice/mirror.hpp"
#include "splice/proxy.hpp"
#include "support.hpp"

namespace test {

/// A mirror socket: the near end belongs to the mirror (near() hands it over), the test reads far.
struct mirror_end {
  tcp_pair p = make_tcp();
  int near() { return p.a.release(); }
  int far() const { return p.b.get(); }
};

/// A mirror's config that never cuts a mirror that is read, however the threads are scheduled: a
/// backlog for the whole stream, and time enough to finish.
inline splice_lib::mirror::config roomy(std::size_t stream) {
  splice_lib::mirror::config c;
  c.lag = stream;
  c.linger = std::chrono::seconds(60);
  return c;
}

/// Runs proxy() over a rig with the mirror m on the a -> b direction (the client's bytes), and
/// checks that both directions arrived exact and the relay ended without an error.
template <class Sys = splice_lib::system_calls>
splice_lib::proxy_result proxied(splice_lib::mirror& m, const std::string& up, const std::string& down,
                                 bool userspace = false, Sys sys = {}) {
  rig r;
  splice_lib::proxy_options opt;
  opt.copy.userspace = userspace;
  opt.mirror_a_to_b = &m;
  splice_lib::proxy_result res;
  const auto e = both_ways(r, up, down, [&] { res = splice_lib::proxy(r.a(), r.b(), opt, sys); });
  CHECK(e.got_up == up);
  CHECK(e.got_down == down);
  CHECK(!res.error);
  return res;
}

}  // namespace test

#endif  // SPLICE_TESTS_MIRROR_SUPPORT_HPP_
