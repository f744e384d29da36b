#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The file benchmarks. Writes their results as JSON (every repetition and every wrk run) to OUT
# (default bench/out/files.json) and prints the Markdown that bench/files_report.py makes of it:
#  a. bench/file_bench (Google Benchmark): each fd pair with a regular file, splice::copy with the
#     default options against options::userspace, repetitions interleaved at random; MB/s and the
#     copier's CPU seconds per GiB, medians and ranges. File to file also runs on XFS and btrfs,
#     where copy_file_range shares extents (a reflink): each on a loop-mounted image made in a temp
#     dir (root, losetup, mkfs.xfs / mkfs.btrfs), unmounted and removed on every exit; where that
#     cannot be done the pair says SKIP with the reason.
#  b. examples/file_server under wrk (keep-alive, CONNS connections) serving 1 KiB, 64 KiB, 1 MiB and
#     64 MiB files, against the same server with --userspace and against nginx (sendfile on,
#     access_log off, reuseport), all in the same run with repeats interleaved; requests/s, MB/s and
#     each server's CPU seconds per GiB (utime + stime from /proc/PID/stat), medians and ranges.
#     file_server runs a thread per connection, so nginx gets as many workers (NGINX_WORKERS,
#     default CONNS): on a shared machine the scheduler shares CPU by thread, and 1 worker against
#     32 threads measured the scheduler, not the servers.
#   bench/file_bench.sh [OUT.json]   (REPS=5 FILE_BENCH_MIB=1024 SERVER_REPS=3 SECS=5 CONNS=32 NGINX_WORKERS=CONNS;
#                                     builds into build-bench, or BUILD=DIR: uses the binaries already built there)
set -euo pipefail
out_json=${1:+$(realpath -m "$1")}
bin=${BUILD:+$(cd "$BUILD" && pwd)}
cd "$(dirname "$0")/.."
out_json=${out_json:-$PWD/bench/out/files.json}
reps=${REPS:-5} mib=${FILE_BENCH_MIB:-1024} server_reps=${SERVER_REPS:-3} secs=${SECS:-5} conns=${CONNS:-32}
workers=${NGINX_WORKERS:-$conns}
if [ -z "$bin" ]; then
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DSPLICE_TESTS=OFF -DSPLICE_EXAMPLES=ON >/dev/null
  cmake --build build-bench -j2 --target file_bench file_server >/dev/null
  bin=$PWD/build-bench
fi
mkdir -p "$(dirname "$out_json")"
work=$(mktemp -d)
pids=()
mounts=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # through the EXIT trap: images unmounted, temp dir removed
date=$(date -u '+%Y-%m-%d %H:%M UTC')
: >"$work/server.txt"
skipped=

# Writes the JSON, then prints its Markdown.
finish() {
  python3 - "$out_json" "$work/pairs.json" "$work/server.txt" "$date" "$(uname -sr)" "$(nproc)" "$(getconf CLK_TCK)" \
    "$reps" "$mib" "$server_reps" "$secs" "$conns" "$workers" "$skipped" <<'PY'
import json, os, sys
out, pairs, server, date, kernel, cpus, hz, reps, mib, server_reps, secs, conns, workers, skipped = sys.argv[1:]
bench = json.load(open(pairs))
meta = dict(part="files", date=date, kernel=kernel, cpus=int(cpus), reps=int(reps), mib=int(mib),
            server_reps=int(server_reps), secs=int(secs), conns=int(conns),
            file_server_threads=int(conns), nginx_workers=int(workers),
            command=("QUICK=1 " if os.environ.get("QUICK") else "") + f"REPS={reps} FILE_BENCH_MIB={mib} SERVER_REPS={server_reps} SECS={secs} CONNS={conns} NGINX_WORKERS={workers} bench/file_bench.sh",
            quick=bool(os.environ.get("QUICK")), skipped=[s for s in skipped.split("\n") if s], benchmark_context=bench["context"])
rows = []
for line in open(server):
    size, srv, rep, reqs, nbytes, usec, errors, ticks = line.split()
    rows.append(dict(file=size, server=srv, rep=int(rep), requests=int(reqs), bytes=int(nbytes), usec=int(usec),
                     errors=int(errors), cpu_s=int(ticks) / int(hz)))
with open(out, "w") as f:
    json.dump(dict(meta=meta, pairs=[b for b in bench["benchmarks"] if b.get("run_type") == "iteration"],
                   server=rows), f, indent=1)
PY
  echo "## Files"
  echo
  python3 bench/files_report.py "$out_json"
  echo
  echo "(wrote $out_json)"
}

# mount_image FS: a loop-mounted image of file system FS in the temp dir, big enough for the
# source, a user-space copy and slack; exports FILE_BENCH_<FS> as its mount point, or
# FILE_BENCH_<FS>_SKIP with the reason it could not be made.
mount_image() {
  local fs=$1 var img dir err
  var=FILE_BENCH_$(echo "$fs" | tr a-z A-Z)
  img=$work/$fs.img dir=$work/$fs
  if [ "$(id -u)" != 0 ]; then err="needs root to loop-mount an image"
  elif ! command -v "mkfs.$fs" >/dev/null; then err="mkfs.$fs not installed"
  elif ! grep -qw "$fs" /proc/filesystems && ! modprobe "$fs" 2>/dev/null; then err="the kernel has no $fs"
  elif ! truncate -s $((mib * 3 + 1024))M "$img" 2>"$work/err"; then err="truncate: $(head -1 "$work/err")"
  elif ! "mkfs.$fs" -q "$img" >/dev/null 2>"$work/err"; then err="mkfs.$fs: $(head -1 "$work/err")"
  elif ! mkdir -p "$dir" || ! mount -o loop "$img" "$dir" 2>"$work/err"; then err="mount -o loop: $(head -1 "$work/err")"
  fi
  if [ -n "${err:-}" ]; then
    export "${var}_SKIP=$err"
    skipped+="$fs: SKIP ($err)"$'\n'
  else
    mounts+=("$dir")
    export "$var=$dir"
  fi
}
mount_image xfs
mount_image btrfs

# a. The fd pairs.
FILE_BENCH_MIB=$mib "$bin/bench/file_bench" --benchmark_repetitions="$reps" --benchmark_enable_random_interleaving=true \
  --benchmark_out="$work/pairs.json" --benchmark_out_format=json >"$work/pairs.txt" 2>&1 ||
  { cat "$work/pairs.txt" >&2; exit 1; }

# b. The file server against itself through user space and against nginx.
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  skipped+="file server part skipped: it needs wrk and nginx"
  finish
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
worker_processes $workers;
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
  server { listen 127.0.0.1:${port[nginx]} reuseport; root $root; }
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

finish
