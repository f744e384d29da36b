#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end tests of --mirror through tcp_proxy and epoll_proxy, on 127.0.0.1: a mirror listener
# that reads gets an exact copy of a 16 MiB upload (sha256 compared) and the sink upstream gets it
# exact too; a mirror listener that never reads is cut ("cut (lag)" in the log) while the upload
# stays exact; a mirror port where nothing listens changes nothing; --mirror-file captures the
# upload to PATH.ID.up; --mirror-down mirrors a 4 MiB answer exactly.
#   mirror.sh PROXY... (tcp_proxy and epoll_proxy from ctest; asio_proxy works too)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
need python3 sha256sum

head -c 16M /dev/urandom >"$work/up.bin"
want=$(sha256sum <"$work/up.bin" | cut -d' ' -f1)
python3 "$here/servers.py" "$work" >"$work/servers.txt" & pids+=($!)
sink=$(port_of "$work/servers.txt" sink) eof=$(port_of "$work/servers.txt" eof)
python3 -u "$here/mirror_listener.py" >"$work/mirrors.txt" & pids+=($!)
keep=$(port_of "$work/mirrors.txt" keep) stall=$(port_of "$work/mirrors.txt" stall)
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# start_proxy BINARY [FLAGS]: a proxy to the sink (or to $upstream) on a free port; sets proxy_pid,
# proxy_port, proxy_log.
start_proxy() {
  proxy_log="$work/proxy.$RANDOM.log"
  "$1" 127.0.0.1:0 "127.0.0.1:${upstream:-$sink}" "${@:2}" >"$proxy_log" 2>&1 &
  proxy_pid=$!; pids+=($proxy_pid)
  proxy_port=$(port_of "$proxy_log" listening) || { echo "proxy did not start"; cat "$proxy_log"; return 1; }
}
stop_proxy() { kill -0 "$proxy_pid" && kill -TERM "$proxy_pid" && wait "$proxy_pid"; }

# upload: 16 MiB through the proxy to the sink, which answers with the length and sha256 it read.
upload() {
  python3 - "$proxy_port" "$work/up.bin" <<'PY' | grep -qx "16777216 $want"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(open(sys.argv[2], "rb").read())
s.shutdown(socket.SHUT_WR)
print(b"".join(iter(lambda: s.recv(1 << 16), b"")).decode().strip())
PY
}

# waits until the log FILE has a line matching PATTERN (10 s at most).
logged() {
  for _ in $(seq 100); do grep -qE "$2" "$1" && return 0; sleep 0.1; done
  echo "no line matching '$2' in $1:"; cat "$1"; return 1
}

# A mirror that keeps up: the listener got all 16 MiB, and the proxy says finished. The listener
# (Python, hashing as it reads) may fall behind the spliced upload by more than the default bound
# on a busy machine, so the bound here holds the whole upload: no cut can depend on scheduling.
exact() {
  local before; before=$(grep -c '^got ' "$work/mirrors.txt")
  start_proxy "$1" --mirror "127.0.0.1:$keep" --mirror-lag 33554432 && upload || return 1
  logged "$proxy_log" '^mirror 1 up: 16777216 bytes, finished$' || return 1
  for _ in $(seq 100); do [ "$(grep -c '^got ' "$work/mirrors.txt")" -gt "$before" ] && break; sleep 0.1; done
  grep '^got ' "$work/mirrors.txt" | tail -1 | grep -qx "got 16777216 $want" || { echo "mirror copy differs"; return 1; }
  stop_proxy
}
stalled() {  # a mirror that never reads: cut by its lag bound, the upload exact
  start_proxy "$1" --mirror "127.0.0.1:$stall" --mirror-lag 65536 && upload || return 1
  logged "$proxy_log" '^mirror 1 up: [0-9]+ bytes, cut \(lag\)$' && stop_proxy
}
refused() {  # nothing listens at the mirror's address: cut, the upload exact
  start_proxy "$1" --mirror "127.0.0.1:$closed" && upload || return 1
  logged "$proxy_log" '^mirror 1 up: 0 bytes, cut \(.*Connection refused\)$' && stop_proxy
}
down() {  # --mirror-down: the answer-after-eof server's 4 MiB answer, mirrored exactly
  local before; before=$(grep -c '^got ' "$work/mirrors.txt")
  upstream=$eof start_proxy "$1" --mirror-down "127.0.0.1:$keep" --mirror-lag 33554432 || return 1
  local answer; answer=$(python3 - "$proxy_port" "$work/up.bin" <<'PY'
import hashlib, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(open(sys.argv[2], "rb").read(1 << 20))
s.shutdown(socket.SHUT_WR)
got = b"".join(iter(lambda: s.recv(1 << 16), b""))
print(len(got), hashlib.sha256(got).hexdigest())
PY
) || return 1
  logged "$proxy_log" '^mirror 1 down: 4194304 bytes, finished$' || return 1
  for _ in $(seq 100); do [ "$(grep -c '^got ' "$work/mirrors.txt")" -gt "$before" ] && break; sleep 0.1; done
  [ "$(grep '^got ' "$work/mirrors.txt" | tail -1)" = "got $answer" ] || { echo "mirror got something else than $answer"; return 1; }
  stop_proxy
}
capture() {  # --mirror-file: the upload, captured whole
  start_proxy "$1" --mirror-file "$work/cap" && upload || return 1
  logged "$proxy_log" '^mirror 1 up: 16777216 bytes, finished$' || return 1
  [ "$(sha256sum <"$work/cap.1.up" | cut -d' ' -f1)" = "$want" ] && stop_proxy
}

for proxy in "$@"; do
  name=$(basename "$proxy")
  check "$name mirror exact" exact "$proxy"
  check "$name mirror stalled" stalled "$proxy"
  check "$name mirror refused" refused "$proxy"
  check "$name mirror down" down "$proxy"
  check "$name mirror file" capture "$proxy"
  rm -f "$work"/cap.*
done
echo "mirror e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
