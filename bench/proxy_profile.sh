#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Looks inside one proxy under a CPU cap: where its CPU goes and what it asks of the kernel.
#   bench/proxy_profile.sh MODE PROXY [ARGS...]
# PROXY is started as `PROXY 127.0.0.1:0 127.0.0.1:UPSTREAM ARGS...` (the example proxies; it must
# print `listening on HOST:PORT`), in a cgroup capped at CAP percent of one CPU (20), in front of
# `loadgen serve`; loadgen sends STREAMS (4) streams of SIZE-byte writes (65536) for SECS seconds (1),
# or runs WORKLOAD instead (a loadgen workload, e.g. WORKLOAD=conns=64,16384 for short connections).
# MODE:
#   rate      MB/s and MB per second of proxy CPU, for each of SIZES (default SIZE), one proxy process
#   syscalls  the same, with the proxy's system calls counted (perf stat)
#   calls     bytes per splice(2) call by fd pair, and the EAGAINs (perf record of the syscall tracepoints)
#   perf      perf record -g, then samples per GiB moved of the kernel paths that differ between proxies
# PIN=1 pins the proxy to CPU 1 and loadgen to CPU 0. Needs root, cgroup v1 (cpu and cpuacct), perf.
# Build first: bench/run builds build-bench (or cmake --build build-bench --target loadgen epoll_proxy ...).
set -euo pipefail
usage="usage: bench/proxy_profile.sh rate|syscalls|calls|perf PROXY [ARGS...]"
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
mode=$1
shift
proxy=("$@")
[ -d /sys/fs/cgroup/cpu ] && [ -d /sys/fs/cgroup/cpuacct ] || { echo "needs cgroup v1 cpu and cpuacct" >&2; exit 2; }
bin=$(cd "$(dirname "$0")/.." && pwd)/build-bench/bench
size=${SIZE:-65536} sizes=${SIZES:-${SIZE:-65536}} secs=${SECS:-1} cap=${CAP:-20} streams=${STREAMS:-4}
work=$(mktemp -d)
cg=/sys/fs/cgroup/cpu/proxy_profile$$ ca=/sys/fs/cgroup/cpuacct/proxy_profile$$
# Where cpu and cpuacct are one hierarchy (cpu,cpuacct), both names lead to one directory.
[ "$(realpath /sys/fs/cgroup/cpu)" = "$(realpath /sys/fs/cgroup/cpuacct)" ] && ca=$cg
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for d in "$cg" "$ca"; do
    [ -d "$d" ] || continue
    while read -r t; do echo "$t" >"${d%/*}/tasks" 2>/dev/null || true; done <"$d/tasks"
    rmdir "$d" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
pin() { [ "${PIN:-0}" = 1 ] && echo taskset -c "$1" || true; }
# port_of LOG PATTERN: the port at the end of the first line of LOG matching PATTERN, once it is there.
port_of() {
  local p
  for _ in $(seq 50); do
    p=$(grep -E "$2" "$1" | head -1 | grep -oE '[0-9]+$' || true)
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.1
  done
  echo "no port in $1: $(head -3 "$1")" >&2
  return 1
}

$(pin 0) "$bin/loadgen" serve >"$work/serve.log" 2>&1 &
pids+=($!)
up=$(port_of "$work/serve.log" '[0-9]$')
$(pin 1) "${proxy[@]:0:1}" 127.0.0.1:0 "127.0.0.1:$up" "${proxy[@]:1}" >"$work/proxy.log" 2>&1 &
pp=$!
pids+=($pp)
port=$(port_of "$work/proxy.log" '^listening on ')
mkdir -p "$cg" "$ca"
echo 10000 >"$cg/cpu.cfs_period_us"
echo $((cap * 100)) >"$cg/cpu.cfs_quota_us"
for t in /proc/$pp/task/*; do echo "${t##*/}" >"$cg/tasks"; echo "${t##*/}" >"$ca/tasks"; done

# load SIZE: one loadgen run; prints the MB/s and the proxy's CPU seconds over it
load() {
  local u0 u1 mb
  u0=$(cat "$ca/cpuacct.usage")
  $(pin 0) "$bin/loadgen" client "127.0.0.1:$port" "$secs" "${WORKLOAD:-stream=$streams,$1}" >"$work/client.json"
  u1=$(cat "$ca/cpuacct.usage")
  python3 - "$work/client.json" "$u0" "$u1" "$1" "$secs" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cpu, secs = (int(sys.argv[3]) - int(sys.argv[2])) / 1e9, float(sys.argv[5])
if "conns" in r:
    n = r["conns"]["done"]
    print(f"connections: {n / secs:.0f}/s, proxy CPU {cpu:.3f} s, {n / cpu:.0f} per CPU second, "
          f"{cpu / n * 1e6:.0f} us each")
else:
    mb = r["stream"]["mbps"]
    print(f"{int(sys.argv[4]) >> 10} KiB writes: {mb:.0f} MB/s, proxy CPU {cpu:.3f} s, "
          f"{mb * secs / cpu:.0f} MB per CPU second")
PY
}

case "$mode" in
  rate)
    for s in $sizes; do load "$s"; done ;;
  syscalls)
    for s in $sizes; do
      perf stat -e 'syscalls:sys_enter_*' -p "$pp" -o "$work/stat.txt" &
      pf=$!
      sleep 0.2
      load "$s"
      kill -INT "$pf"; wait "$pf" || true
      awk '$1 ~ /^[0-9,]+$/ && $1 != "0" { gsub(",", "", $1); sub("syscalls:sys_enter_", "", $2); printf "  %s %s\n", $2, $1 }' \
        "$work/stat.txt" | sort -k2 -nr
    done ;;
  calls)
    perf record -e syscalls:sys_enter_splice,syscalls:sys_exit_splice -p "$pp" -o "$work/calls.data" 2>/dev/null &
    pf=$!
    sleep 0.3
    load "$size"
    kill -INT "$pf"; wait "$pf" || true
    perf script -i "$work/calls.data" -F tid,event,trace 2>/dev/null | python3 -c '
import collections, re, sys
last, calls = {}, collections.defaultdict(list)
for line in sys.stdin:
    tid = line.split()[0]
    if "sys_enter_splice" in line:
        m = re.search(r"fd_in: (0x[0-9a-f]+).*fd_out: (0x[0-9a-f]+)", line)
        last[tid] = (int(m.group(1), 16), int(m.group(2), 16))
    elif "sys_exit_splice" in line and tid in last:
        r = int(line.split()[-1], 16)
        calls[last[tid]].append(r - (1 << 64) if r >= 1 << 63 else r)
for (i, o), rs in sorted(calls.items(), key=lambda kv: -len(kv[1]))[:12]:
    moved = [r for r in rs if r > 0]
    print(f"  fd {i} -> {o}: {len(rs)} calls, {sum(moved) // max(1, len(moved))} bytes a call that moved bytes, "
          f"{sum(1 for r in rs if r == -11)} EAGAIN, {sum(1 for r in rs if r == 0)} returned 0")' ;;
  perf)
    perf record -e cpu-clock -F 2000 -g -p "$pp" -o "$work/perf.data" 2>/dev/null &
    pf=$!
    sleep 0.3
    line=$(load "$size")
    echo "$line"
    kill -INT "$pf"; wait "$pf" || true
    mb=$(echo "$line" | grep -oE '[0-9]+ MB/s' | grep -oE '[0-9]+')
    perf report -i "$work/perf.data" --children --sort sym --stdio -n -g none 2>/dev/null | python3 -c '
import re, sys
gib = float(sys.argv[1]) * float(sys.argv[2]) * 1e6 / 2**30
keep = ("handle_softirqs", "splice_to_socket", "tcp_splice_read", "tcp_sendmsg", "tcp_write_xmit",
        "tcp_v4_do_rcv", "tcp_rcv_established", "__release_sock", "sock_def_readable", "tcp_ack",
        "do_epoll_wait", "do_sys_poll", "schedule", "tcp_pace_kick")
total = None
for line in sys.stdin:
    m = re.search(r"Event count \(approx.\): (\d+)", line)
    if m and total is None:
        total = int(m.group(1)) / 500000  # cpu-clock at 2000 samples a second: 500 us a sample
    m = re.match(r"\s+([\d.]+)%\s+[\d.]+%\s+\d+\s+\[k\]\s+(\S+)", line)
    if m and m.group(2) in keep:
        print(f"  {m.group(2)}: {m.group(1)}% of the samples, {float(m.group(1)) / 100 * total / gib:.0f} samples per GiB")
' "$mb" "$secs" ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
