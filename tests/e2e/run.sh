#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end tests of the example proxies with real clients, all on 127.0.0.1:
# iperf3 (-P 8, both directions), curl downloading and uploading 256 MiB (sha256 compared),
# 500 concurrent echo connections with random payloads (fd count back to baseline afterwards), and
# a half-close exchange; each through every proxy given, spliced and with --userspace.
#   run.sh PROXY...     (tcp_proxy, epoll_proxy, and asio_proxy when it is built)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for tool in iperf3 curl python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

passed=0 failed=0
check() {  # check NAME COMMAND...: runs the command, counts and prints the outcome
  local name=$1; shift
  if "$@" >"$work/out" 2>&1; then
    passed=$((passed + 1)); echo "PASS $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/    /' "$work/out" | tail -20
  fi
}

# port_of FILE PREFIX: waits for a line "PREFIX PORT" (or "listening on HOST:PORT") and prints PORT.
port_of() {
  for _ in $(seq 100); do
    local p
    p=$(sed -n "s/^$2.*[ :]\([0-9][0-9]*\)$/\1/p" "$1" | head -1)
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.1
  done
  return 1
}

head -c 256M /dev/urandom >"$work/big.bin"
want=$(sha256sum <"$work/big.bin" | cut -d' ' -f1)

python3 "$here/servers.py" "$work" >"$work/servers.txt" & pids+=($!)
http=$(port_of "$work/servers.txt" http) echo_port=$(port_of "$work/servers.txt" echo) eof=$(port_of "$work/servers.txt" eof)
iperf_port=$((20000 + RANDOM % 20000))
iperf3 -s -p "$iperf_port" >/dev/null 2>&1 & pids+=($!)
sleep 0.5

# start_proxy BINARY UPSTREAM_PORT [FLAGS]: starts a proxy on a free port; sets proxy_pid, proxy_port.
start_proxy() {
  local log="$work/proxy.$RANDOM.log"
  "$1" 127.0.0.1:0 "127.0.0.1:$2" "${@:3}" >"$log" 2>&1 &
  proxy_pid=$!; pids+=($proxy_pid)
  proxy_port=$(port_of "$log" listening) || { echo "proxy did not start"; cat "$log"; return 1; }
}

stop_proxy() {  # the proxy must still be alive (no SIGPIPE death) and exit 0 on SIGTERM
  kill -0 "$proxy_pid" && kill -TERM "$proxy_pid" && wait "$proxy_pid"
}

# iperf3 ends a test while bytes are still in flight and stops counting them, in either direction:
# without any proxy on this machine, a forward -P 8 run reported 3925606400 bytes sent and
# 3890216960 received. So this is a sanity bound; byte-exact delivery is what the curl and echo
# checks prove.
iperf() {
  iperf3 -c 127.0.0.1 -p "$1" -t 2 -P 8 "${@:2}" -J >"$work/iperf.json" || return 1
  python3 - "$work/iperf.json" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["end"]
s, r = e["sum_sent"]["bytes"], e["sum_received"]["bytes"]
print(f"sent {s} received {r}")
sys.exit(0 if 0 < r <= s and r > 0.9 * s else 1)
PY
}

download() { [ "$(curl -sf "http://127.0.0.1:$1/big.bin" | sha256sum | cut -d' ' -f1)" = "$want" ]; }
upload() { [ "$(curl -sf -T "$work/big.bin" "http://127.0.0.1:$1/upload")" = "$want" ]; }

fds_of() { find "/proc/$1/fd" -mindepth 1 -printf '%l\n' | grep -c "^$2"; }
echo_many() {  # 500 concurrent connections; then the proxy's sockets are back to their baseline
  # and its pipes are the pool's idle ones, at most 16 (32 fds).
  local base pipes; base=$(fds_of "$2" socket) pipes=$(fds_of "$2" pipe)
  python3 "$here/clients.py" echo "$1" 500 || return 1
  for _ in $(seq 50); do
    [ "$(fds_of "$2" socket)" -le "$base" ] && [ "$(fds_of "$2" pipe)" -le $((pipes + 32)) ] && return 0
    sleep 0.1
  done
  echo "sockets: baseline $base, now $(fds_of "$2" socket); pipe fds: $pipes before, $(fds_of "$2" pipe) now"
  return 1
}

[ $# -gt 0 ] || { echo "usage: run.sh PROXY..."; exit 2; }
for proxy in "$@"; do
  flag_sets=("" --userspace)
  # asio_proxy also on an io_context run by four threads, where both directions share a strand
  [ "$(basename "$proxy")" = asio_proxy ] && flag_sets+=("--threads 4")
  for flags in "${flag_sets[@]}"; do
    name="$(basename "$proxy")${flags:+ $flags}"
    start_proxy "$proxy" "$iperf_port" $flags && {
      check "$name: iperf3 -P 8" iperf "$proxy_port"
      check "$name: iperf3 -P 8 -R" iperf "$proxy_port" -R
      check "$name: stops cleanly" stop_proxy
    }
    start_proxy "$proxy" "$http" $flags && {
      check "$name: curl downloads 256 MiB, sha256 equal" download "$proxy_port"
      check "$name: curl uploads 256 MiB, sha256 equal" upload "$proxy_port"
      check "$name: stops cleanly" stop_proxy
    }
    start_proxy "$proxy" "$echo_port" $flags --max-conns 2000 && {
      check "$name: 500 concurrent echo connections verified, fds back to baseline" echo_many "$proxy_port" "$proxy_pid"
      check "$name: stops cleanly" stop_proxy
    }
    start_proxy "$proxy" "$eof" $flags && {
      check "$name: half-close, whole answer received" python3 "$here/clients.py" halfclose "$proxy_port"
      check "$name: stops cleanly" stop_proxy
    }
  done
done

echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
