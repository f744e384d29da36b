// SPDX-License-Identifier: MIT
// rate_bench: what the shared bucket of --rate-total costs. Each iteration is what a rate-limited
// copy does before a chunk: read the clock, take from its connection's bucket, then from the outer
// bucket that bucket draws on, and give back what the outer one did not grant. "shared": the outer
// bucket is one for every thread (its mutex is contended from 2 threads); "own": each thread has an
// outer bucket of its own, the same work without contention. The rates are too high to run out, so
// every take grants: the cost measured is the locking and the arithmetic, not a wait.
#include <chrono>
#include <cstdint>
#include <memory>

#include <benchmark/benchmark.h>

#include "splice/splice.hpp"

namespace {

constexpr std::uint64_t fast = std::uint64_t(1) << 50;  // bytes per second: never empty
constexpr std::uint64_t burst = std::uint64_t(1) << 30;
constexpr std::size_t chunk = std::size_t(64) << 10;

// shared_outer is the bucket every thread's connection draws on in BM_bucket_shared.
splice::rate_limit& shared_outer() {
  static splice::rate_limit outer(fast, burst);
  return outer;
}

// take_chunk asks inner (and through it its outer bucket) for one chunk at the current time, as a
// copier does, and returns the bytes granted.
std::size_t take_chunk(splice::rate_limit& inner) {
  const auto now = std::chrono::steady_clock::now();
  const auto g = inner.take(chunk, now);
  const auto o = inner.outer()->take(g.bytes, now);
  if (o.bytes < g.bytes) inner.give_back(g.bytes - o.bytes);
  return o.bytes;
}

// BM_bucket_shared: every thread's connection bucket draws on one outer bucket.
void BM_bucket_shared(benchmark::State& state) {
  splice::rate_limit inner(fast, burst, &shared_outer());
  for (auto _ : state) benchmark::DoNotOptimize(take_chunk(inner));
  state.SetItemsProcessed(state.iterations());
}

// BM_bucket_own: the same with an outer bucket per thread, so no lock is contended.
void BM_bucket_own(benchmark::State& state) {
  splice::rate_limit outer(fast, burst);
  splice::rate_limit inner(fast, burst, &outer);
  for (auto _ : state) benchmark::DoNotOptimize(take_chunk(inner));
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_bucket_own)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_bucket_shared)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK_MAIN();
