#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end tests of examples/file_server with real clients on 127.0.0.1, spliced and --userspace:
# curl downloads and uploads of 0 B to 256 MiB (sha256 compared), HEAD, 404, 400 for malformed
# request lines, path escapes ("..", %2e%2e, symlinks out of the root; both path resolvers),
# pipelined keep-alive requests answered in order, PUTs cut mid-body leaving no file, many
# concurrent keep-alive connections from wrk and ab with zero errors, and small bodies sent with
# their head (--small-body) or by splice::copy.
#   file_server.sh FILE_SERVER
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
server=$1
source "$here/lib.sh"
need curl python3 sha256sum wrk ab

# The served tree: files of the sizes under test, a directory, and symlinks out of (and within) it.
root=$work/root
mkdir -p "$root/dir" "$root/up"
sizes="0 1 4095 65536 1048577"
for n in $sizes; do head -c "$n" /dev/urandom >"$root/s$n.bin"; done
head -c 4096 /dev/urandom >"$root/k4.bin"
head -c 65536 /dev/urandom >"$root/k64.bin"
head -c 1 /dev/urandom >"$root/one.bin"
: >"$root/empty.bin"
head -c 256M /dev/urandom >"$root/big.bin"
big_sum=$(sha256sum <"$root/big.bin" | cut -d' ' -f1)
ln -s /etc/passwd "$root/passwd-link"
ln -s /etc "$root/etc-link"
ln -s k4.bin "$root/inner-link"
echo "secret" >"$work/outside.txt"

sum() { sha256sum <"$1" | cut -d' ' -f1; }
start_server() {  # start_server [FLAGS]: sets pid, port, log
  log="$work/server.$RANDOM.log"
  "$server" 127.0.0.1:0 "$root" "$@" >"$log" 2>&1 &
  pid=$!; pids+=("$pid")
  port=$(port_of "$log" "listening on") || { echo "server did not start"; cat "$log"; return 1; }
}
stop_server() {  # alive (no SIGPIPE death), exits 0 on SIGTERM, prints the pool's counters
  kill -0 "$pid" && kill -TERM "$pid" && wait "$pid" && grep -q '^pipes: created' "$log" && grep -q '^stopped$' "$log"
}
status() { curl -s --path-as-is -o "$work/body" -w '%{http_code}' "http://127.0.0.1:$port$1"; }
wait_log() {  # wait_log PATTERN: until the server's log has a matching line (10 s at most)
  for _ in $(seq 100); do grep -q "$1" "$log" && return 0; sleep 0.1; done
  echo "no log line matching '$1'"; cat "$log"; return 1
}

download() { [ "$(curl -sf "http://127.0.0.1:$port/$1" | sha256sum | cut -d' ' -f1)" = "$(sum "$root/$1")" ]; }
upload() {  # upload FILE NAME: 201, then the stored file equals FILE
  local code; code=$(curl -s -o /dev/null -w '%{http_code}' -T "$1" "http://127.0.0.1:$port/up/$2")
  [ "$code" = 201 ] && [ "$(sum "$root/up/$2")" = "$(sum "$1")" ] || { echo "status $code"; return 1; }
}
big_download() { [ "$(curl -sf "http://127.0.0.1:$port/big.bin" | sha256sum | cut -d' ' -f1)" = "$big_sum" ]; }
big_upload() { upload "$root/big.bin" big.bin; }
head_request() {
  curl -sfI "http://127.0.0.1:$port/k64.bin" >"$work/head" &&
    grep -qi '^content-length: 65536' "$work/head" && grep -q '^HTTP/1.1 200 OK' "$work/head"
}
not_found() { [ "$(status /no-such-file)" = 404 ] && [ "$(status /dir/no-such-file)" = 404 ]; }
refused() {  # refused PATH STATUS: answered STATUS, and nothing of what lies outside the root
  local code; code=$(status "$1")
  [ "$code" = "$2" ] && ! grep -Eq 'root:|secret' "$work/body" || { echo "$1: $code"; head -c 200 "$work/body"; return 1; }
}
escapes() {
  refused '/../etc/passwd' 400 && refused '/dir/../../etc/passwd' 400 && refused '/%2e%2e/etc/passwd' 400 &&
    refused '/%2E%2E%2fetc%2fpasswd' 400 && refused '/dir/%2e%2e/%2e%2e/outside.txt' 400 &&
    refused '/passwd-link' 403 && refused '/etc-link/passwd' 403 && refused '/inner-link' 403 &&
    refused '/up/../../outside.txt' 400 && refused '/dir' 403 &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' -T "$root/one.bin" "http://127.0.0.1:$port/etc-link/x")" = 403 ] &&
    [ ! -e /etc/x ]
}
cut_put() {  # cut_put FIN|RST: a PUT that stops after 1 MiB of 8 leaves neither file nor temporary
  local name=cut-$1.bin pattern
  echo old >"$root/up/$name"
  python3 "$here/http_client.py" abort "$port" "/up/$name" $((8 << 20)) $((1 << 20)) ${1/FIN/} || return 1
  if [ "$1" = FIN ]; then pattern='client left inside a body'; else pattern='reset by peer'; fi
  wait_log "$pattern" || return 1
  [ "$(cat "$root/up/$name")" = old ] || { echo "the old file changed"; return 1; }
  ! ls -a "$root/up" | grep -q '^\.put\.' || { echo "a temporary file remains:"; ls -a "$root/up"; return 1; }
}
fds_of() { find "/proc/$1/fd" -mindepth 1 -printf '%l\n' | grep -c "^socket"; }
load_wrk() {  # 200 keep-alive connections for 3 s: no socket error, no non-2xx answer
  wrk -t2 -c200 -d3s "http://127.0.0.1:$port/k64.bin" >"$work/wrk" 2>&1; cat "$work/wrk"
  grep -q 'requests in' "$work/wrk" && ! grep -q 'Socket errors' "$work/wrk" && ! grep -q 'Non-2xx' "$work/wrk"
}
load_ab() {  # ab checks every answer's length against the first: 0 failed, all kept alive
  ab -q -k -c 100 -n 20000 "http://127.0.0.1:$port/k4.bin" >"$work/ab" 2>&1; cat "$work/ab"
  grep -Eq '^Failed requests: +0$' "$work/ab" && grep -Eq '^Keep-Alive requests: +20000$' "$work/ab" &&
    grep -Eq '^Complete requests: +20000$' "$work/ab" && ! grep -q 'Non-2xx' "$work/ab"
}
sockets_back() {  # every client socket closed: only the listener is left
  for _ in $(seq 100); do [ "$(fds_of "$pid")" -le 1 ] && return 0; sleep 0.1; done
  echo "sockets still open: $(fds_of "$pid")"; return 1
}

for flags in "" --userspace; do
  name="file_server${flags:+ $flags}"
  start_server $flags || { failed=$((failed + 1)); continue; }
  rm -rf "$root/up" && mkdir "$root/up"
  for n in $sizes; do
    check "$name: download $n bytes" download "s$n.bin"
    check "$name: upload $n bytes" upload "$root/s$n.bin" "s$n.bin"
  done
  check "$name: curl downloads 256 MiB, sha256 equal" big_download
  check "$name: curl uploads 256 MiB, sha256 equal" big_upload
  check "$name: HEAD" head_request
  check "$name: 404" not_found
  check "$name: malformed request lines get an HTTP/1.1 400 and a close" python3 "$here/http_client.py" bad "$port"
  check "$name: path escapes refused" escapes
  check "$name: pipelined keep-alive requests answered in order" python3 "$here/http_client.py" pipeline "$port" "$root"
  check "$name: a PUT cut by FIN leaves no file" cut_put FIN
  check "$name: a PUT cut by RST leaves no file" cut_put RST
  check "$name: wrk, 200 keep-alive connections, no error" load_wrk
  check "$name: ab -k, 100 connections, 20000 requests, no failure" load_ab
  check "$name: every client socket closed" sockets_back
  check "$name: stops cleanly with the pool's counters" stop_server
  if [ -z "$flags" ]; then  # the kernel routes moved the bodies; --userspace moved none that way
    check "$name: bodies spliced" grep -Eq '^pipes: .*; spliced [1-9][0-9]* bytes' "$log"
  else
    check "$name: no body spliced" grep -Eq '^pipes: .*; spliced 0 bytes' "$log"
  fi
done

# The fallback resolver: the same escapes refused when openat2 is not used.
start_server --no-openat2 && {
  check "file_server --no-openat2: resolves by walking" grep -q 'paths resolved by openat walk' "$log"
  check "file_server --no-openat2: path escapes refused" escapes
  check "file_server --no-openat2: stops cleanly" stop_server
}

# Bodies up to --small-body (64 KiB) go out behind their head in one send, the larger ones by
# splice::copy; --small-body 0 sends every body by splice::copy. The pool's count of spliced bytes
# says which path each download took.
spliced_sum=0
for n in $sizes; do spliced_sum=$((spliced_sum + n)); done
for flags in "" "--small-body 0"; do
  name="file_server${flags:+ $flags}: downloads only"
  want=$([ -n "$flags" ] && echo "$spliced_sum" || echo 1048577)  # by default only s1048577.bin is spliced
  start_server $flags || { failed=$((failed + 1)); continue; }
  for n in $sizes; do check "$name: download $n bytes" download "s$n.bin"; done
  check "$name: stops cleanly" stop_server
  check "$name: $want bytes spliced" grep -Eq "^pipes: .*; spliced $want bytes" "$log"
done

echo "e2e file_server: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
