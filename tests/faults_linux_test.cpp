// SPDX-License-Identifier: MIT
// Faults injected through the system-call seam, on the Linux splice path.
#include <functional>
#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "faults.hpp"
#include "support.hpp"

using test::counting_poller;

namespace {

using test::faulty;
using test::script;

struct outcome {
  splice::result res;
  std::string got, rest;
};

// run copies data through a relay with the faults of sc, using a fresh pool so that pipe
// creation is exercised, and returns what arrived and what stayed in src.
outcome run(script& sc, const std::string& data, counting_poller& p, bool userspace = false,
            bool nonblocking = false) {
  splice::pipe_pool pool;
  splice::options opt;
  opt.pool = &pool;
  opt.userspace = userspace;
  opt.splice_after = 0;
  test::relay r;
  if (nonblocking) test::set_nonblocking(r.src()), test::set_nonblocking(r.dst());
  outcome o;
  o.got = test::through(r, data, [&] {
    o.res = splice::copy(r.dst(), r.src(), splice::no_limit, p, opt, faulty(sc));
    o.rest = test::read_all(r.src());
  });
  CHECK(pool.stats().in_use == 0);
  return o;
}

}  // namespace

TEST_CASE("EINTR on every system call is retried and loses nothing", "[faults]") {
  const bool userspace = GENERATE(false, true);
  script sc;
  sc.fault = [](const std::string&, int nth) { return nth % 2 ? EINTR : 0; };
  counting_poller p;
  const auto data = test::payload(5 << 20);
  const auto o = run(sc, data, p, userspace);
  CHECK((o.got == data));
  CHECK(o.res.bytes == data.size());
  CHECK_FALSE(o.res.error);
  CHECK(o.res.spliced == !userspace);
  CHECK(sc.calls[userspace ? "read" : "splice"] > 2);
}

TEST_CASE("injected EAGAIN waits on the poller and loses nothing", "[faults]") {
  const bool userspace = GENERATE(false, true);
  script sc;
  sc.fault = [](const std::string& op, int nth) { return op != "getsockopt" && nth % 3 == 0 ? EAGAIN : 0; };
  counting_poller p;
  const auto data = test::payload(3 << 20, 2);
  const auto o = run(sc, data, p, userspace, true);
  CHECK((o.got == data));
  CHECK(o.res.bytes == data.size());
  CHECK_FALSE(o.res.error);
  CHECK(p.waits() > 0);
}

TEST_CASE("ENOSYS from pipe2 falls back to pipe and fcntl, still splicing", "[faults]") {
  script sc;
  sc.fault = [](const std::string& op, int) { return op == "pipe2" ? ENOSYS : 0; };
  counting_poller p;
  const auto data = test::payload(1 << 20, 3);
  const auto o = run(sc, data, p);
  CHECK((o.got == data));
  CHECK(o.res.spliced);
  CHECK(sc.calls["pipe"] == 1);
}

TEST_CASE("EMFILE or ENFILE when making the pipe falls back to user space without losing a byte", "[faults]") {
  const int err = GENERATE(EMFILE, ENFILE);
  script sc;
  sc.fault = [err](const std::string& op, int) { return op == "pipe2" ? err : 0; };
  counting_poller p;
  const auto data = test::payload(1 << 20, 4);
  const auto o = run(sc, data, p);
  CHECK((o.got == data));
  CHECK(o.res.bytes == data.size());
  CHECK_FALSE(o.res.error);
  CHECK_FALSE(o.res.spliced);
}

TEST_CASE("EINVAL from the first splice falls back to user space without losing a byte", "[faults]") {
  const int err = GENERATE(EINVAL, ENOSYS);
  script sc;
  sc.fault = [err](const std::string& op, int nth) { return op == "splice" && nth == 1 ? err : 0; };
  counting_poller p;
  const auto data = test::payload(2 << 20, 5);
  const auto o = run(sc, data, p);
  CHECK((o.got == data));
  CHECK(o.res.bytes == data.size());
  CHECK_FALSE(o.res.error);
  CHECK_FALSE(o.res.spliced);
  CHECK(sc.calls["splice"] == 1);
}

TEST_CASE("short writes and short splices deliver every byte", "[faults]") {
  const bool userspace = GENERATE(false, true);
  script sc;
  sc.max_len = 1000;
  counting_poller p;
  const auto data = test::payload(1 << 20, 6);
  const auto o = run(sc, data, p, userspace);
  CHECK((o.got == data));
  CHECK(o.res.bytes == data.size());
  CHECK_FALSE(o.res.error);
}

TEST_CASE("a failing write counts exactly what was delivered and what was lost", "[faults]") {
  const bool userspace = GENERATE(false, true);
  const int err = GENERATE(EPIPE, ECONNRESET, ENOMEM);
  script sc;
  // Calls alternate fill, write, fill, write...: fail the 5th write, leaving a chunk undelivered.
  sc.max_len = 7000;
  sc.fault = [&, err](const std::string& op, int nth) {
    return (userspace ? op == "send" : op == "splice" && nth % 2 == 0) && nth >= (userspace ? 5 : 10) ? err : 0;
  };
  counting_poller p;
  const auto data = test::payload(1 << 20, 7);
  const auto o = run(sc, data, p, userspace);
  CHECK(o.res.error == std::error_code(err, std::system_category()));
  CHECK(std::string(o.res.op) == (userspace ? "send" : "splice"));
  CHECK(o.got.size() == o.res.bytes);
  CHECK((o.got == data.substr(0, o.got.size())));
  CHECK(o.res.unsent > 0);
  CHECK(o.res.bytes + o.res.unsent + o.rest.size() == data.size());
  CHECK((o.rest == data.substr(data.size() - o.rest.size())));
}

TEST_CASE("a failing read ends the copy with that error and no loss", "[faults]") {
  const bool userspace = GENERATE(false, true);
  script sc;
  sc.fault = [&](const std::string& op, int nth) {
    return op == (userspace ? "read" : "splice") && nth == 3 ? ECONNRESET : 0;
  };
  counting_poller p;
  const auto data = test::payload(1 << 20, 8);
  const auto o = run(sc, data, p, userspace);
  CHECK(o.res.error == std::errc::connection_reset);
  CHECK(o.res.unsent == 0);
  CHECK(o.got.size() == o.res.bytes);
  CHECK(o.res.bytes + o.rest.size() == data.size());
  CHECK((o.got + o.rest == data));
}

TEST_CASE("a failing classification is reported and touches no byte", "[faults]") {
  script sc;
  sc.fault = [](const std::string& op, int) { return op == "getsockopt" ? ENOMEM : 0; };
  counting_poller p;
  const auto data = test::payload(1000, 9);
  const auto o = run(sc, data, p);
  CHECK(o.res.error == std::errc::not_enough_memory);
  CHECK(std::string(o.res.op) == "getsockopt");
  CHECK(o.res.bytes == 0);
  CHECK((o.rest == data));
}
