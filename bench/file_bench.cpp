// SPDX-License-Identifier: MIT
// The file benchmark: each fd pair with a regular file at one or both ends, copied by splice::copy
// with the default options (the kernel routes) and with options::userspace (the read/write loop),
// in the same binary and the same run, so their ratio holds on a noisy machine:
//   file_to_tcp         a file in the page cache -> TCP on 127.0.0.1 (a reader thread drains it)
//   tcp_to_file_{disk,tmpfs}  TCP (a writer thread fills it) -> a file
//   file_to_file_{disk,tmpfs} a file in the page cache -> another file on the same filesystem
//   file_to_file_cross  tmpfs -> the disk's filesystem
//   file_to_file_{xfs,btrfs}  a file -> another on XFS or btrfs, where copy_file_range shares the
//                       extents (a reflink) instead of copying: mounted by bench/file_bench.sh from
//                       loop images and named by FILE_BENCH_XFS and FILE_BENCH_BTRFS; without one,
//                       the pair says SKIP with the reason in FILE_BENCH_XFS_SKIP (or _BTRFS_SKIP).
// "disk" is /var/tmp (the root filesystem, ext4 here), "tmpfs" is /dev/shm. Each iteration moves
// FILE_BENCH_MIB MiB (default 1024). Counters: copier CPU seconds per GiB (the copying thread's own,
// getrusage(RUSAGE_THREAD)) and the whole process's. bench/file_bench.sh runs it and reports.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include "splice/splice.hpp"
#include "support.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double cpu_seconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

std::int64_t bytes_per_iteration() {
  const char* mib = std::getenv("FILE_BENCH_MIB");
  return std::int64_t(mib && std::atoi(mib) > 0 ? std::atoi(mib) : 1024) << 20;
}

const char* disk_dir() { return "/var/tmp"; }
const char* tmpfs_dir() { return "/dev/shm"; }

/// make_cached_file makes a file of n bytes in dir, unlinked at once, written back and read through
/// once so that it sits clean in the page cache. Returns an empty fd if it cannot.
test::fd make_cached_file(const char* dir, std::int64_t n) {
  std::string name = std::string(dir) + "/splice-bench-XXXXXX";
  test::fd f(::mkostemp(&name[0], O_CLOEXEC));
  if (!f) return f;
  ::unlink(name.c_str());
  const std::string block = test::payload(1 << 20, 7);
  for (std::int64_t left = n; left > 0; left -= std::int64_t(block.size()))
    if (!test::write_all(f.get(), block.substr(0, std::size_t(std::min<std::int64_t>(left, std::int64_t(block.size()))))))
      return test::fd();
  // On disk before the first copy: a reflink (XFS, btrfs) writes a dirty source back first, and that
  // write-back belongs to making the file, not to the copy.
  ::fsync(f.get());
  std::vector<char> buf(1 << 20);
  for (off_t at = 0; ::pread(f.get(), buf.data(), buf.size(), at) > 0; at += off_t(buf.size())) {
  }
  return f;
}

/// cached_file returns the source file in dir, made on first use and kept open (and cached) until
/// the process ends, or -1 if it cannot be made. Invariant: one file per directory, of n bytes.
int cached_file(const std::string& dir, std::int64_t n) {
  static std::mutex mu;
  static std::map<std::string, test::fd> files;
  const std::lock_guard<std::mutex> lock(mu);
  auto it = files.find(dir);
  if (it == files.end()) it = files.emplace(dir, make_cached_file(dir.c_str(), n)).first;
  return it->second ? it->second.get() : -1;
}

/// mounted returns the directory that the environment variable var names (a file system that
/// bench/file_bench.sh mounted), or "" with why set to the reason the pair is skipped.
std::string mounted(const char* var, std::string& why) {
  const char* dir = std::getenv(var);
  if (dir && *dir) return dir;
  const char* reason = std::getenv((std::string(var) + "_SKIP").c_str());
  why = std::string("SKIP: ") + (reason && *reason ? reason : std::string(var) + " is not set (bench/file_bench.sh mounts one)");
  return "";
}

/// An empty file in dir, unlinked at once.
test::fd empty_file(const char* dir) {
  std::string name = std::string(dir) + "/splice-bench-XXXXXX";
  test::fd f(::mkostemp(&name[0], O_CLOEXEC));
  if (f) ::unlink(name.c_str());
  return f;
}

/// Reads and discards n bytes from f; returns how many arrived.
std::int64_t drain(int f, std::int64_t n) {
  std::vector<char> buf(1 << 20);
  std::int64_t got = 0;
  while (got < n) {
    const ssize_t k = ::read(f, buf.data(), std::size_t(std::min<std::int64_t>(std::int64_t(buf.size()), n - got)));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += k;
  }
  return got;
}

splice::options paths(bool userspace) {
  splice::options o;
  o.userspace = userspace;
  return o;
}

/// Books one iteration: its time, and the copier's and the process's CPU.
struct meter {
  double copier_cpu = 0, all_cpu = 0;
  template <class F>
  bool run(benchmark::State& state, F copy) {
    const double all0 = cpu_seconds(RUSAGE_SELF);
    const auto start = clock_type::now();
    const double cpu0 = cpu_seconds(RUSAGE_THREAD);
    const bool ok = copy();
    copier_cpu += cpu_seconds(RUSAGE_THREAD) - cpu0;
    state.SetIterationTime(std::chrono::duration<double>(clock_type::now() - start).count());
    all_cpu += cpu_seconds(RUSAGE_SELF) - all0;
    return ok;
  }
  void report(benchmark::State& state, std::int64_t n) const {
    const double gib = double(state.iterations()) * double(n) / double(1 << 30);
    state.SetBytesProcessed(state.iterations() * n);
    state.counters["cpu_s_per_GiB"] = copier_cpu / gib;
    state.counters["all_cpu_s_per_GiB"] = all_cpu / gib;
  }
};

void file_to_tcp(benchmark::State& state, bool userspace) {
  const std::int64_t n = bytes_per_iteration();
  const int src = cached_file(disk_dir(), n);
  if (src < 0) return state.SkipWithError("cannot make the source file");
  auto conn = test::make_tcp();
  meter m;
  for (auto _ : state) {
    ::lseek(src, 0, SEEK_SET);
    std::int64_t got = 0;
    std::thread reader([&] { got = drain(conn.b.get(), n); });
    splice::result r;
    const bool ok = m.run(state, [&] {
      splice::poll_poller p;
      r = splice::copy(conn.a.get(), src, std::uint64_t(n), p, paths(userspace));
      return !r.error && r.bytes == std::uint64_t(n);
    });
    reader.join();
    if (!ok || got != n) return state.SkipWithError("copy failed");
  }
  m.report(state, n);
}

void tcp_to_file(benchmark::State& state, bool userspace, const char* dir) {
  const std::int64_t n = bytes_per_iteration();
  test::fd dst = empty_file(dir);
  if (!dst) return state.SkipWithError("cannot make the destination file");
  auto conn = test::make_tcp();
  const std::string block = test::payload(1 << 20, 9);
  meter m;
  for (auto _ : state) {
    ::ftruncate(dst.get(), 0);  // before the timed part: dropping the last iteration's pages
    ::lseek(dst.get(), 0, SEEK_SET);
    std::atomic<bool> sent{true};
    std::thread writer([&] {
      for (std::int64_t left = n; left > 0; left -= std::int64_t(block.size()))
        if (!test::write_all(conn.b.get(), block)) sent = false;
    });
    splice::result r;
    const bool ok = m.run(state, [&] {
      splice::poll_poller p;
      r = splice::copy(dst.get(), conn.a.get(), std::uint64_t(n), p, paths(userspace));
      return !r.error && r.bytes == std::uint64_t(n);
    });
    writer.join();
    if (!ok || !sent) return state.SkipWithError("copy failed");
  }
  ::ftruncate(dst.get(), 0);
  m.report(state, n);
}

void file_to_file(benchmark::State& state, bool userspace, const std::string& from, const std::string& to) {
  const std::int64_t n = bytes_per_iteration();
  const int src = cached_file(from, n);
  test::fd dst = empty_file(to.c_str());
  if (src < 0 || !dst) return state.SkipWithError("cannot make the files");
  meter m;
  for (auto _ : state) {
    ::ftruncate(dst.get(), 0);  // before the timed part: dropping the last iteration's pages
    ::lseek(dst.get(), 0, SEEK_SET);
    ::lseek(src, 0, SEEK_SET);
    const bool ok = m.run(state, [&] {
      splice::poll_poller p;
      const auto r = splice::copy(dst.get(), src, std::uint64_t(n), p, paths(userspace));
      return !r.error && r.bytes == std::uint64_t(n);
    });
    if (!ok) return state.SkipWithError("copy failed");
  }
  ::ftruncate(dst.get(), 0);
  m.report(state, n);
}

void BM_file_to_tcp_splice(benchmark::State& s) { file_to_tcp(s, false); }
void BM_file_to_tcp_userspace(benchmark::State& s) { file_to_tcp(s, true); }
void BM_tcp_to_file_disk_splice(benchmark::State& s) { tcp_to_file(s, false, disk_dir()); }
void BM_tcp_to_file_disk_userspace(benchmark::State& s) { tcp_to_file(s, true, disk_dir()); }
void BM_tcp_to_file_tmpfs_splice(benchmark::State& s) { tcp_to_file(s, false, tmpfs_dir()); }
void BM_tcp_to_file_tmpfs_userspace(benchmark::State& s) { tcp_to_file(s, true, tmpfs_dir()); }
void BM_file_to_file_disk_splice(benchmark::State& s) { file_to_file(s, false, disk_dir(), disk_dir()); }
void BM_file_to_file_disk_userspace(benchmark::State& s) { file_to_file(s, true, disk_dir(), disk_dir()); }
void BM_file_to_file_tmpfs_splice(benchmark::State& s) { file_to_file(s, false, tmpfs_dir(), tmpfs_dir()); }
void BM_file_to_file_tmpfs_userspace(benchmark::State& s) { file_to_file(s, true, tmpfs_dir(), tmpfs_dir()); }
void BM_file_to_file_cross_splice(benchmark::State& s) { file_to_file(s, false, tmpfs_dir(), disk_dir()); }
void BM_file_to_file_cross_userspace(benchmark::State& s) { file_to_file(s, true, tmpfs_dir(), disk_dir()); }

// on_mounted runs a file -> file pair within the file system that var names, or skips it.
void on_mounted(benchmark::State& s, bool userspace, const char* var) {
  std::string why;
  const std::string dir = mounted(var, why);
  if (dir.empty()) return s.SkipWithError(why.c_str());
  file_to_file(s, userspace, dir, dir);
}
void BM_file_to_file_xfs_splice(benchmark::State& s) { on_mounted(s, false, "FILE_BENCH_XFS"); }
void BM_file_to_file_xfs_userspace(benchmark::State& s) { on_mounted(s, true, "FILE_BENCH_XFS"); }
void BM_file_to_file_btrfs_splice(benchmark::State& s) { on_mounted(s, false, "FILE_BENCH_BTRFS"); }
void BM_file_to_file_btrfs_userspace(benchmark::State& s) { on_mounted(s, true, "FILE_BENCH_BTRFS"); }

}  // namespace

// Run with --benchmark_repetitions=N --benchmark_enable_random_interleaving=true (as
// bench/file_bench.sh does) so that the paths take turns and meet the same machine; compare medians.
#define SPLICE_FILE_BENCH(name) BENCHMARK(name)->Iterations(2)->UseManualTime()->Unit(benchmark::kMillisecond)
SPLICE_FILE_BENCH(BM_file_to_tcp_splice);
SPLICE_FILE_BENCH(BM_file_to_tcp_userspace);
SPLICE_FILE_BENCH(BM_tcp_to_file_disk_splice);
SPLICE_FILE_BENCH(BM_tcp_to_file_disk_userspace);
SPLICE_FILE_BENCH(BM_tcp_to_file_tmpfs_splice);
SPLICE_FILE_BENCH(BM_tcp_to_file_tmpfs_userspace);
SPLICE_FILE_BENCH(BM_file_to_file_disk_splice);
SPLICE_FILE_BENCH(BM_file_to_file_disk_userspace);
SPLICE_FILE_BENCH(BM_file_to_file_tmpfs_splice);
SPLICE_FILE_BENCH(BM_file_to_file_tmpfs_userspace);
SPLICE_FILE_BENCH(BM_file_to_file_cross_splice);
SPLICE_FILE_BENCH(BM_file_to_file_cross_userspace);
SPLICE_FILE_BENCH(BM_file_to_file_xfs_splice);
SPLICE_FILE_BENCH(BM_file_to_file_xfs_userspace);
SPLICE_FILE_BENCH(BM_file_to_file_btrfs_splice);
SPLICE_FILE_BENCH(BM_file_to_file_btrfs_userspace);

BENCHMARK_MAIN();
