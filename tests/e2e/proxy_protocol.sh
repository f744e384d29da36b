#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end tests of the PROXY protocol flags of the example proxies against real peers, all on
# 127.0.0.1: curl --haproxy-protocol into --accept-proxy; --send-proxy into nginx `listen ...
# proxy_protocol` (nginx answers with $proxy_protocol_addr:$proxy_protocol_port), from a proxy
# listening on [::] so that the client's address is IPv4-mapped; --send-proxy-v2 into HAProxy
# `accept-proxy` (HAProxy answers with the address and the AUTHORITY TLV it received); HAProxy
# `send-proxy-v2` in front of --accept-proxy; 64 MiB each way behind a header (sha256 compared,
# `spliced yes` logged); a header one byte at a time; and hostile clients (a bad header, garbage,
# a header that never completes, silence): each closed within 2 s with its reason logged, nothing
# connected upstream, and no CPU spent while waiting. Each through tcp_proxy, epoll_proxy and
# asio_proxy when given. A case whose peer (nginx, haproxy) is not installed says SKIP.
#   proxy_protocol.sh TCP_PROXY EPOLL_PROXY [ASIO_PROXY]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
need curl python3 sha256sum
proxies=("$@")
skipped=0
PATH=$PATH:/usr/sbin:/sbin  # nginx and haproxy live there
nginx_bin=$(command -v nginx || true) haproxy_bin=$(command -v haproxy || true)
skip() { skipped=$((skipped + 1)); echo "SKIP $1"; }

head -c 64M /dev/urandom >"$work/64m.bin"
mkdir -p "$work/www" && head -c 4M /dev/urandom >"$work/www/file.bin"
want_file=$(sha256sum <"$work/www/file.bin" | cut -d' ' -f1)

python3 "$here/pp.py" serve "$work" >"$work/peers.txt" 2>&1 & pids+=($!)
echo_port=$(port_of "$work/peers.txt" echo) || { echo "the upstream did not start"; exit 1; }
read -r ngx_pp ngx_plain hap_in <<<"$(python3 "$here/pp.py" free 3)"

# listens PORT: waits up to 5 s until something accepts on 127.0.0.1:PORT.
listens() {
  for _ in $(seq 50); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1).close()" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

if [ -n "$nginx_bin" ]; then
  mkdir -p "$work/nginx"
  cat >"$work/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 256; }
http {
  client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy; fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;
  log_format pp '\$proxy_protocol_addr:\$proxy_protocol_port from \$remote_addr';
  server {
    listen 127.0.0.1:$ngx_pp proxy_protocol;
    access_log $work/nginx/pp.log pp;
    location / { default_type text/plain; return 200 "\$proxy_protocol_addr:\$proxy_protocol_port\n"; }
  }
  server { listen 127.0.0.1:$ngx_plain; access_log off; root $work/www; }
}
EOF
  "$nginx_bin" -p "$work/nginx" -c "$work/nginx.conf" >"$work/nginx/out.log" 2>&1 & pids+=($!)
  listens "$ngx_pp" && listens "$ngx_plain" || { echo "nginx did not start"; cat "$work/nginx/out.log" "$work/nginx/error.log"; nginx_bin=""; }
fi

# start KEY UPSTREAM_PORT LISTEN BINARY [FLAGS]: starts a proxy; sets port[KEY], pid[KEY], log[KEY].
declare -A port pid log
start() {
  local key=$1 up=$2 at=$3
  log[$key]="$work/proxy.$key.log"
  "$4" "$at" "127.0.0.1:$up" "${@:5}" >"${log[$key]}" 2>&1 &
  pid[$key]=$!; pids+=(${pid[$key]})
  port[$key]=$(port_of "${log[$key]}" listening) || { echo "$key did not start"; cat "${log[$key]}"; return 1; }
}

# Every proxy under test, in each of its roles; the upstream is the echo peer unless named.
for bin in "${proxies[@]}"; do
  n=$(basename "$bin")
  start "$n.echo" "$echo_port" 127.0.0.1:0 "$bin" --accept-proxy --send-proxy-v2 --proxy-timeout 1
  if [ -n "$nginx_bin" ]; then
    start "$n.curl" "$ngx_plain" 127.0.0.1:0 "$bin" --accept-proxy
    if python3 -c "import socket; socket.socket(socket.AF_INET6).bind(('::', 0))" 2>/dev/null; then
      start "$n.nginx" "$ngx_pp" "[::]:0" "$bin" --send-proxy
    else
      start "$n.nginx" "$ngx_pp" 127.0.0.1:0 "$bin" --send-proxy
    fi
    start "$n.behind" "$ngx_pp" 127.0.0.1:0 "$bin" --accept-proxy --send-proxy
  fi
  [ -n "$haproxy_bin" ] && start "$n.haproxy" "$hap_in" 127.0.0.1:0 "$bin" --accept-proxy --send-proxy-v2
done

# HAProxy: accept-proxy in front of an answer naming what it received; and one send-proxy-v2
# listener in front of each proxy's --accept-proxy role.
declare -A front
if [ -n "$haproxy_bin" ]; then
  read -r -a ports <<<"$(python3 "$here/pp.py" free "${#proxies[@]}")"
  {
    printf 'global\n  maxconn 200\ndefaults\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n'
    printf 'frontend pp_in\n  mode http\n  bind 127.0.0.1:%s accept-proxy\n' "$hap_in"
    printf '  http-request return status 200 content-type text/plain lf-string "%%[src]:%%[src_port] %%[fc_pp_authority]\\n"\n'
    i=0
    for bin in "${proxies[@]}"; do
      n=$(basename "$bin") front[$n]=${ports[$i]}
      [ -n "$nginx_bin" ] && printf 'listen front_%s\n  mode tcp\n  bind 127.0.0.1:%s\n  server p 127.0.0.1:%s send-proxy-v2\n' \
        "$n" "${front[$n]}" "${port[$n.behind]}"
      i=$((i + 1))
    done
  } >"$work/haproxy.cfg"
  "$haproxy_bin" -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 & pids+=($!)
  listens "$hap_in" || { echo "haproxy did not start"; cat "$work/haproxy.log"; haproxy_bin=""; }
fi

# logged KEY PATTERN: waits up to 2 s for a line of the proxy's log that matches PATTERN (ERE).
logged() {
  for _ in $(seq 20); do
    grep -qE "$2" "${log[$1]}" && return 0
    sleep 0.1
  done
  echo "no log line matching: $2"; cat "${log[$1]}"
  return 1
}

# curl --haproxy-protocol sends its own addresses: the log names the carried one before "via".
curl_in() {
  local got; got=$(curl -sf --haproxy-protocol "http://127.0.0.1:${port[$1]}/file.bin" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want_file" ] || { echo "sha256 differs"; return 1; }
  logged "$1" '^conn [0-9]+ 127\.0\.0\.1:([0-9]+) via 127\.0\.0\.1:\1: up [0-9]+ bytes, down [0-9]+ bytes, spliced yes, ok$'
}

# nginx answers with the address the header carried: curl's own, TCP4 though the proxy saw it
# as IPv4-mapped IPv6.
into_nginx() {
  local out; out=$(curl -sf -w ' %{local_port}' "http://127.0.0.1:${port[$1]}/") || return 1
  echo "nginx says: $out"
  [ "$(echo "$out" | head -1)" = "127.0.0.1:$(echo "$out" | tail -1 | tr -d ' ')" ]
}

# HAProxy answers with the address and the AUTHORITY TLV the proxy passed on from the client's v2.
into_haproxy() {
  local out; out=$(python3 "$here/pp.py" tlv "${port[$1]}") || return 1
  echo "haproxy says: $out"
  [ "$out" = "198.51.100.9:40002 pp.example" ]
}

# curl -> HAProxy send-proxy-v2 -> the proxy (--accept-proxy --send-proxy) -> nginx: curl's
# address comes through both headers, and the proxy's log names it.
behind_haproxy() {
  local out lp; out=$(curl -sf -w ' %{local_port}' "http://127.0.0.1:${front[$2]}/") || return 1
  echo "nginx says: $out"
  lp=$(echo "$out" | tail -1 | tr -d ' ')
  [ "$(echo "$out" | head -1)" = "127.0.0.1:$lp" ] && logged "$1" "^conn [0-9]+ 127\.0\.0\.1:$lp via 127\.0\.0\.1:[0-9]+: .*, ok$"
}

accepted() { grep -c '^accepted ' "$work/upstream.log" 2>/dev/null || echo 0; }

# 64 MiB each way behind a v1 header: what comes back is exact, the upstream got a v2 header
# carrying 198.51.100.7:40001 (c6336407, 9c41), and both directions were spliced.
bulk() {
  python3 "$here/pp.py" bulk "${port[$1]}" "$work/64m.bin" || return 1
  logged "$1" '^conn [0-9]+ 198\.51\.100\.7:40001 via 127\.0\.0\.1:[0-9]+: up 67108864 bytes, down 67108864 bytes, spliced yes, ok$' || return 1
  tail -1 "$work/upstream.log" | grep -qE '^header [0-9]+ 0d0a0d0a000d0a515549540a2111000cc6336407c00002019c4101bb$' ||
    { echo "upstream header: $(tail -1 "$work/upstream.log")"; return 1; }
}

# hostile KEY: four hostile clients at once (bad, garbage, incomplete, silent); notes how each
# ended, the upstream's connection count before and after, and the proxy's CPU ticks meanwhile.
hostile() {
  local before ticks; before=$(accepted) ticks=$(awk '{print $14 + $15}' "/proc/${pid[$1]}/stat")
  python3 "$here/pp.py" hostile "${port[$1]}" bad garbage incomplete silent >"$work/hostile.$1"
  ticks=$(($(awk '{print $14 + $15}' "/proc/${pid[$1]}/stat") - ticks))
  sleep 0.2
  echo "$before $(accepted) $ticks" >"$work/hostile.$1.stats"
}

# hostile_case KEY MODE PATTERN: that client was closed in time, its reason logged (PATTERN), nothing
# reached the upstream, and the proxy spent at most 5% of a CPU while the four waited.
hostile_case() {
  local before after ticks; read -r before after ticks <"$work/hostile.$1.stats"
  grep "^$2: " "$work/hostile.$1"
  grep -q "^$2: .* ok$" "$work/hostile.$1" || return 1
  logged "$1" "$3" >/dev/null || { echo "no log line matching: $3"; tail -5 "${log[$1]}"; return 1; }
  grep -E "$3" "${log[$1]}" | tail -1
  [ "$after" -eq "$before" ] || { echo "the upstream accepted $((after - before)) connections"; return 1; }
  echo "CPU while they waited: $ticks ticks"
  [ $((ticks * 100 / $(getconf CLK_TCK))) -le 5 ]
}

refused='^conn [0-9]+ 127\.0\.0\.1:[0-9]+: up 0 bytes, down 0 bytes, spliced no \(nothing moved\), proxy header: '
for bin in "${proxies[@]}"; do
  n=$(basename "$bin")
  check "$n: 64 MiB each way behind a header, sha256 equal, v2 header upstream, spliced yes" bulk "$n.echo"
  check "$n: a header one byte at a time is accepted" python3 "$here/pp.py" bytewise "${port[$n.echo]}"
  hostile "$n.echo"
  check "$n: a bad header: closed, reason logged, nothing upstream" \
    hostile_case "$n.echo" bad "${refused}bad PROXY protocol header \(v1 bad source address\)$"
  check "$n: garbage: closed, reason logged, nothing upstream" \
    hostile_case "$n.echo" garbage "${refused}bad PROXY protocol header \(not a PROXY protocol header\)$"
  check "$n: a header that never completes: closed at the deadline, reason logged, nothing upstream, no CPU" \
    hostile_case "$n.echo" incomplete "${refused}Connection timed out \(header incomplete at the deadline, 24 bytes\)$"
  check "$n: no header at all: closed at the deadline, reason logged, nothing upstream, no CPU" \
    hostile_case "$n.echo" silent "${refused}Connection timed out \(no header within the deadline\)$"
  if [ -n "$nginx_bin" ]; then
    check "$n: curl --haproxy-protocol into --accept-proxy, 4 MiB exact, the carried address logged" curl_in "$n.curl"
    check "$n: --send-proxy into nginx proxy_protocol: nginx sees the client (IPv4-mapped sent as TCP4)" into_nginx "$n.nginx"
  else
    skip "$n: curl --haproxy-protocol, --send-proxy into nginx (nginx is not installed)"
  fi
  if [ -n "$haproxy_bin" ]; then
    check "$n: --send-proxy-v2 into HAProxy accept-proxy: the carried address and the v2 TLV passed on" into_haproxy "$n.haproxy"
    if [ -n "$nginx_bin" ]; then
      check "$n: HAProxy send-proxy-v2 in front of --accept-proxy: the client's address through both" behind_haproxy "$n.behind" "$n"
    fi
  else
    skip "$n: HAProxy accept-proxy and send-proxy-v2 (haproxy is not installed)"
  fi
done

# Every proxy is still alive (no SIGPIPE death) and exits 0 on SIGTERM within 5 s.
stops() {
  local state
  kill -0 "${pid[$1]}" && kill -TERM "${pid[$1]}" || return 1
  for _ in $(seq 50); do
    state=$(awk '{print $3}' "/proc/${pid[$1]}/stat" 2>/dev/null)
    if [ -z "$state" ] || [ "$state" = Z ]; then wait "${pid[$1]}"; return; fi
    sleep 0.1
  done
  echo "still running"; return 1
}
for key in $(printf '%s\n' "${!pid[@]}" | sort); do
  check "$key: stops cleanly" stops "$key"
done

echo "e2e proxy protocol: $passed passed, $failed failed$([ "$skipped" -gt 0 ] && echo ", $skipped skipped")"
[ "$failed" -eq 0 ]
