#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# asio_proxy with splice::async_proxy, the same proxy with its async_read_some/async_write relay
# (--userspace), and epoll_proxy, in one run, as bench/proxy_bench.sh measures them: iperf3
# throughput (-P 4), the proxy process's CPU seconds per GiB moved, and short connections per second
# (64-byte request, 64 KiB answer, 4 client threads). Prints a Markdown table.
#   bench/asio_proxy_bench.sh [SECONDS]       (needs iperf3 and asio; builds into build-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DSPLICE_TESTS=OFF -DSPLICE_EXAMPLES=ON >/dev/null
cmake --build build-bench -j2 --target epoll_proxy asio_proxy conn_rate >/dev/null
bin=build-bench
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"' EXIT

port_of() { for _ in $(seq 100); do p=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$1"); [ -n "$p" ] && { echo "$p"; return; }; sleep 0.1; done; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

iperf_port=$((20000 + RANDOM % 20000))
iperf3 -s -p "$iperf_port" >/dev/null 2>&1 & pids+=($!)
"$bin/bench/conn_rate" serve 65536 >"$work/up.log" & pids+=($!)
up=$(port_of "$work/up.log")
sleep 0.3

echo "Kernel: $(uname -sr); $(nproc) CPUs; $(date -u +%Y-%m-%d); command: bench/asio_proxy_bench.sh $secs"
echo
echo "| proxy | path | iperf3 -P 4 Gbit/s | proxy CPU s per GiB | short connections/s |"
echo "|---|---|---|---|---|"
while read -r proxy flags; do
  # shellcheck disable=SC2086
  "$bin/examples/$proxy" 127.0.0.1:0 "127.0.0.1:$iperf_port" $flags >"$work/p.log" & pid=$!
  port=$(port_of "$work/p.log")
  t0=$(cpu_ticks "$pid")
  iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -P 4 -J >"$work/i.json" || true
  t1=$(cpu_ticks "$pid")
  kill -TERM "$pid"; wait "$pid" || true
  # A failed iperf3 run (its JSON says why) leaves the row's first two columns as "error".
  read -r gbps cpu < <(python3 -c "
import json, sys
j = json.load(open('$work/i.json'))
if 'error' in j: print('error error'); print(j['error'], file=sys.stderr); sys.exit()
e = j['end']['sum_received']
print(f\"{e['bits_per_second'] / 1e9:.2f} {($t1 - $t0) / $hz / (e['bytes'] / 2**30):.3f}\")")
  # shellcheck disable=SC2086
  "$bin/examples/$proxy" 127.0.0.1:0 "127.0.0.1:$up" $flags >"$work/p.log" & pid=$!
  port=$(port_of "$work/p.log")
  rate=$("$bin/bench/conn_rate" client "$port" "$secs" 65536 4 | sed -n 's/^connections\/s //p')
  kill -TERM "$pid"; wait "$pid" || true
  echo "| $proxy | ${flags:-splice} | $gbps | $cpu | $rate |"
done <<'ROWS'
asio_proxy
asio_proxy --userspace
asio_proxy --threads 2
asio_proxy --userspace --threads 2
epoll_proxy
epoll_proxy --userspace
ROWS
