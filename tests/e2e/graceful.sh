#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end tests of the graceful stop and the rate limits of the example programs, on 127.0.0.1.
# For tcp_proxy, epoll_proxy, asio_proxy (when given) and file_server: a 16 MiB transfer in flight
# at SIGTERM (slowed by --rate, or by curl's --limit-rate for the file server) arrives exact and the
# program exits 0 by itself; a new connection after the signal is refused; with --drain-timeout 1 a
# transfer that cannot finish is cut (exit 1 within about a second, "drain" in the log); a second
# signal cuts at once. epoll_proxy --threads 2 drains both loops. --rate and --rate-total deliver
# exact bytes both ways, spliced, and take longer than the limit allows (a loose bound: speeds are
# measured by `bench/run rate`, never here).
#   graceful.sh TCP_PROXY EPOLL_PROXY FILE_SERVER [ASIO_PROXY]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tcp_proxy=$1 epoll_proxy=$2 file_server=$3 asio_proxy=${4:-}
source "$here/lib.sh"
need python3 curl sha256sum

python3 "$here/servers.py" "$work" >"$work/servers.txt" & pids+=($!)
sink=$(port_of "$work/servers.txt" sink) echo_port=$(port_of "$work/servers.txt" echo)
mkdir -p "$work/root"
head -c 16M /dev/urandom >"$work/root/big.bin"
big_sum=$(sha256sum <"$work/root/big.bin" | cut -d' ' -f1)
client() { python3 "$here/graceful.py" "$@"; }

# start PROGRAM UPSTREAM_OR_ROOT [FLAGS]: starts a program on a free port; sets pid, port, log.
start() {
  log="$work/prog.$RANDOM.log"
  "$1" 127.0.0.1:0 "${@:2}" >"$log" 2>&1 &
  pid=$!; pids+=($pid)
  port=$(port_of "$log" "listening on") || { echo "did not start"; cat "$log"; return 1; }
}
# in_background NAME CMD...: runs CMD with its output in $work/NAME.out, sets bg, and waits until it
# says "connected".
in_background() {
  local out="$work/$1.out"; : >"$out"
  "${@:2}" >"$out" 2>&1 & bg=$!
  for _ in $(seq 100); do grep -q connected "$out" && return 0; sleep 0.05; done
  echo "$1 never connected"; cat "$out"; return 1
}
wait_log() {  # wait_log PATTERN: until the log has a matching line (5 s at most)
  for _ in $(seq 100); do grep -q "$1" "$log" && return 0; sleep 0.05; done
  echo "no log line matching '$1'"; cat "$log"; return 1
}
now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
# exits_within SECONDS: waits for $pid to exit, at most SECONDS; sets status and took_ms (since $t0).
exits_within() {
  local end=$(( $(now_ms) + $1 * 1000 ))
  while kill -0 "$pid" 2>/dev/null && [ "$(now_ms)" -lt "$end" ]; do sleep 0.02; done
  took_ms=$(( $(now_ms) - t0 ))
  kill -0 "$pid" 2>/dev/null && { echo "still running after $1 s"; cat "$log"; kill -KILL "$pid"; return 1; }
  wait "$pid"; status=$?
  echo "exit status $status after $took_ms ms"
}
# has_bytes FILE: waits (at most 5 s) until FILE holds a byte: a download has begun.
has_bytes() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "no bytes in $1"; return 1; }

# after_drain PATTERN: a line matching PATTERN comes after the "draining:" line (it was in flight).
after_drain() { sed -n '/^draining:/,$p' "$log" | grep -q "$1" || { echo "no '$1' after the signal"; cat "$log"; return 1; }; }

# in_flight PROGRAM [FLAGS]: a 16 MiB upload at 6 MB/s is under way at SIGTERM; a new connection
# is refused; the upload arrives exact, spliced, and the proxy exits 0 by itself.
in_flight() {
  start "$1" "127.0.0.1:$sink" --rate 6000000 "${@:2}" || return 1
  in_background up client upload "$port" 16777216 || return 1  # connected; at 6 MB/s for about 3 s
  kill -TERM "$pid"; t0=$(now_ms)
  wait_log '^draining:' && client refused "$port" || return 1
  wait "$bg" || { cat "$work/up.out"; return 1; }
  exits_within 15 && [ "$status" -eq 0 ] && after_drain 'spliced yes, ok$' && grep -q '^drained$' "$log" || { cat "$log"; return 1; }
}

# file_in_flight: a 16 MiB download at 6 MB/s (curl --limit-rate) and an idle keep-alive connection
# at SIGTERM: the download arrives exact, the idle one is closed, a new connection is refused, exit 0.
file_in_flight() {
  start "$file_server" "$work/root" || return 1
  in_background idle client idle "$port" || return 1
  local idle_client=$bg
  rm -f "$work/got.bin"
  curl -sf --limit-rate 6M "http://127.0.0.1:$port/big.bin" -o "$work/got.bin" & local dl=$!
  has_bytes "$work/got.bin" || return 1  # the download is under way
  kill -TERM "$pid"; t0=$(now_ms)
  wait_log '^draining:' && client refused "$port" || return 1
  wait "$idle_client" || { cat "$work/idle.out"; return 1; }
  wait "$dl" || { echo "curl failed"; return 1; }
  [ "$(sha256sum <"$work/got.bin" | cut -d' ' -f1)" = "$big_sum" ] || { echo "download differs"; return 1; }
  exits_within 15 && [ "$status" -eq 0 ] && after_drain 'out 16777216 bytes, spliced yes, ok' || { cat "$log"; return 1; }
}

# cut_off PROGRAM UPSTREAM_OR_ROOT: a transfer that cannot finish (a proxied connection held open, or a
# download at 200 kB/s of 16 MiB); with --drain-timeout 1 the program exits 1 after about a second,
# and the log shows the cut. cut_second: the default 30 s applies, and a second signal 0.3 s after
# the first cuts at once.
cut_off() {
  local flags=(--drain-timeout 1); [ -n "${SECOND:-}" ] && flags=()
  start "$1" "$2" "${flags[@]}" || return 1
  if [ "$1" = "$file_server" ]; then
    rm -f "$work/cut.bin"
    curl -s --limit-rate 200K -o "$work/cut.bin" "http://127.0.0.1:$port/big.bin" & bg=$!
    has_bytes "$work/cut.bin" || return 1
  else
    in_background held client hold "$port" || return 1
  fi
  kill -TERM "$pid"; t0=$(now_ms)
  if [ -n "${SECOND:-}" ]; then
    wait_log '^draining:' && sleep 0.3 || return 1
    kill -INT "$pid"; t0=$(now_ms)
    exits_within 3 || return 1
    [ "$took_ms" -le 1000 ] || { echo "took $took_ms ms after the second signal"; return 1; }
  else
    exits_within 5 || return 1
    [ "$took_ms" -ge 900 ] && [ "$took_ms" -le 2500 ] || { echo "took $took_ms ms, not about 1 s"; return 1; }
  fi
  kill "$bg" 2>/dev/null; wait "$bg" 2>/dev/null  # curl would read on what its socket holds
  [ "$status" -eq 1 ] && grep -qE '^conn .*(drain: |cut by drain)' "$log" && grep -q '^drain: cut 1 connections$' "$log" ||
    { cat "$log"; return 1; }
}
cut_second() { SECOND=1 cut_off "$@"; }

# threads: epoll_proxy --threads 2, 8 uploads of 8 MiB at 4 MB/s each in flight at SIGTERM: both
# loops drain, every upload arrives exact, exit 0.
threads() {
  start "$epoll_proxy" "127.0.0.1:$sink" --threads 2 --rate 4000000 || return 1
  in_background up client upload "$port" 8388608 8 || return 1  # at 4 MB/s each for about 2 s
  kill -TERM "$pid"; t0=$(now_ms)
  wait "$bg" || { cat "$work/up.out"; return 1; }
  exits_within 15 && [ "$status" -eq 0 ] || return 1
  local done; done=$(sed -n '/^draining:/,$p' "$log" | grep -c 'spliced yes, ok$')
  [ "$(grep -c '^loop [01]: draining' "$log")" -eq 2 ] && [ "$done" -eq 8 ] || { cat "$log"; return 1; }
  grep '^loop' "$log"
}

# rate PROGRAM FLAGS... -- BYTES CONNS: echoes BYTES on each of CONNS connections under the limit:
# exact both ways, every connection spliced, and slower than the limit allows (loose: the limits
# below let 3 MB through in about 2 s after the first burst; the check is more than 1 s).
rate() {
  local prog=$1 flags=(); shift
  while [ "$1" != -- ]; do flags+=("$1"); shift; done; shift
  start "$prog" "127.0.0.1:$echo_port" "${flags[@]}" || return 1
  local t took; t=$(now_ms)
  client echo "$port" "$1" "$2" || return 1
  took=$(( $(now_ms) - t )); echo "took $took ms"
  [ "$took" -gt 1000 ] || return 1
  for _ in $(seq 100); do [ "$(grep -c '^conn ' "$log")" -ge "$2" ] && break; sleep 0.05; done
  [ "$(grep -c 'spliced yes, ok$' "$log")" -eq "$2" ] || { cat "$log"; return 1; }
  kill -TERM "$pid"; t0=$(now_ms)
  exits_within 5 && [ "$status" -eq 0 ]
}

programs=("$tcp_proxy" "$epoll_proxy")
[ -n "$asio_proxy" ] && programs+=("$asio_proxy")
for prog in "${programs[@]}"; do
  name=$(basename "$prog")
  check "$name: a 16 MiB upload in flight at SIGTERM arrives exact, new connections refused, exit 0" in_flight "$prog"
  check "$name: --drain-timeout 1 cuts a connection that cannot finish, exit 1 after about 1 s" cut_off "$prog" "127.0.0.1:$sink"
  check "$name: a second signal cuts at once, exit 1" cut_second "$prog" "127.0.0.1:$sink"
  check "$name: --rate 1000000 echoes 3 MB exact both ways, spliced, in more than 1 s" rate "$prog" --rate 1000000 -- 3000000 1
  check "$name: --rate-total 1000000 echoes 4 x 750 kB exact, spliced, in more than 1 s" \
    rate "$prog" --rate-total 1000000 -- 750000 4
done
check "epoll_proxy --threads 2: both loops drain 8 uploads in flight, exact, exit 0" threads
check "file_server: a 16 MiB download in flight at SIGTERM arrives exact, the idle connection closed, exit 0" file_in_flight
check "file_server: --drain-timeout 1 cuts a download that cannot finish, exit 1 after about 1 s" cut_off "$file_server" "$work/root"
check "file_server: a second signal cuts at once, exit 1" cut_second "$file_server" "$work/root"

echo "graceful: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
