#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end test of --metrics (tests/e2e/metrics.py) through each proxy given:
#   tests/e2e/metrics.sh PROXY [PROXY...]
# Needs curl and python3 with prometheus_client (Debian: python3-prometheus-client); SKIP (77)
# without them. A python3 first on PATH that lacks the module (a pyenv one) gives way to
# /usr/bin/python3.
set -uo pipefail
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
for py in python3 /usr/bin/python3; do
  if "$py" -c 'import prometheus_client' 2>/dev/null; then
    exec "$py" "$(dirname "$0")/metrics.py" "$@"
  fi
done
echo "SKIP: python3 has no prometheus_client (python3-prometheus-client)"
exit 77
