// SPDX-License-Identifier: MIT
// The TCP-to-TCP benchmark suite: a writer sends chunks into one TCP connection, the copy under
// test moves them to a second one, a reader drains it. The splice path and the forced user-space
// path run in the same binary and the same run, one after the other for each setting, so their
// ratio holds on a noisy machine. bench/report.py turns the JSON output into a table and a chart.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sys/resource.h>

#include <benchmark/benchmark.h>

#include "splice/splice.hpp"
#include "support.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

/// The real system calls, counted.
struct counted : splice::system_calls {
  std::uint64_t* n;
  explicit counted(std::uint64_t& c) : n(&c) {}
  ssize_t read(int f, void* b, std::size_t l) { return ++*n, splice::system_calls::read(f, b, l); }
  ssize_t send(int f, const void* b, std::size_t l, int fl) { return ++*n, splice::system_calls::send(f, b, l, fl); }
  ssize_t write(int f, const void* b, std::size_t l) { return ++*n, splice::system_calls::write(f, b, l); }
  ssize_t splice(int i, int o, std::size_t l, unsigned fl) { return ++*n, splice::system_calls::splice(i, o, l, fl); }
  int getsockopt(int f, int lv, int nm, void* v, socklen_t* l) { return ++*n, splice::system_calls::getsockopt(f, lv, nm, v, l); }
  int fstat(int f, struct stat* s) { return ++*n, splice::system_calls::fstat(f, s); }
  int pipe2(int f[2], int fl) { return ++*n, splice::system_calls::pipe2(f, fl); }
  int fcntl(int f, int c, int a) { return ++*n, splice::system_calls::fcntl(f, c, a); }
  int poll(pollfd* p, nfds_t k, int t) { return ++*n, splice::system_calls::poll(p, k, t); }
};

/// poll_poller, counted.
struct counted_poller {
  std::uint64_t* n;
  splice::poll_poller inner;
  std::error_code wait_readable(int f) { return ++*n, inner.wait_readable(f); }
  std::error_code wait_writable(int f) { return ++*n, inner.wait_writable(f); }
};

double cpu_seconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
double thread_cpu_seconds() { return cpu_seconds(RUSAGE_THREAD); }

/// The machine's CPU time from /proc/stat, in ticks: busy (user, system, irq, softirq), idle
/// (idle, iowait) and stolen by the hypervisor. Says whether a run was CPU-bound.
struct machine_ticks {
  double busy = 0, idle = 0, steal = 0;
  static machine_ticks now() {
    machine_ticks t;
    std::ifstream f("/proc/stat");
    std::string cpu;
    double v[8] = {};
    if (f >> cpu && cpu == "cpu")
      for (double& x : v) f >> x;
    t.busy = v[0] + v[1] + v[2] + v[5] + v[6];
    t.idle = v[3] + v[4];
    t.steal = v[7];
    return t;
  }
};

/// Reads and discards up to n bytes from f; returns how many arrived before end of file.
std::size_t drain(int f, std::size_t n) {
  static thread_local std::vector<char> buf(std::size_t(1) << 20);
  std::size_t got = 0;
  while (got < n) {
    const ssize_t k = ::read(f, buf.data(), std::min(buf.size(), n - got));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += std::size_t(k);
  }
  return got;
}

/// Which sockets a stream's copy reads from and writes to.
enum class ends { tcp, unix_to_tcp, tcp_to_unix };

/// One connection: the end a thread writes into and the end another reads from.
struct link {
  test::fd w, r;
};
link make_link(bool unix_socket) {
  if (unix_socket) {
    auto [x, y] = test::make_unix();
    return {std::move(x), std::move(y)};
  }
  auto t = test::make_tcp();
  return {std::move(t.a), std::move(t.b)};
}

constexpr std::int64_t kStream = 64 << 20;  // bytes moved per iteration of a streaming benchmark

/// How a stream is set up, beside the copy's options.
struct setup {
  bool nonblocking = false;  // the copy's fds are O_NONBLOCK: it waits in the poller, not the kernel
  int buffers = 0;           // > 0: every socket gets SO_SNDBUF and SO_RCVBUF of that size
  ends e = ends::tcp;
  bool pinned = false;       // the writer and reader share CPU 0, the copier has CPU 1 to itself
};

/// Pins the calling thread to one CPU.
bool pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

/// Streams kStream bytes per iteration, written in chunks of state.range(0) bytes, through a copy.
void stream(benchmark::State& state, splice::options opt, setup how = {}) {
  pthread_setname_np(pthread_self(), "bench-copier");
  cpu_set_t all;
  pthread_getaffinity_np(pthread_self(), sizeof all, &all);
  if (how.pinned && !(CPU_ISSET(0, &all) && CPU_ISSET(1, &all) && pin(1))) {
    state.SkipWithError("needs CPUs 0 and 1");
    return;
  }
  const std::size_t chunk = std::size_t(state.range(0));
  const link in = make_link(how.e == ends::unix_to_tcp), out = make_link(how.e == ends::tcp_to_unix);
  const int src = in.r.get(), dst = out.w.get();
  if (how.nonblocking) test::set_nonblocking(src), test::set_nonblocking(dst);
  if (how.buffers > 0)
    for (int fd : {in.w.get(), src, dst, out.r.get()}) test::set_buffers(fd, how.buffers);
  const double all0 = cpu_seconds(RUSAGE_SELF);
  const machine_ticks m0 = machine_ticks::now();
  const std::string block = test::payload(chunk);
  std::uint64_t calls = 0;
  double cpu = 0, writer_cpu = 0, reader_cpu = 0;
  for (auto _ : state) {
    std::atomic<bool> ok{true};
    const auto start = clock_type::now();
    std::thread writer([&] {
      pthread_setname_np(pthread_self(), "bench-writer");  // names for tracing tools
      if (how.pinned) pin(0);
      const double c0 = thread_cpu_seconds();
      for (std::int64_t sent = 0; sent < kStream; sent += std::int64_t(chunk))
        if (!test::write_all(in.w.get(), block)) ok = false;
      writer_cpu += thread_cpu_seconds() - c0;
    });
    std::thread reader([&] {
      pthread_setname_np(pthread_self(), "bench-reader");
      if (how.pinned) pin(0);
      const double c0 = thread_cpu_seconds();
      if (drain(out.r.get(), kStream) != std::size_t(kStream)) ok = false;
      reader_cpu += thread_cpu_seconds() - c0;
    });
    const double cpu0 = thread_cpu_seconds();
    counted_poller p{&calls, {}};
    const auto res = splice::copy(dst, src, kStream, p, opt, counted(calls));
    cpu += thread_cpu_seconds() - cpu0;
    writer.join();
    reader.join();
    state.SetIterationTime(std::chrono::duration<double>(clock_type::now() - start).count());
    if (res.error || res.bytes != std::uint64_t(kStream) || !ok) {
      state.SkipWithError("copy failed");
      break;
    }
  }
  const double gib = double(state.iterations()) * double(kStream) / double(1 << 30);
  state.SetBytesProcessed(state.iterations() * kStream);
  state.counters["cpu_s_per_GiB"] = cpu / gib;
  state.counters["writer_cpu_s_per_GiB"] = writer_cpu / gib;
  state.counters["reader_cpu_s_per_GiB"] = reader_cpu / gib;
  // Writer, copier and reader together: where the copier's saving goes on a machine they share.
  state.counters["all_cpu_s_per_GiB"] = (cpu_seconds(RUSAGE_SELF) - all0) / gib;
  state.counters["calls_per_MiB"] = double(calls) / (gib * 1024);
  const machine_ticks m1 = machine_ticks::now();
  const double ticks = (m1.busy - m0.busy) + (m1.idle - m0.idle) + (m1.steal - m0.steal);
  if (ticks > 0) {
    state.counters["machine_busy"] = (m1.busy - m0.busy) / ticks;
    state.counters["machine_steal"] = (m1.steal - m0.steal) / ticks;
  }
  pthread_setaffinity_np(pthread_self(), sizeof all, &all);
}

// The three ways a copy can run: the library's default; splice from the first byte (no proving
// of the stream); and the user-space path forced.
splice::options defaults() { return {}; }
splice::options eager() {
  splice::options o;
  o.splice_after = 0;
  return o;
}
splice::options userspace() {
  splice::options o;
  o.userspace = true;
  return o;
}

void BM_stream_splice(benchmark::State& s) { stream(s, defaults()); }
void BM_stream_userspace(benchmark::State& s) { stream(s, userspace()); }

setup nonblocking() {
  setup h;
  h.nonblocking = true;
  return h;
}
setup big_buffers() {
  setup h;
  h.buffers = 4 << 20;
  return h;
}
setup with_ends(ends e) {
  setup h;
  h.e = e;
  return h;
}
setup pinned() {
  setup h;
  h.pinned = true;
  return h;
}

void BM_stream_nonblocking_splice(benchmark::State& s) { stream(s, defaults(), nonblocking()); }
void BM_stream_nonblocking_userspace(benchmark::State& s) { stream(s, userspace(), nonblocking()); }
void BM_stream_bigbuf_splice(benchmark::State& s) { stream(s, defaults(), big_buffers()); }
void BM_stream_bigbuf_userspace(benchmark::State& s) { stream(s, userspace(), big_buffers()); }
// The copier alone on a CPU, as a proxy's own machine; the writer and reader share the other.
void BM_stream_pinned_splice(benchmark::State& s) { stream(s, defaults(), pinned()); }
void BM_stream_pinned_userspace(benchmark::State& s) { stream(s, userspace(), pinned()); }

// A unix stream socket on one side. The splice variant splices out of unix sockets too.
splice::options unix_splice() {
  splice::options o;
  o.splice_from_unix = true;
  return o;
}
void BM_stream_unix_to_tcp_splice(benchmark::State& s) { stream(s, unix_splice(), with_ends(ends::unix_to_tcp)); }
void BM_stream_unix_to_tcp_userspace(benchmark::State& s) { stream(s, userspace(), with_ends(ends::unix_to_tcp)); }
void BM_stream_tcp_to_unix_splice(benchmark::State& s) { stream(s, unix_splice(), with_ends(ends::tcp_to_unix)); }
void BM_stream_tcp_to_unix_userspace(benchmark::State& s) { stream(s, userspace(), with_ends(ends::tcp_to_unix)); }

/// The pipe-size sweep: range(1) is the pipe size asked of the pool.
void BM_stream_pipe_size(benchmark::State& s) {
  splice::pipe_pool::config c;
  c.pipe_size = std::size_t(s.range(1));
  splice::pipe_pool pool(c);
  splice::options o = eager();
  o.pool = &pool;
  stream(s, o);
}

/// The bytes-per-call sweep: range(1) is the most bytes asked of one splice.
void BM_stream_max_splice(benchmark::State& s) {
  splice::options o = eager();
  o.max_splice = std::size_t(s.range(1));
  stream(s, o);
}

/// Short copies: each iteration is a new pair of connections moving range(0) bytes.
void short_copies(benchmark::State& state, splice::options opt) {
  const std::size_t size = std::size_t(state.range(0));
  const std::string data = test::payload(size);
  double cpu = 0;
  for (auto _ : state) {
    test::relay r;
    test::write_all(r.in.a.get(), data);
    ::shutdown(r.in.a.get(), SHUT_WR);
    const auto start = clock_type::now();
    const double cpu0 = thread_cpu_seconds();
    splice::poll_poller p;
    const auto res = splice::copy(r.dst(), r.src(), splice::no_limit, p, opt);
    cpu += thread_cpu_seconds() - cpu0;
    ::shutdown(r.dst(), SHUT_WR);
    const bool ok = drain(r.out.b.get(), size + 1) == size;
    state.SetIterationTime(std::chrono::duration<double>(clock_type::now() - start).count());
    if (res.error || !ok) {
      state.SkipWithError("copy failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["cpu_us_per_copy"] = 1e6 * cpu / double(state.iterations());
}

void BM_short_splice(benchmark::State& s) { short_copies(s, defaults()); }
void BM_short_eager(benchmark::State& s) { short_copies(s, eager()); }
void BM_short_userspace(benchmark::State& s) { short_copies(s, userspace()); }

/// The real system calls, except that sockatmark answers "not at the mark" without a system call:
/// the ping-pong with it and without it measures what crossing TCP urgent marks costs.
struct no_mark_check : splice::system_calls {
  int sockatmark(int) { return 0; }
};

/// Latency: 64-byte request/response ping-pong through a copy in each direction, as a proxy does.
template <class Sys = splice::system_calls>
void ping_pong(benchmark::State& state, splice::options opt, Sys sys = {}) {
  test::relay up, down;  // up: client -> server, down: server -> client
  // The client writes up.in.a and reads down.out.b; the server reads up.out.b and writes down.in.a.
  std::thread fwd([&] {
    splice::poll_poller p;
    splice::copy(up.dst(), up.src(), splice::no_limit, p, opt, sys);
    ::shutdown(up.dst(), SHUT_WR);
  });
  std::thread back([&] {
    splice::poll_poller p;
    splice::copy(down.dst(), down.src(), splice::no_limit, p, opt, sys);
    ::shutdown(down.dst(), SHUT_WR);
  });
  std::thread server([&] {
    for (std::string m; (m = test::read_all(up.out.b.get(), 64)).size() == 64;)
      if (!test::write_all(down.in.a.get(), m)) break;
    ::shutdown(down.in.a.get(), SHUT_WR);
  });
  const std::string msg = test::payload(64);
  std::vector<double> rtts;
  for (auto _ : state) {
    const auto start = clock_type::now();
    test::write_all(up.in.a.get(), msg);
    const bool ok = test::read_all(down.out.b.get(), msg.size()).size() == msg.size();
    const double t = std::chrono::duration<double>(clock_type::now() - start).count();
    state.SetIterationTime(t);
    rtts.push_back(t);
    if (!ok) {
      state.SkipWithError("ping-pong failed");
      break;
    }
  }
  ::shutdown(up.in.a.get(), SHUT_WR);
  fwd.join();
  server.join();
  back.join();
  std::sort(rtts.begin(), rtts.end());
  if (!rtts.empty()) {
    state.counters["p50_us"] = 1e6 * rtts[rtts.size() / 2];
    state.counters["p99_us"] = 1e6 * rtts[rtts.size() * 99 / 100];
  }
}

void BM_pingpong_splice(benchmark::State& s) { ping_pong(s, defaults()); }
void BM_pingpong_eager(benchmark::State& s) { ping_pong(s, eager()); }
void BM_pingpong_userspace(benchmark::State& s) { ping_pong(s, userspace()); }
void BM_pingpong_eager_nomark(benchmark::State& s) { ping_pong(s, eager(), no_mark_check{}); }

/// Short copies in a host that ignores SIGPIPE and says so: no mask calls around each advance().
void BM_short_sigpipe_ignored(benchmark::State& s) {
  auto old = std::signal(SIGPIPE, SIG_IGN);
  splice::options o;
  o.sigpipe_ignored = true;
  short_copies(s, o);
  std::signal(SIGPIPE, old);
}

void chunks(benchmark::internal::Benchmark* b) {
  for (std::int64_t c = 1 << 10; c <= 1 << 20; c *= 2) b->Arg(c);
}

}  // namespace

// Run with --benchmark_repetitions=N --benchmark_enable_random_interleaving=true (as bench/run
// does) so that the paths take turns and meet the same machine; compare medians.
BENCHMARK(BM_stream_splice)->Apply(chunks)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_userspace)->Apply(chunks)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_nonblocking_splice)->Arg(64 << 10)->Arg(1 << 20)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_nonblocking_userspace)->Arg(64 << 10)->Arg(1 << 20)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_unix_to_tcp_splice)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_unix_to_tcp_userspace)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_tcp_to_unix_splice)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_tcp_to_unix_userspace)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_pinned_splice)->Arg(64 << 10)->Arg(1 << 20)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_pinned_userspace)->Arg(64 << 10)->Arg(1 << 20)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_bigbuf_splice)->Arg(64 << 10)->Arg(1 << 20)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_bigbuf_userspace)->Arg(64 << 10)->Arg(1 << 20)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_short_splice)->Arg(4 << 10)->Arg(64 << 10)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_short_eager)->Arg(4 << 10)->Arg(64 << 10)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_short_userspace)->Arg(4 << 10)->Arg(64 << 10)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_pingpong_splice)->Iterations(10000)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_pingpong_eager)->Iterations(10000)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_pingpong_userspace)->Iterations(10000)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_pingpong_eager_nomark)->Iterations(10000)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_short_sigpipe_ignored)->Arg(4 << 10)->Arg(64 << 10)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_stream_pipe_size)
    ->ArgsProduct({{64 << 10, 1 << 20}, {8 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 1 << 20}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_max_splice)
    ->ArgsProduct({{4 << 10, 64 << 10, 1 << 20}, {64 << 10, 256 << 10, 1 << 20}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
