#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks that the benchmarks' load generator counts right: every workload of `loadgen client`
# directly against `loadgen serve`, and through a proxy when one is given. Asserts what does not
# depend on timing: no connection failed, the sink's count of every stream equals what was written,
# and each of the K short-connection slots finished at least its first connection.
#   loadgen_smoke.sh LOADGEN [PROXY]
set -uo pipefail
loadgen=$1 proxy=${2:-}
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"' EXIT

port_of() {  # port_of LOG: the port of the "listening on HOST:PORT" line, waiting for it
  for _ in $(seq 100); do
    p=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$1")
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.05
  done
  return 1
}

"$loadgen" serve >"$work/serve.log" & pids+=($!)
up=$(port_of "$work/serve.log") || { echo "FAIL: loadgen serve did not start"; exit 1; }
targets=("$up")
if [ -n "$proxy" ]; then
  "$proxy" 127.0.0.1:0 "127.0.0.1:$up" >"$work/proxy.log" & pids+=($!)
  targets+=("$(port_of "$work/proxy.log")") || { echo "FAIL: $proxy did not start"; exit 1; }
fi

failed=0
for port in "${targets[@]}"; do
  "$loadgen" client "127.0.0.1:$port" 0.2 stream=3,4096 conns=8,16384 rr=4,64 >"$work/out.json"
  rc=$?
  if python3 - "$work/out.json" "$rc" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s, c, q = r["stream"], r["conns"], r["rr"]
assert int(sys.argv[2]) == 0, f"loadgen exited {sys.argv[2]}"
assert s["failed"] == 0 and s["received"] == s["written"], s
assert c["failed"] == 0 and c["done"] + c["late"] >= c["slots"], c
assert q["failed"] == 0, q
PY
  then echo "PASS loadgen through 127.0.0.1:$port"; else echo "FAIL loadgen through 127.0.0.1:$port"; cat "$work/out.json"; failed=1; fi
done
exit $failed
