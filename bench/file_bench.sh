#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The file benchmarks, printed as one Markdown section:
#  a. bench/file_bench (Google Benchmark): each fd pair with a regular file, splice::copy with the
#     default options against options::userspace, repetitions interleaved at random; MB/s and the
#     copier's CPU seconds per GiB, medians and ranges.
#  b. examples/file_server under wrk (keep-alive, CONNS connections) serving 1 KiB, 64 KiB, 1 MiB and
#     64 MiB files, against the same server with --userspace and against nginx (sendfile on, one
#     worker, access_log off), all in the same run with repeats interleaved; requests/s, MB/s and
#     each server's CPU seconds per GiB (utime + stime from /proc/PID/stat), medians and ranges.
#   bench/file_bench.sh     (REPS=5 FILE_BENCH_MIB=1024 SERVER_REPS=3 SECS=5 CONNS=32; builds into build-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${REPS:-5} mib=${FILE_BENCH_MIB:-1024} server_reps=${SERVER_REPS:-3} secs=${SECS:-5} conns=${CONNS:-32}
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DSPLICE_TESTS=OFF -DSPLICE_EXAMPLES=ON >/dev/null
cmake --build build-bench -j2 --target file_bench file_server >/dev/null
bin=$PWD/build-bench
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "## Files"
echo
echo "Kernel: $(uname -sr); $(nproc) CPUs; $(date -u +%Y-%m-%d); command: REPS=$reps FILE_BENCH_MIB=$mib" \
  "SERVER_REPS=$server_reps SECS=$secs CONNS=$conns bench/file_bench.sh"
echo

# a. The fd pairs.
FILE_BENCH_MIB=$mib "$bin/bench/file_bench" --benchmark_repetitions="$reps" --benchmark_enable_random_interleaving=true \
  --benchmark_out="$work/pairs.json" --benchmark_out_format=json >"$work/pairs.txt" 2>&1 ||
  { cat "$work/pairs.txt" >&2; exit 1; }
python3 - "$work/pairs.json" "$mib" "$reps" <<'PY'
import json, statistics, sys
runs = [b for b in json.load(open(sys.argv[1]))["benchmarks"] if b.get("run_type") == "iteration" and not b.get("error_occurred")]
rows = {}
for b in runs:
    name = b["name"].split("/")[0][3:]
    pair, path = name.rsplit("_", 1)
    rows.setdefault(pair, {}).setdefault(path, []).append((b["bytes_per_second"] / 1e6, b["cpu_s_per_GiB"]))
labels = {"file_to_tcp": "file (page cache) -> TCP", "tcp_to_file_disk": "TCP -> file on disk (ext4)",
          "tcp_to_file_tmpfs": "TCP -> file on tmpfs", "file_to_file_disk": "file -> file, disk",
          "file_to_file_tmpfs": "file -> file, tmpfs", "file_to_file_cross": "file -> file, tmpfs -> disk"}
def med(xs): return statistics.median(xs)
def span(xs): return f"{min(xs):.0f}-{max(xs):.0f}"
print(f"Each pair moves {sys.argv[2]} MiB per iteration, 2 iterations per repetition, {sys.argv[3]} repetitions "
      "interleaved at random; medians, ranges over the repetitions.")
print()
print("| pair | splice MB/s (range) | user-space MB/s (range) | throughput | copier CPU s/GiB, splice / user | copier CPU |")
print("|---|---|---|---|---|---|")
for pair, label in labels.items():
    r = rows.get(pair, {})
    if "splice" not in r or "userspace" not in r:
        print(f"| {label} | failed | | | | |")
        continue
    s_mb, s_cpu = zip(*r["splice"])
    u_mb, u_cpu = zip(*r["userspace"])
    print(f"| {label} | {med(s_mb):.0f} ({span(s_mb)}) | {med(u_mb):.0f} ({span(u_mb)}) | {med(s_mb) / med(u_mb):.2f}x "
          f"| {med(s_cpu):.3f} / {med(u_cpu):.3f} | {med(s_cpu) / med(u_cpu):.2f}x |")
print()
PY

# b. The file server against itself through user space and against nginx.
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  echo "(file server part skipped: it needs wrk and nginx)"
  exit 0
fi
root=$work/root
mkdir -p "$root" "$work/nginx"
chmod 755 "$work" "$root"  # nginx's worker runs as nobody
sizes="1k:1024 64k:65536 1m:1048576 64m:67108864"
for s in $sizes; do head -c "${s#*:}" /dev/urandom >"$root/${s%%:*}.bin"; done
cat >"$work/done.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d\n", summary.requests, summary.bytes, summary.duration,
                         e.connect + e.read + e.write + e.status + e.timeout))
end
LUA

port_of() { for _ in $(seq 100); do p=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$1"); [ -n "$p" ] && { echo "$p"; return; }; sleep 0.1; done; return 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }

declare -A port procs
"$bin/examples/file_server" 127.0.0.1:0 "$root" >"$work/splice.log" & pids+=($!)
port[splice]=$(port_of "$work/splice.log"); procs[splice]=$!
"$bin/examples/file_server" 127.0.0.1:0 "$root" --userspace >"$work/user.log" & pids+=($!)
port[userspace]=$(port_of "$work/user.log"); procs[userspace]=$!
port[nginx]=$(free_port)
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  default_type application/octet-stream;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server { listen 127.0.0.1:${port[nginx]}; root $root; }
}
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" & pids+=($!)
master=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:${port[nginx]}/1k.bin" && break; sleep 0.1; done
procs[nginx]="$master $(pgrep -P "$master" | tr '\n' ' ')"
for server in splice userspace nginx; do  # each serves the same bytes before measuring
  for s in $sizes; do curl -sf -o /dev/null "http://127.0.0.1:${port[$server]}/${s%%:*}.bin" || { echo "$server does not serve"; exit 1; }; done
done

servers=(splice userspace nginx)
for rep in $(seq "$server_reps"); do
  for s in $sizes; do
    for i in 0 1 2; do  # the order rotates with each repeat
      server=${servers[$(((i + rep) % 3))]}
      t0=$(ticks ${procs[$server]})
      d=$secs; [ "${s%%:*}" = 64m ] && d=$((secs * 2))  # a 64 MiB answer takes a while: more of them per run
      out=$(wrk -t2 -c"$conns" -d"${d}s" --timeout 20s -s "$work/done.lua" "http://127.0.0.1:${port[$server]}/${s%%:*}.bin" | grep '^RESULT')
      t1=$(ticks ${procs[$server]})
      echo "${s%%:*} $server $rep ${out#RESULT } $((t1 - t0))" >>"$work/server.txt"
    done
  done
done

python3 - "$work/server.txt" "$(getconf CLK_TCK)" "$server_reps" "$secs" "$conns" <<'PY'
import statistics, sys
hz = int(sys.argv[2])
rows = {}
for line in open(sys.argv[1]):
    size, server, rep, reqs, nbytes, usec, errors, ticks = line.split()
    sec = int(usec) / 1e6
    rows.setdefault((size, server), []).append(
        (int(reqs) / sec, int(nbytes) / sec / 1e6, int(ticks) / hz / (int(nbytes) / 2**30), int(errors)))
med = statistics.median
print(f"wrk -t2 -c{sys.argv[5]} -d{sys.argv[4]}s (64 MiB: twice as long), keep-alive, {sys.argv[3]} repeats per row "
      "interleaved across the servers; medians (ranges). MB/s counts what wrk read, heads included. Server CPU is the "
      "whole process's (nginx: master and worker). file_server runs a thread per connection on both CPUs; nginx has "
      "one worker process, as configured.")
print()
print("| file | server | requests/s | MB/s | server CPU s/GiB | errors | requests/s vs nginx | vs --userspace |")
print("|---|---|---|---|---|---|---|---|")
for size in ("1k", "64k", "1m", "64m"):
    base = {srv: med([r[0] for r in rows.get((size, srv), [(0,)])]) for srv in ("nginx", "userspace")}
    for server, label in (("splice", "file_server"), ("userspace", "file_server --userspace"), ("nginx", "nginx")):
        r = rows.get((size, server))
        if not r:
            continue
        rps, mbs, cpu, err = zip(*r)
        vs = lambda b: f"{med(rps) / b:.2f}x" if b else "-"
        print(f"| {size.upper().replace('K', ' KiB').replace('M', ' MiB')} | {label} | {med(rps):.0f} ({min(rps):.0f}-{max(rps):.0f}) "
              f"| {med(mbs):.0f} ({min(mbs):.0f}-{max(mbs):.0f}) | {med(cpu):.3f} ({min(cpu):.3f}-{max(cpu):.3f}) "
              f"| {sum(err)} | {vs(base['nginx'])} | {vs(base['userspace'])} |")
PY
