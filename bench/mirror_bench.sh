#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The mirror part of bench/run: the primary's speed through epoll_proxy with a mirror that never
# reads (cut by its bound, then the primary runs unmirrored) and with one that keeps up (a loadgen
# sink, which discards what it reads), each against no mirror, in the same interleaved repeats:
# loadgen client stream=1,65536 (one connection, 64 KiB writes) for SECS seconds. The target is a
# stalled / none ratio >= 0.8. Writes OUT (mirror.json): each variant's MB/s per repeat, medians and
# the ratios to none. Numbers from a busy machine mean little: compare ratios of one run.
#   BUILD=DIR [REPS=N] [SECS=S] mirror_bench.sh OUT.json
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:?BUILD=DIR names the build with bench/loadgen and examples/epoll_proxy}
out=$1 reps=${REPS:-5} secs=${SECS:-3}
work=$(mktemp -d) pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"' EXIT
port_of() {  # port_of FILE PREFIX: the port of the first line "PREFIX ... PORT" (10 s at most)
  for _ in $(seq 100); do
    local p; p=$(sed -n "s/^$2.*[ :]\([0-9][0-9]*\)$/\1/p" "$1" | head -1)
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.1
  done
  return 1
}
"$build/bench/loadgen" serve >"$work/sink.txt" & pids+=($!)
sink=$(port_of "$work/sink.txt" listening)
python3 -u "$here/../tests/e2e/mirror_listener.py" >"$work/mirrors.txt" & pids+=($!)
stall=$(port_of "$work/mirrors.txt" stall)
declare -A flags=([none]="" [stalled]="--mirror 127.0.0.1:$stall --mirror-lag 1048576" [keeping]="--mirror 127.0.0.1:$sink --mirror-lag 16777216")
: >"$work/runs.txt"
for rep in $(seq "$reps"); do
  for variant in none stalled keeping; do
    # shellcheck disable=SC2086
    "$build/examples/epoll_proxy" 127.0.0.1:0 "127.0.0.1:$sink" ${flags[$variant]} >"$work/proxy.log" 2>&1 & proxy=$!
    port=$(port_of "$work/proxy.log" listening)
    line=$("$build/bench/loadgen" client "127.0.0.1:$port" "$secs" stream=1,65536)
    echo "$variant $rep $line" >>"$work/runs.txt"
    kill -TERM "$proxy"; wait "$proxy" || true
    grep '^mirror ' "$work/proxy.log" | head -1 | sed "s/^/  $variant $rep: /" || true
  done
done
python3 - "$work/runs.txt" "$out" "$reps" "$secs" <<'PY'
import json, statistics, sys
runs, out, reps, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
mbps = {}
for line in open(runs):
    variant, rep, js = line.split(" ", 2)
    mbps.setdefault(variant, []).append(json.loads(js)["stream"]["mbps"])
med = {v: statistics.median(x) for v, x in mbps.items()}
res = {"workload": "stream=1,65536", "reps": reps, "seconds": secs, "mbps": mbps, "median_mbps": med,
       "ratio_to_none": {v: (m / med["none"] if med["none"] else None) for v, m in med.items()}, "target": 0.8}
json.dump(res, open(out, "w"), indent=1)
for v in mbps:
    print(f"{v}: median {med[v]:.0f} MB/s, {res['ratio_to_none'][v]:.2f}x none")
PY
