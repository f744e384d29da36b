// SPDX-License-Identifier: MIT
// libFuzzer target: a fuzzed schedule of fd kinds, limit, path, chunk sizes and injected faults
// drives splice::copy, and the bytes delivered are checked against the model: dst got a prefix of
// what src was given, at most the limit, and src's bytes = delivered + unsent + left in src.
// Build and run: .ci/fuzz [SECONDS]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "splice/splice.hpp"
#include "support.hpp"

namespace {

/// Reads the fuzzer's bytes one decision at a time; zeros once they run out.
struct input {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t next() { return n ? (--n, *p++) : 0; }
};

/// Faults from the fuzzer's bytes: EINTR, EAGAIN, short counts, or one terminal error.
struct fuzzed_calls : splice::system_calls {
  input* in;
  bool* fired;
  int fault() {
    switch (in->next() % 32) {  // 0, which is all an exhausted input gives, injects nothing
      case 1: return EINTR;
      case 2: return EAGAIN;
      case 3: return *fired ? 0 : (*fired = true, ECONNRESET);
      case 4: return *fired ? 0 : (*fired = true, EINVAL);
      default: return 0;
    }
  }
  std::size_t cap(std::size_t n) { return (in->next() & 3) == 0 ? std::max<std::size_t>(1, n / (1 + in->next())) : n; }
  ssize_t read(int fd, void* b, std::size_t n) {
    if (int e = fault()) return errno = e, -1;
    return splice::system_calls::read(fd, b, cap(n));
  }
  ssize_t send(int fd, const void* b, std::size_t n, int f) {
    if (int e = fault()) return errno = e, -1;
    return splice::system_calls::send(fd, b, cap(n), f);
  }
  ssize_t write(int fd, const void* b, std::size_t n) {
    if (int e = fault()) return errno = e, -1;
    return splice::system_calls::write(fd, b, cap(n));
  }
  ssize_t splice(int i, int o, std::size_t n, unsigned f) {
    if (int e = fault()) return errno = e, -1;
    return splice::system_calls::splice(i, o, cap(n), f);
  }
};

struct end {
  test::fd mine, peer;
};

// make_end makes one end of kind k (0 tcp, 1 unix, 2 pipe, 3 file).
end make_end(int k, bool source) {
  switch (k) {
    case 0: {
      auto t = test::make_tcp();
      return {std::move(t.b), std::move(t.a)};
    }
    case 1: {
      auto [x, y] = test::make_unix();
      return {std::move(x), std::move(y)};
    }
    case 2: {
      auto [r, w] = test::make_pipe();
      return source ? end{std::move(r), std::move(w)} : end{std::move(w), std::move(r)};
    }
    default:
      return {test::make_file(), {}};
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input in{data, size};
  const int kinds = in.next();
  const int sk = kinds % 4, dk = (kinds / 4) % 3;  // no file dst: it would need no reader
  const std::uint8_t flags = in.next();
  const std::size_t total = std::size_t(in.next()) * 997 + in.next();
  const std::uint64_t limit = (flags & 8) ? splice::no_limit : std::uint64_t(in.next()) * 1013;
  splice::options opt;
  opt.userspace = flags & 1;
  opt.splice_after = (flags >> 1) & 3;
  opt.splice_from_unix = (kinds / 12) & 1;
  static splice::pipe_pool pool;
  opt.pool = &pool;

  const std::string payload = test::payload(total, kinds);
  auto src = make_end(sk, true), dst = make_end(dk, false);
  if (flags & 16) test::set_nonblocking(src.mine.get()), test::set_nonblocking(dst.mine.get());
  if (sk == 3) {
    test::write_all(src.mine.get(), payload);
    ::lseek(src.mine.get(), 0, SEEK_SET);
  }
  std::thread writer([&] {
    if (sk == 3) return;
    test::write_all(src.peer.get(), payload, 1 + (flags >> 5) * 4000);
    src.peer.reset();
  });
  std::string got;
  std::thread reader([&] { got = test::read_all(dst.peer.get()); });

  bool fired = false;
  fuzzed_calls sys;
  sys.in = &in;
  sys.fired = &fired;
  splice::poll_poller poller(std::chrono::seconds(5));
  const splice::result r = splice::copy(dst.mine.get(), src.mine.get(), limit, poller, opt, sys);
  dst.mine.reset();
  const std::string rest = test::read_all(src.mine.get());
  writer.join();
  reader.join();

  const bool ok = r.bytes == got.size() && got == payload.substr(0, got.size()) && r.bytes <= limit &&
                  r.bytes + r.unsent + rest.size() == total && (r.error || r.bytes == std::min<std::uint64_t>(limit, total)) &&
                  pool.stats().in_use == 0;
  if (!ok) {
    std::fprintf(stderr, "src %d dst %d flags %d total %zu limit %llu: bytes %llu got %zu unsent %llu rest %zu error %s (%s) prefix %d\n",
                 sk, dk, flags, total, (unsigned long long)limit, (unsigned long long)r.bytes, got.size(),
                 (unsigned long long)r.unsent, rest.size(), r.error.message().c_str(), r.op,
                 int(got == payload.substr(0, got.size())));
    std::abort();
  }
  return 0;
}
