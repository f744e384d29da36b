// SPDX-License-Identifier: MIT
// Faults injected through the system-call seam on the file routes (issue 9): sendfile for a file to
// a socket, splice for a socket to a file and a file to or from a pipe, copy_file_range for a file
// to a file. Needs the seam members
//   ssize_t sendfile(int out, int in, std::size_t n);          // null offset: uses and moves in's
//   ssize_t copy_file_range(int in, int out, std::size_t n);   // null offsets: uses and moves both
// in splice_lib::linux_calls.
#include <functional>
#include <map>
#include <string>
#include <thread>

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "files_support.hpp"
#include "faults.hpp"
#include "support.hpp"

using test::channel;
using test::named_file;
using test::payload;
using test::where;

using test::counting_poller;

namespace {

using test::faulty;
using test::script;
using test::zero;

/// The file routes, and the system call that each is made of.
enum class route { file_to_tcp, tcp_to_file, file_to_pipe, pipe_to_file, file_to_file };
const char* name_of(route r) {
  switch (r) {
    case route::file_to_tcp: return "file -> tcp";
    case route::tcp_to_file: return "tcp -> file";
    case route::file_to_pipe: return "file -> pipe";
    case route::pipe_to_file: return "pipe -> file";
    default: return "file -> file";
  }
}
const char* kernel_call(route r) {
  return r == route::file_to_tcp ? "sendfile" : r == route::file_to_file ? "copy_file_range" : "splice";
}
bool from_file(route r) { return r == route::file_to_tcp || r == route::file_to_pipe || r == route::file_to_file; }

struct outcome {
  splice::result res;
  std::string got;                 // what reached dst (past its prefix, for a file)
  std::uint64_t src_offset = 0;    // src's offset past its prefix, for a file
  std::uint64_t dst_offset = 0;    // dst's offset past its prefix, for a file
  std::string rest;                // what stayed in a socket or pipe src
};

constexpr std::size_t src_prefix = 4099, dst_prefix = 777;

// run copies data over route r with the faults of sc through a fresh pool, never leaving the pipe
// for a slow stream (splice_after = 0). File ends start at an
// offset past a prefix, so that the copy must use and move the fds' offsets, not its own.
outcome run(route r, script& sc, const std::string& data, counting_poller& p, bool nonblocking = false) {
  splice::pipe_pool pool;
  splice::options opt;
  opt.pool = &pool;
  opt.splice_after = 0;  // a socket source stays on its pipe however short the faults make its splices
  outcome o;
  named_file src_file(where::tmpfs, payload(src_prefix, 1) + data);
  named_file dst_file(where::tmpfs, payload(dst_prefix, 2));
  ::lseek(src_file.fd.get(), off_t(src_prefix), SEEK_SET);
  if (r == route::file_to_file) {
    o.res = splice::copy(dst_file.fd.get(), src_file.fd.get(), splice::no_limit, p, opt, faulty(sc));
  } else if (from_file(r)) {
    channel c = test::make_channel(r == route::file_to_tcp ? test::peer::tcp : test::peer::pipe, false);
    if (nonblocking) test::set_nonblocking(c.mine.get());
    std::thread reader([&] { o.got = test::read_all(c.theirs.get()); });
    o.res = splice::copy(c.mine.get(), src_file.fd.get(), splice::no_limit, p, opt, faulty(sc));
    c.mine.reset();
    reader.join();
  } else {
    channel c = test::make_channel(r == route::tcp_to_file ? test::peer::tcp : test::peer::pipe, true);
    if (nonblocking) test::set_nonblocking(c.mine.get());
    std::thread writer([&] {
      test::write_all(c.theirs.get(), data);
      c.theirs.reset();
    });
    o.res = splice::copy(dst_file.fd.get(), c.mine.get(), splice::no_limit, p, opt, faulty(sc));
    o.rest = test::read_all(c.mine.get());  // also lets the writer finish
    writer.join();
  }
  if (from_file(r)) o.src_offset = test::offset(src_file.fd.get()) - src_prefix;
  if (!from_file(r) || r == route::file_to_file) {
    o.dst_offset = test::offset(dst_file.fd.get()) - dst_prefix;
    o.got = test::contents(dst_file.fd.get()).substr(dst_prefix);
  }
  CHECK(pool.stats().in_use == 0);
  return o;
}

// whole checks that every byte arrived, in order, and that the offsets moved by exactly that.
void whole(route r, const outcome& o, const std::string& data) {
  CHECK_FALSE(o.res.error);
  CHECK(o.res.bytes == data.size());
  CHECK(o.got.size() == data.size());
  CHECK((o.got == data));
  if (from_file(r)) CHECK(o.src_offset == data.size());
  if (!from_file(r) || r == route::file_to_file) CHECK(o.dst_offset == data.size());
}

}  // namespace

TEST_CASE("EINTR on every other call of the file routes is retried and loses nothing", "[faults][files]") {
  const route r = GENERATE(route::file_to_tcp, route::tcp_to_file, route::file_to_pipe, route::pipe_to_file,
                           route::file_to_file);
  CAPTURE(name_of(r));
  script sc;
  sc.cap_reads = true;
  sc.fault = [](const std::string&, int nth) { return nth % 2 ? EINTR : 0; };
  counting_poller p;
  const auto data = payload((5 << 20) + 1, 3);
  const auto o = run(r, sc, data, p);
  whole(r, o, data);
  CHECK(o.res.spliced);
  CHECK(sc.calls[kernel_call(r)] > 2);
}

TEST_CASE("injected EAGAIN on the file routes waits on the poller and loses nothing", "[faults][files]") {
  const route r = GENERATE(route::file_to_tcp, route::tcp_to_file, route::file_to_pipe);
  CAPTURE(name_of(r));
  script sc;
  sc.cap_reads = true;
  // Only where the kernel can say it: a socket or pipe that is full or empty, never a file.
  sc.spare_files = true;
  sc.fault = [](const std::string& op, int nth) {
    return (op == "sendfile" || op == "splice") && nth % 3 == 0 ? EAGAIN : 0;
  };
  counting_poller p;
  const auto data = payload(3 << 20, 4);
  const auto o = run(r, sc, data, p, true);
  whole(r, o, data);
  CHECK(p.waits() > 0);
}

TEST_CASE("short sendfile, splice and copy_file_range counts deliver every byte", "[faults][files]") {
  const route r = GENERATE(route::file_to_tcp, route::tcp_to_file, route::file_to_pipe, route::pipe_to_file,
                           route::file_to_file);
  CAPTURE(name_of(r));
  script sc;
  sc.cap_reads = true;
  sc.max_len = 1000;
  counting_poller p;
  const auto data = payload((1 << 20) + 3, 5);
  const auto o = run(r, sc, data, p);
  whole(r, o, data);
  CHECK(std::size_t(sc.calls[kernel_call(r)]) >= data.size() / 1000);
}

TEST_CASE("a first copy_file_range that fails with EXDEV, ENOSYS, EINVAL, EOPNOTSUPP, EPERM or EIO falls back",
          "[faults][files]") {
  const int err = GENERATE(EXDEV, ENOSYS, EINVAL, EOPNOTSUPP, EPERM, EIO);
  CAPTURE(err);
  script sc;
  sc.cap_reads = true;
  sc.fault = [err](const std::string& op, int nth) { return op == "copy_file_range" && nth == 1 ? err : 0; };
  counting_poller p;
  const auto data = payload((2 << 20) + 5, 6);
  const auto o = run(route::file_to_file, sc, data, p);
  whole(route::file_to_file, o, data);
  CHECK(sc.calls["copy_file_range"] == 1);  // not asked again for this copy
}

TEST_CASE("a first copy_file_range that copies 0 bytes of a non-empty file falls back, as for procfs",
          "[faults][files]") {
  script sc;
  sc.cap_reads = true;
  sc.fault = [](const std::string& op, int nth) { return op == "copy_file_range" && nth == 1 ? zero : 0; };
  counting_poller p;
  const auto data = payload((1 << 20) + 7, 7);
  const auto o = run(route::file_to_file, sc, data, p);
  whole(route::file_to_file, o, data);
  CHECK(sc.calls["copy_file_range"] == 1);
}

TEST_CASE("a first sendfile that fails with EINVAL or ENOSYS falls back, losing nothing", "[faults][files]") {
  const int err = GENERATE(EINVAL, ENOSYS);
  CAPTURE(err);
  script sc;
  sc.cap_reads = true;
  sc.fault = [err](const std::string& op, int nth) { return op == "sendfile" && nth == 1 ? err : 0; };
  counting_poller p;
  const auto data = payload((2 << 20) + 9, 8);
  const auto o = run(route::file_to_tcp, sc, data, p);
  whole(route::file_to_tcp, o, data);
  CHECK(sc.calls["sendfile"] == 1);
}

TEST_CASE("a first file splice that fails with EINVAL or ENOSYS falls back, losing nothing", "[faults][files]") {
  const route r = GENERATE(route::tcp_to_file, route::file_to_pipe, route::pipe_to_file);
  const int err = GENERATE(EINVAL, ENOSYS);
  CAPTURE(name_of(r), err);
  script sc;
  sc.cap_reads = true;
  sc.fault = [err](const std::string& op, int nth) { return op == "splice" && nth == 1 ? err : 0; };
  counting_poller p;
  const auto data = payload((2 << 20) + 11, 9);
  const auto o = run(r, sc, data, p);
  whole(r, o, data);
  CHECK(sc.calls["splice"] == 1);
  CHECK(o.rest.empty());
}

TEST_CASE("a file that refuses splice after the pipe took bytes gets them by write, losing nothing", "[faults][files]") {
  // socket -> pipe succeeds, pipe -> file says EINVAL (a file system without splice): the pipe's
  // bytes are read back and written, and the rest of the copy runs in user space.
  script sc;
  sc.cap_reads = true;
  sc.fault = [](const std::string& op, int nth) { return op == "splice" && nth == 2 ? EINVAL : 0; };
  counting_poller p;
  const auto data = payload((2 << 20) + 13, 10);
  const auto o = run(route::tcp_to_file, sc, data, p);
  whole(route::tcp_to_file, o, data);
  CHECK(sc.calls["splice"] == 2);
  CHECK(o.rest.empty());
}

TEST_CASE("a sendfile that fails mid-copy reports its error with exact accounting", "[faults][files]") {
  const int err = GENERATE(ECONNRESET, EPIPE, ENOMEM);
  CAPTURE(err);
  script sc;
  sc.cap_reads = true;
  sc.max_len = 100000;
  sc.fault = [err](const std::string& op, int nth) { return op == "sendfile" && nth == 4 ? err : 0; };
  counting_poller p;
  const auto data = payload(1 << 20, 10);
  const auto o = run(route::file_to_tcp, sc, data, p);
  CHECK(o.res.error == std::error_code(err, std::system_category()));
  CHECK(std::string(o.res.op) == "sendfile");
  CHECK(o.res.bytes > 0);
  CHECK(o.got.size() == o.res.bytes);
  CHECK((o.got == data.substr(0, o.got.size())));
  CHECK(o.res.unsent == 0);  // a failed sendfile took nothing from the file
  CHECK(o.src_offset == o.res.bytes);
}

TEST_CASE("a copy_file_range that fails mid-copy reports its error with exact accounting", "[faults][files]") {
  const int err = GENERATE(ENOSPC, EIO, EDQUOT);
  CAPTURE(err);
  script sc;
  sc.cap_reads = true;
  sc.max_len = 100000;
  sc.fault = [err](const std::string& op, int nth) { return op == "copy_file_range" && nth == 4 ? err : 0; };
  counting_poller p;
  const auto data = payload(1 << 20, 11);
  const auto o = run(route::file_to_file, sc, data, p);
  CHECK(o.res.error == std::error_code(err, std::system_category()));
  CHECK(std::string(o.res.op) == "copy_file_range");
  CHECK(o.res.bytes > 0);
  CHECK(o.got.size() == o.res.bytes);
  CHECK((o.got == data.substr(0, o.got.size())));
  CHECK(o.res.unsent == 0);
  CHECK(o.src_offset == o.res.bytes);
  CHECK(o.dst_offset == o.res.bytes);
}

TEST_CASE("a splice into a file that fails mid-copy reports its error with exact accounting", "[faults][files]") {
  const route r = GENERATE(route::tcp_to_file, route::pipe_to_file);
  CAPTURE(name_of(r));
  script sc;
  sc.cap_reads = true;
  sc.max_len = 100000;
  // Socket -> file takes two splices per chunk (into the pipe, out of it), pipe -> file one.
  const int nth_fail = r == route::tcp_to_file ? 8 : 4;
  sc.fault = [nth_fail](const std::string& op, int nth) { return op == "splice" && nth == nth_fail ? ENOSPC : 0; };
  counting_poller p;
  const auto data = payload(1 << 20, 12);
  const auto o = run(r, sc, data, p);
  CHECK(o.res.error == std::errc::no_space_on_device);
  CHECK(o.res.bytes > 0);
  CHECK(o.got.size() == o.res.bytes);
  CHECK((o.got == data.substr(0, o.got.size())));
  CHECK(o.dst_offset == o.res.bytes);
  CHECK(o.res.bytes + o.res.unsent + o.rest.size() == data.size());
  CHECK((o.rest == data.substr(data.size() - o.rest.size())));
}
