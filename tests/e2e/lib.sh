# SPDX-License-Identifier: MIT
# What the end-to-end scripts share; sourced, after `set -uo pipefail`.
#   need TOOL...          exits 77 (ctest's SKIP) naming the first TOOL not installed
#   $work, pids, cleanup  a temporary directory, and processes killed with it on exit
#   check NAME CMD...     runs CMD, counts it in passed/failed, prints PASS or FAIL with its output
#   port_of FILE PREFIX   waits up to 10 s for a line "PREFIX ... PORT" (or "PREFIX HOST:PORT") in
#                         FILE and prints PORT

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
  done
}

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

passed=0 failed=0
check() {
  local name=$1 start=$SECONDS; shift
  if "$@" >"$work/out" 2>&1; then
    passed=$((passed + 1)); echo "PASS $name ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/    /' "$work/out" | tail -20
  fi
}

port_of() {
  for _ in $(seq 100); do
    local p
    p=$(sed -n "s/^$2.*[ :]\([0-9][0-9]*\)$/\1/p" "$1" | head -1)
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.1
  done
  return 1
}
