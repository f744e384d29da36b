// SPDX-License-Identifier: MIT
// What counting the metrics costs a copier: advance() on small messages with options::metrics on
// and off, in the same binary and the same run (interleave the repetitions:
//   build/bench/metrics_bench --benchmark_repetitions=20 --benchmark_enable_random_interleaving=true)
// and the counting alone, as one advance() does it (the thread's shard, then two counts);
// BM_advance_paired runs both copiers turn about, one message each per iteration, and reports the
// ratio of their mean advance() (on_per_off): the one to read on a shared, noisy machine.
#include <chrono>
#include <cstdint>
#include <memory>

#include <poll.h>

#include <benchmark/benchmark.h>

#include "splice/splice.hpp"
#include "support.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

// wait_in waits until fd is readable.
void wait_in(int fd) {
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, -1) < 0) {
  }
}

// nodelay sets TCP_NODELAY, so each message leaves at once.
void nodelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// BM_advance_small: one copier between two TCP connections; each iteration sends a 64-byte
// message into src, times one advance() (the message into dst, then EAGAIN on src), and reads the
// message from dst. Only the advance() is timed. range(0): options::metrics; range(1):
// options::userspace (a stream of small writes goes to user space after 8 splices anyway).
void BM_advance_small(benchmark::State& state) {
  test::relay r;
  test::set_nonblocking(r.src());
  test::set_nonblocking(r.dst());
  nodelay(r.in.a.get());
  nodelay(r.dst());
  splice::options o;
  o.metrics = state.range(0) != 0;
  o.userspace = state.range(1) != 0;
  splice::copier<> c(r.dst(), r.src(), splice::no_limit, o);
  char msg[64] = {}, sink[256];
  std::uint64_t moved = 0;
  for (auto _ : state) {
    if (::send(r.in.a.get(), msg, sizeof msg, MSG_NOSIGNAL) != ssize_t(sizeof msg)) return state.SkipWithError("send");
    wait_in(r.src());
    const auto t0 = clock_type::now();
    const splice::step s = c.advance();
    const auto t1 = clock_type::now();
    if (s != splice::step::read || c.result().bytes != (moved += sizeof msg)) return state.SkipWithError("advance");
    for (std::size_t got = 0; got < sizeof msg;) {
      wait_in(r.out.b.get());
      const ssize_t n = ::recv(r.out.b.get(), sink, sizeof sink, 0);
      if (n <= 0) return state.SkipWithError("recv");
      got += std::size_t(n);
    }
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  state.SetBytesProcessed(std::int64_t(moved));
}
BENCHMARK(BM_advance_small)->ArgsProduct({{0, 1}, {0, 1}})->ArgNames({"metrics", "userspace"})->UseManualTime();
// The same, exactly 2000 advance() calls each, for an instruction count under callgrind:
//   valgrind --tool=callgrind --toggle-collect='*copier*advance*' build/bench/metrics_bench
//     --benchmark_filter='BM_advance_2000/metrics:1/userspace:0'   (Ir / 2000 = instructions per call)
BENCHMARK(BM_advance_small)->Name("BM_advance_2000")->ArgsProduct({{0, 1}, {0, 1}})->ArgNames({"metrics", "userspace"})->Iterations(2000)->UseManualTime();

// one_message sends a 64-byte message through copier c of relay r and returns how long its
// advance() took, in seconds (negative: the copy went wrong).
double one_message(test::relay& r, splice::copier<>& c, std::uint64_t& moved) {
  char msg[64] = {}, sink[256];
  if (::send(r.in.a.get(), msg, sizeof msg, MSG_NOSIGNAL) != ssize_t(sizeof msg)) return -1;
  wait_in(r.src());
  const auto t0 = clock_type::now();
  const splice::step s = c.advance();
  const auto t1 = clock_type::now();
  if (s != splice::step::read || c.result().bytes != (moved += sizeof msg)) return -1;
  for (std::size_t got = 0; got < sizeof msg;) {
    wait_in(r.out.b.get());
    const ssize_t n = ::recv(r.out.b.get(), sink, sizeof sink, 0);
    if (n <= 0) return -1;
    got += std::size_t(n);
  }
  return std::chrono::duration<double>(t1 - t0).count();
}

// BM_advance_paired: two copiers over the same two connections, metrics off and on, taking turns
// one message each (each holds nothing between its turns, so they may share the fds), so both see
// the same sockets, the same pipe and the same machine at the same moment; the counters are the
// mean advance() of each and their ratio (on / off). range(0): options::userspace; range(1) = 0
// runs both with metrics off, to show the ratio the harness itself gives.
void BM_advance_paired(benchmark::State& state) {
  test::relay r;
  test::set_nonblocking(r.src());
  test::set_nonblocking(r.dst());
  nodelay(r.in.a.get());
  nodelay(r.dst());
  std::unique_ptr<splice::copier<>> c[2];
  for (int i = 0; i < 2; ++i) {
    splice::options o;
    o.metrics = i == 1 && state.range(1) != 0;
    o.userspace = state.range(0) != 0;
    c[i] = std::make_unique<splice::copier<>>(r.dst(), r.src(), splice::no_limit, o);
  }
  double spent[2] = {0, 0};
  std::uint64_t moved[2] = {0, 0};
  for (auto _ : state) {
    const bool on_first = (state.iterations() & 1) != 0;  // alternate which goes first
    for (int k = 0; k < 2; ++k) {
      const int i = on_first ? 1 - k : k;
      const double t = one_message(r, *c[i], moved[i]);
      if (t < 0) return state.SkipWithError("copy");
      spent[i] += t;
    }
  }
  const double n = double(state.iterations());
  state.counters["off_ns"] = spent[0] / n * 1e9;
  state.counters["on_ns"] = spent[1] / n * 1e9;
  state.counters["on_per_off"] = spent[1] / spent[0];
}
BENCHMARK(BM_advance_paired)->ArgsProduct({{0, 1}, {0, 1}})->ArgNames({"userspace", "metrics"})->UseRealTime();

// BM_count: what an advance() that moved bytes adds when counting is on, without the copy: the
// thread's shard, then the direction, the spliced or user-space bytes, as copier::tell does.
void BM_count(benchmark::State& state) {
  namespace d = splice_lib::detail;
  for (auto _ : state) {
    d::shard* sh = d::this_shard();
    benchmark::DoNotOptimize(sh);
    d::add_count(sh, d::up_bytes, 64);
    d::add_count(sh, d::user_bytes + 2, 64);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_count);

}  // namespace

BENCHMARK_MAIN();
