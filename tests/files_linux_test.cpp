// SPDX-License-Identifier: MIT
// Regular files at one or both ends of a copy (issue 9): a file on tmpfs and on the disk's
// filesystem paired with TCP, unix stream sockets, pipes and other files, both ways, at the fds'
// current offsets; limits, O_APPEND, a file truncated mid-copy, procfs, wrong open modes, a full
// filesystem, and what the kernel routes report.
// Test cases tagged [routes] check the kernel's routes themselves (what is spliced, which pipes
// are used, open modes checked before a byte moves, a copier over blocking files); the others hold
// on the user-space path as well.
#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "splice/splice.hpp"
#include "files_support.hpp"
#include "support.hpp"

using test::channel;
using test::contents;
using test::file_size;
using test::make_channel;
using test::name_of;
using test::named_file;
using test::offset;
using test::payload;
using test::peer;
using test::where;
using test::dir_of;

namespace {

splice::options with(bool userspace, splice::pipe_pool* pool = nullptr) {
  splice::options o;
  o.userspace = userspace;
  o.pool = pool;
  return o;
}

splice::result copy_fds(int dst, int src, std::uint64_t limit, const splice::options& opt) {
  splice::poll_poller p;
  return splice::copy(dst, src, limit, p, opt);
}

/// Copies file (from its offset) to l.mine while a thread drains l.theirs; closes l.mine after.
/// Returns the result; got is what arrived at the far end.
splice::result file_to_channel(int file, channel& l, std::uint64_t limit, const splice::options& opt, std::string& got) {
  std::thread reader([&] { got = test::read_all(l.theirs.get()); });
  const auto res = copy_fds(l.mine.get(), file, limit, opt);
  l.mine.reset();  // end of stream for the reader
  reader.join();
  return res;
}

/// Copies l.mine to file (at its offset) while a thread writes data into l.theirs and closes it.
splice::result channel_to_file(channel& l, int file, std::uint64_t limit, const splice::options& opt, const std::string& data) {
  std::thread writer([&] {
    test::write_all(l.theirs.get(), data);
    l.theirs.reset();
  });
  const auto res = copy_fds(file, l.mine.get(), limit, opt);
  test::read_all(l.mine.get());  // lets the writer finish should the copy have stopped early
  writer.join();
  return res;
}

/// A tmpfs of the given size mounted on a new directory, unmounted and removed at scope exit.
/// `ok` is false where mounting is not allowed (not root, no CAP_SYS_ADMIN).
struct small_tmpfs {
  std::string dir = "/tmp/splice-full-XXXXXX";
  bool ok = false;
  explicit small_tmpfs(const char* size) {
    if (!::mkdtemp(&dir[0])) return;
    ok = ::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, (std::string("size=") + size).c_str()) == 0;
  }
  ~small_tmpfs() {
    if (ok) ::umount2(dir.c_str(), MNT_DETACH);
    ::rmdir(dir.c_str());
  }
};

bool is_tmpfs(const char* dir) {
  struct statfs s {};
  return ::statfs(dir, &s) == 0 && s.f_type == TMPFS_MAGIC;
}

}  // namespace

TEST_CASE("the test directories are tmpfs and the disk's filesystem", "[files]") {
  CHECK(is_tmpfs(dir_of(where::tmpfs)));
  CHECK_FALSE(is_tmpfs(dir_of(where::disk)));
}

TEST_CASE("a file copies to and from TCP, unix sockets and pipes at its offset, which moves by exactly the bytes",
          "[files]") {
  const where w = GENERATE(where::tmpfs, where::disk);
  const peer p = GENERATE(peer::tcp, peer::unix_socket, peer::pipe);
  const bool to_file = GENERATE(false, true);
  const bool nonblocking = GENERATE(false, true);
  const bool userspace = GENERATE(false, true);
  CAPTURE(name_of(w), name_of(p), to_file, nonblocking, userspace);
  const auto data = payload((3 << 20) + 1, 11);
  const std::string prefix = payload(12345, 12);
  splice::pipe_pool pool;
  const auto opt = with(userspace, &pool);
  if (!to_file) {
    named_file f(w, prefix + data);
    ::lseek(f.fd.get(), off_t(prefix.size()), SEEK_SET);
    channel l = make_channel(p, false);
    if (nonblocking) test::set_nonblocking(l.mine.get());
    std::string got;
    const auto res = file_to_channel(f.fd.get(), l, splice::no_limit, opt, got);
    CHECK_FALSE(res.error);
    CHECK(res.bytes == data.size());
    CHECK((got == data));
    CHECK(offset(f.fd.get()) == prefix.size() + data.size());
  } else {
    named_file f(w, prefix + payload(5000, 13));  // a tail past the offset, to be overwritten
    ::lseek(f.fd.get(), off_t(prefix.size()), SEEK_SET);
    channel l = make_channel(p, true);
    if (nonblocking) test::set_nonblocking(l.mine.get());
    const auto res = channel_to_file(l, f.fd.get(), splice::no_limit, opt, data);
    CHECK_FALSE(res.error);
    CHECK(res.bytes == data.size());
    CHECK(offset(f.fd.get()) == prefix.size() + data.size());
    CHECK((contents(f.fd.get()) == prefix + data));
  }
  CHECK(pool.stats().in_use == 0);
}

TEST_CASE("a file copies to a file at both offsets, on one filesystem and across two", "[files]") {
  const where from = GENERATE(where::tmpfs, where::disk);
  const where to = GENERATE(where::tmpfs, where::disk);
  const bool userspace = GENERATE(false, true);
  CAPTURE(name_of(from), name_of(to), userspace);
  const auto data = payload((5 << 20) + 3, 21);
  const std::string src_prefix = payload(7777, 22), dst_prefix = payload(3333, 23);
  named_file src(from, src_prefix + data), dst(to, dst_prefix + payload(9000, 24));
  ::lseek(src.fd.get(), off_t(src_prefix.size()), SEEK_SET);
  ::lseek(dst.fd.get(), off_t(dst_prefix.size()), SEEK_SET);
  const auto res = copy_fds(dst.fd.get(), src.fd.get(), splice::no_limit, with(userspace));
  CHECK_FALSE(res.error);
  CHECK(res.bytes == data.size());
  CHECK(offset(src.fd.get()) == src_prefix.size() + data.size());
  CHECK(offset(dst.fd.get()) == dst_prefix.size() + data.size());
  CHECK((contents(dst.fd.get()) == dst_prefix + data));
}

TEST_CASE("limits below, at and beyond a file's end copy exactly that much and move the offset as much",
          "[files]") {
  enum class to { file, pipe, tcp };
  const to d = GENERATE(to::file, to::pipe, to::tcp);
  const bool userspace = GENERATE(false, true);
  const std::string data = payload((2 << 20) + 5, 31);
  const std::uint64_t start = 100, left = data.size() - start;
  const std::uint64_t limit = GENERATE_COPY(1, left - 1000, left - 1, left, left + 1, left + 1000, splice::no_limit);
  CAPTURE(int(d), userspace, limit);
  named_file src(where::tmpfs, data);
  ::lseek(src.fd.get(), off_t(start), SEEK_SET);
  const std::uint64_t want = std::min(limit, left);
  splice::result res;
  std::string got;
  if (d == to::file) {
    named_file dst(where::tmpfs);
    res = copy_fds(dst.fd.get(), src.fd.get(), limit, with(userspace));
    got = contents(dst.fd.get());
    CHECK(offset(dst.fd.get()) == want);
  } else {
    channel l = make_channel(d == to::pipe ? peer::pipe : peer::tcp, false);
    res = file_to_channel(src.fd.get(), l, limit, with(userspace), got);
  }
  CHECK_FALSE(res.error);
  CHECK(res.bytes == want);
  CHECK((got == data.substr(start, want)));
  CHECK(offset(src.fd.get()) == start + want);
}

TEST_CASE("an O_APPEND destination gets the bytes appended, exactly", "[files]") {
  enum class from { file, tcp, pipe };
  const from s = GENERATE(from::file, from::tcp, from::pipe);
  const where w = GENERATE(where::tmpfs, where::disk);
  const bool userspace = GENERATE(false, true);
  CAPTURE(int(s), name_of(w), userspace);
  const auto data = payload((1 << 20) + 77, 41);
  const std::string existing = payload(4321, 42);
  named_file out(w, existing);
  test::fd dst = out.reopen(O_WRONLY | O_APPEND);  // its offset is 0: appending must ignore it
  splice::result res;
  if (s == from::file) {
    named_file src(where::tmpfs, data);
    ::lseek(src.fd.get(), 0, SEEK_SET);
    res = copy_fds(dst.get(), src.fd.get(), splice::no_limit, with(userspace));
    CHECK(offset(src.fd.get()) == data.size());
  } else {
    channel l = make_channel(s == from::tcp ? peer::tcp : peer::pipe, true);
    res = channel_to_file(l, dst.get(), splice::no_limit, with(userspace), data);
  }
  CHECK_FALSE(res.error);
  CHECK(res.bytes == data.size());
  CHECK((contents(out.fd.get()) == existing + data));
}

// The reader takes 1 MiB, then cuts the file to half of its 32 MiB: by then the copy has taken at
// most 1 MiB plus what the pipe or the small socket buffers and the copy's own buffer hold (well
// under 16 MiB), so the new end lies ahead of it whatever the scheduling.
TEST_CASE("a file truncated during a copy ends the copy at its new end, bytes exact, no error", "[files]") {
  const peer p = GENERATE(peer::pipe, peer::tcp);
  const where w = GENERATE(where::tmpfs, where::disk);
  const bool userspace = GENERATE(false, true);
  CAPTURE(name_of(p), name_of(w), userspace);
  const auto data = payload(32 << 20, 51);
  const std::size_t cut = 16 << 20;
  named_file src(w, data);
  ::lseek(src.fd.get(), 0, SEEK_SET);
  channel l = make_channel(p, false);
  if (p == peer::pipe) {
    ::fcntl(l.mine.get(), F_SETPIPE_SZ, 1 << 16);
  } else {
    test::set_buffers(l.mine.get(), 1 << 16);
    test::set_buffers(l.theirs.get(), 1 << 16);
  }
  std::string got;
  std::thread reader([&] {
    got = test::read_all(l.theirs.get(), 1 << 20);
    ::ftruncate(src.fd.get(), off_t(cut));
    got += test::read_all(l.theirs.get());
  });
  const auto res = copy_fds(l.mine.get(), src.fd.get(), splice::no_limit, with(userspace));
  l.mine.reset();
  reader.join();
  CHECK_FALSE(res.error);
  CHECK(res.bytes == cut);
  CHECK(got.size() == cut);
  CHECK((got == data.substr(0, cut)));
  CHECK(offset(src.fd.get()) == cut);
}

// /proc/self/cmdline and /proc/self/environ are fixed for the life of the process (the kernel reads
// them from the argument and environment areas laid out at exec, which nothing here rewrites), so a
// read loop's result before the copy is what the copy must deliver. Like every procfs file they
// report a size of 0, and copy_file_range copies nothing from them: a copy must read them as a
// stream.
TEST_CASE("a procfs file copies what a read loop reads from it", "[files]") {
  const char* path = GENERATE("/proc/self/cmdline", "/proc/self/environ");
  enum class to { file, pipe, tcp };
  const to d = GENERATE(to::file, to::pipe, to::tcp);
  const bool userspace = GENERATE(false, true);
  CAPTURE(path, int(d), userspace);
  std::string want;
  {
    test::fd f(::open(path, O_RDONLY | O_CLOEXEC));
    REQUIRE(f);
    want = test::read_all(f.get());
  }
  if (want.empty()) {
    WARN("SKIP: " << path << " is empty in this process");
    return;
  }
  test::fd src(::open(path, O_RDONLY | O_CLOEXEC));
  REQUIRE(src);
  REQUIRE(file_size(src.get()) == 0);  // what makes procfs special
  splice::result res;
  std::string got;
  if (d == to::file) {
    named_file dst(where::tmpfs);
    res = copy_fds(dst.fd.get(), src.get(), splice::no_limit, with(userspace));
    got = contents(dst.fd.get());
  } else {
    channel l = make_channel(d == to::pipe ? peer::pipe : peer::tcp, false);
    res = file_to_channel(src.get(), l, splice::no_limit, with(userspace), got);
  }
  CHECK_FALSE(res.error);
  CHECK(res.bytes == want.size());
  CHECK((got == want));
}

TEST_CASE("a full filesystem ends the copy with ENOSPC, bytes as stored, nothing lost from src", "[files][enospc]") {
  small_tmpfs full("1m");
  if (!full.ok) {
    WARN("SKIP: cannot mount a tmpfs here (needs root)");
    return;
  }
  const bool from_file = GENERATE(true, false);
  const bool userspace = GENERATE(false, true);
  CAPTURE(from_file, userspace);
  const auto data = payload(4 << 20, 61);
  const std::uint64_t start = 555;
  named_file dst(full.dir);
  splice::result res;
  std::uint64_t taken = 0;  // bytes src gave: start + taken is src's offset for a file
  if (from_file) {
    named_file src(where::tmpfs, payload(std::size_t(start), 62) + data);
    ::lseek(src.fd.get(), off_t(start), SEEK_SET);
    res = copy_fds(dst.fd.get(), src.fd.get(), splice::no_limit, with(userspace));
    taken = offset(src.fd.get()) - start;
  } else {
    channel l = make_channel(peer::tcp, true);
    std::thread writer([&] {
      test::write_all(l.theirs.get(), data);
      l.theirs.reset();
    });
    res = copy_fds(dst.fd.get(), l.mine.get(), splice::no_limit, with(userspace));
    const std::string rest = test::read_all(l.mine.get());  // also lets the writer finish
    writer.join();
    taken = data.size() - rest.size();
    CHECK((rest == data.substr(std::size_t(taken))));
  }
  CHECK(res.error == std::errc::no_space_on_device);
  CHECK(res.bytes > 0);
  CHECK(res.bytes < data.size());
  CHECK(res.bytes == file_size(dst.fd.get()));
  CHECK(taken == res.bytes + res.unsent);
  CHECK((contents(dst.fd.get()) == data.substr(0, std::size_t(res.bytes))));
}

TEST_CASE("a copy to a read-only file fails with errc::not_writable from fd before src gives a byte",
          "[files][routes]") {
  const bool from_file = GENERATE(true, false);
  const bool userspace = GENERATE(false, true);
  CAPTURE(from_file, userspace);
  const auto data = payload(100000, 71);
  named_file out(where::tmpfs);
  test::fd dst = out.reopen(O_RDONLY);
  splice::result res;
  if (from_file) {
    named_file src(where::tmpfs, data);
    ::lseek(src.fd.get(), 100, SEEK_SET);
    res = copy_fds(dst.get(), src.fd.get(), splice::no_limit, with(userspace));
    CHECK(offset(src.fd.get()) == 100);
  } else {
    channel l = make_channel(peer::tcp, true);
    REQUIRE(test::write_all(l.theirs.get(), data));
    l.theirs.reset();
    res = copy_fds(dst.get(), l.mine.get(), splice::no_limit, with(userspace));
    CHECK((test::read_all(l.mine.get()) == data));
  }
  CHECK(res.error == splice::errc::not_writable);
  CHECK(res.error == std::errc::bad_file_descriptor);
  CHECK(std::string(res.op) == "fd");
  CHECK(res.bytes == 0);
  CHECK(res.unsent == 0);
  CHECK(file_size(out.fd.get()) == 0);
}

TEST_CASE("a copy from a write-only file fails with errc::not_readable from fd", "[files][routes]") {
  const bool to_file = GENERATE(true, false);
  const bool userspace = GENERATE(false, true);
  CAPTURE(to_file, userspace);
  named_file in(where::tmpfs, payload(100000, 81));
  test::fd src = in.reopen(O_WRONLY);
  splice::result res;
  std::string got;
  if (to_file) {
    named_file dst(where::tmpfs);
    res = copy_fds(dst.fd.get(), src.get(), splice::no_limit, with(userspace));
    got = contents(dst.fd.get());
  } else {
    channel l = make_channel(peer::tcp, false);
    res = file_to_channel(src.get(), l, splice::no_limit, with(userspace), got);
  }
  CHECK(res.error == splice::errc::not_readable);
  CHECK(res.error == std::errc::bad_file_descriptor);
  CHECK(std::string(res.op) == "fd");
  CHECK(res.bytes == 0);
  CHECK(got.empty());
}

// Which routes are the kernel's: a file to a socket by sendfile and a file to or from a pipe by one
// splice per chunk (neither needs a pipe of the pool), a socket to a file by splice through a pooled
// pipe, a file to a file on one filesystem by copy_file_range. The user-space path splices nothing.
TEST_CASE("the kernel file routes report spliced and use a pooled pipe only from a socket; user space does not",
          "[files][routes]") {
  enum class pair { file_to_tcp, tcp_to_file, file_to_pipe, pipe_to_file, file_to_file_tmpfs, file_to_file_disk };
  const pair k = GENERATE(pair::file_to_tcp, pair::tcp_to_file, pair::file_to_pipe, pair::pipe_to_file,
                          pair::file_to_file_tmpfs, pair::file_to_file_disk);
  const bool userspace = GENERATE(false, true);
  CAPTURE(int(k), userspace);
  const auto data = payload((4 << 20) + 9, 91);
  splice::pipe_pool pool;
  const auto opt = with(userspace, &pool);
  splice::result res;
  std::string got;
  if (k == pair::tcp_to_file || k == pair::pipe_to_file) {
    named_file dst(where::tmpfs);
    channel l = make_channel(k == pair::tcp_to_file ? peer::tcp : peer::pipe, true);
    res = channel_to_file(l, dst.fd.get(), splice::no_limit, opt, data);
    got = contents(dst.fd.get());
  } else if (k == pair::file_to_tcp || k == pair::file_to_pipe) {
    named_file src(where::tmpfs, data);
    ::lseek(src.fd.get(), 0, SEEK_SET);
    channel l = make_channel(k == pair::file_to_tcp ? peer::tcp : peer::pipe, false);
    res = file_to_channel(src.fd.get(), l, splice::no_limit, opt, got);
  } else {
    const where w = k == pair::file_to_file_tmpfs ? where::tmpfs : where::disk;
    named_file src(w, data), dst(w);
    ::lseek(src.fd.get(), 0, SEEK_SET);
    res = copy_fds(dst.fd.get(), src.fd.get(), splice::no_limit, opt);
    got = contents(dst.fd.get());
  }
  CHECK_FALSE(res.error);
  CHECK(res.bytes == data.size());
  CHECK((got == data));
  const auto st = pool.stats();
  CHECK(st.in_use == 0);
  CHECK(res.spliced == !userspace);
  if (userspace) {
    CHECK(st.spliced_bytes == 0);
  } else if (k == pair::tcp_to_file) {
    CHECK(st.created + st.reused > 0);  // through a pipe of the pool
  } else {
    CHECK(st.spliced_bytes == data.size());  // every byte by the kernel
    CHECK(st.created == 0);                  // and no temporary pipe
  }
}

// A copier in an event loop: the file end may be blocking (a regular file is never waited on), and
// the copier never asks to wait for a file to become readable or writable.
TEST_CASE("a copier takes a blocking file with a non-blocking socket or pipe and never waits on the file",
          "[files][routes]") {
  const peer p = GENERATE(peer::tcp, peer::pipe);
  const bool to_file = GENERATE(false, true);
  const bool userspace = GENERATE(false, true);
  CAPTURE(name_of(p), to_file, userspace);
  const auto data = payload((4 << 20) + 13, 101);
  named_file f(where::tmpfs, to_file ? std::string() : data);
  ::lseek(f.fd.get(), 0, SEEK_SET);
  channel l = make_channel(p, to_file);
  test::set_nonblocking(l.mine.get());
  if (p == peer::tcp) test::set_buffers(l.mine.get(), 1 << 16);  // so that the socket fills and says EAGAIN
  std::string got;
  std::thread far([&] {
    if (to_file) test::write_all(l.theirs.get(), data, 1 << 14);
    else got = test::read_all(l.theirs.get());
    if (to_file) l.theirs.reset();
  });
  const int file = f.fd.get(), sock = l.mine.get();
  splice::copier<> c(to_file ? file : sock, to_file ? sock : file, splice::no_limit, with(userspace));
  int waits_on_file = 0, turns = 0;
  for (splice::step s; (s = c.advance()) != splice::step::done; ++turns) {
    if ((s == splice::step::read && !to_file) || (s == splice::step::write && to_file)) ++waits_on_file;
    if (s == splice::step::again) continue;
    pollfd pfd{sock, short(to_file ? POLLIN : POLLOUT), 0};
    ::poll(&pfd, 1, 1000);
  }
  if (to_file) test::read_all(sock);  // lets the writer finish should the copy have stopped early
  else l.mine.reset();
  far.join();
  CHECK_FALSE(c.result().error);
  CHECK(c.result().bytes == data.size());
  CHECK(waits_on_file == 0);
  CHECK((to_file ? contents(file) : got) == data);
}

TEST_CASE("a file-to-file copier with max_advance 1 MiB returns step::again before it finishes 16 MiB",
          "[files][routes]") {
  const where w = GENERATE(where::tmpfs, where::disk);
  const bool userspace = GENERATE(false, true);
  CAPTURE(name_of(w), userspace);
  const auto data = payload(16 << 20, 111);
  named_file src(w, data), dst(w);
  ::lseek(src.fd.get(), 0, SEEK_SET);
  splice::options opt = with(userspace);
  opt.max_advance = 1 << 20;
  splice::copier<> c(dst.fd.get(), src.fd.get(), splice::no_limit, opt);
  int agains = 0, other = 0;
  std::uint64_t most = 0, before = 0;
  for (splice::step s; (s = c.advance()) != splice::step::done;) {
    most = std::max(most, c.result().bytes - before);
    before = c.result().bytes;
    if (s == splice::step::again) ++agains;
    else ++other;  // a file is never waited on: read, write or either would be wrong here
    REQUIRE(agains + other < 1000);
  }
  CHECK_FALSE(c.result().error);
  CHECK(c.result().bytes == data.size());
  CHECK(agains >= 8);
  CHECK(other == 0);
  CHECK(most <= (std::uint64_t(2) << 20));  // each turn stops near its share
  CHECK((contents(dst.fd.get()) == data));
}
