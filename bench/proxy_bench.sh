#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The proxy parts of bench/run alone: real clients through epoll_proxy, tcp_proxy (and asio_proxy),
# spliced and --userspace, HAProxy, Go and nginx, each proxy under a CPU quota. See bench/run.
#   bench/proxy_bench.sh [SECONDS] [peers|reqresp|latency|threads|unprivileged]...
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" =~ ^[0-9.]+$ ]]; then
  export SECS=$1
  shift
fi
[ $# -gt 0 ] || set -- peers reqresp latency threads unprivileged
exec bench/run "$@"
