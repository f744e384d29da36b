#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Counts, per benchmark thread, the 32 KiB (order-3) pages allocated and freed while 1 MiB chunks
# stream TCP to TCP, spliced and through user space, and the page moves between a CPU's free list
# and the zone that take the zone lock: allocations that found the list empty, and pages drained
# from a full list. It shows where splice moves cost on a single host: see "Where the saving goes"
# in README.md.
#   bench/page_trace.sh [SECONDS]      (root, tracefs; builds into build-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-1}
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DSPLICE_TESTS=OFF -DSPLICE_EXAMPLES=OFF >/dev/null
cmake --build build-bench -j2 --target tcp_bench >/dev/null
t=/sys/kernel/tracing
[ -e "$t/trace" ] || mount -t tracefs nodev "$t"
size=$(cat "$t/buffer_size_kb")
cleanup() {
  echo 0 >"$t/tracing_on"
  echo >"$t/set_event"
  for e in mm_page_alloc mm_page_free; do echo 0 >"$t/events/kmem/$e/filter"; done
  echo "$size" >"$t/buffer_size_kb"
}
trap cleanup EXIT
echo 65536 >"$t/buffer_size_kb"
for e in mm_page_alloc mm_page_free; do echo 'order == 3' >"$t/events/kmem/$e/filter"; done
echo "per 64 MiB moved, by thread: order-3 pages allocated and freed; pages of any order allocated from"
echo "the zone (mm_page_alloc_zone_locked) and drained to it (mm_page_pcpu_drain) under the zone lock"
for path in splice userspace; do
  echo 0 >"$t/tracing_on"
  echo >"$t/trace"
  echo 'kmem:mm_page_alloc kmem:mm_page_free kmem:mm_page_alloc_zone_locked kmem:mm_page_pcpu_drain' >"$t/set_event"
  echo 1 >"$t/tracing_on"
  iters=$(./build-bench/bench/tcp_bench --benchmark_filter="BM_stream_$path/1048576/" --benchmark_min_time="$secs" 2>/dev/null |
    sed -n 's/^BM_[^ ]* .* \([0-9][0-9]*\) all_cpu.*/\1/p')
  echo 0 >"$t/tracing_on"
  lost=$(awk '/^overrun/ { n += $2 } END { print n + 0 }' "$t"/per_cpu/cpu*/stats)
  echo "$path ($iters iterations; events lost: $lost)"
  # "bench-writer-123 [001] d..3. 1.2: mm_page_alloc: ..." -> thread name and event
  awk -v it="$iters" '$1 ~ /^bench-/ { sub(/-[0-9]+$/, "", $1); sub(/:$/, "", $5); n[$1 " " $5]++ }
    END { for (k in n) printf "  %8.0f %s\n", n[k] / it, k }' "$t/trace" | sort -k2
done
