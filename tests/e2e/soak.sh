#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Soak and flood: 1,000 concurrent clients open, verify and close echo connections with random
# sizes through epoll_proxy for SECONDS, while the proxy allows only 200 at once (the rest wait in
# the backlog). Passes when every payload came back whole, the proxy never held more than its limit,
# its RSS at the end is within 20% (+4 MiB) of the RSS after the first tenth, and its sockets are back
# to the baseline and its pipes within the pool's bound afterwards.
#   soak.sh EPOLL_PROXY SECONDS [PROXY_FLAGS...]   (CI: 120, and 30 with --threads 2; documented long run: 3600)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
proxy=$1 secs=$2
shift 2
source "$here/lib.sh"

python3 "$here/servers.py" "$work" >"$work/servers.txt" & pids+=($!)
echo_port=$(port_of "$work/servers.txt" echo) || { echo "no echo server"; exit 1; }
"$proxy" 127.0.0.1:0 "127.0.0.1:$echo_port" --max-conns 200 "$@" >"$work/proxy.log" & pid=$!; pids+=($pid)
port=$(port_of "$work/proxy.log" "listening on") || { echo "the proxy did not start"; cat "$work/proxy.log"; exit 1; }

count() { find "/proc/$pid/fd" -mindepth 1 -printf '%l\n' 2>/dev/null | grep -c "^$1"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
base_sockets=$(count socket) base_pipes=$(count pipe)

python3 "$here/clients.py" soak "$port" "$secs" 1000 >"$work/clients.out" 2>&1 & client=$!
max_sockets=0 rss_early=""
start=$(date +%s)
while kill -0 "$client" 2>/dev/null; do
  s=$(count socket); [ "$s" -gt "$max_sockets" ] && max_sockets=$s
  [ -z "$rss_early" ] && [ $(( $(date +%s) - start )) -ge $(( secs / 10 + 1 )) ] && rss_early=$(rss)
  sleep 0.5
done
wait "$client"; clients_ok=$?
rss_late=$(rss)
sleep 1
sockets_after=$(count socket) pipes_after=$(count pipe)
kill -0 "$pid" && kill -TERM "$pid" && wait "$pid"; proxy_ok=$?

cat "$work/clients.out"
echo "connections logged: $(grep -c '^conn ' "$work/proxy.log"); proxy sockets: baseline $base_sockets, max $max_sockets," \
  "after $sockets_after; pipe fds: $base_pipes before, $pipes_after after; RSS: $rss_early kB early, $rss_late kB late"
fail=0
[ "$clients_ok" -eq 0 ] || { echo "FAIL: a payload did not come back whole"; fail=1; }
[ "$max_sockets" -le $((base_sockets + 2 * 200 + 2)) ] || { echo "FAIL: more connections than --max-conns"; fail=1; }
[ "$sockets_after" -le "$base_sockets" ] || { echo "FAIL: sockets left open"; fail=1; }
[ "$pipes_after" -le $((base_pipes + 32)) ] || { echo "FAIL: pipes beyond the pool's bound"; fail=1; }
[ "$rss_late" -le $((rss_early * 12 / 10 + 4096)) ] || { echo "FAIL: RSS grew"; fail=1; }
[ "$proxy_ok" -eq 0 ] || { echo "FAIL: the proxy did not exit cleanly"; fail=1; }
[ "$fail" -eq 0 ] && echo "soak checks: 1 passed, 0 failed" || echo "soak checks: 0 passed, 1 failed"
exit "$fail"
