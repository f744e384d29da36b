#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the test cases tagged [.unprivileged] as user nobody: root is exempt from the per-user pipe
# budget, so only an unprivileged run sees it. Says SKIP (exit 77) where it cannot switch users.
#   unprivileged.sh SPLICE_TESTS
set -euo pipefail
tests=$(realpath "$1")
if [ "$(id -u)" -ne 0 ]; then
  exec "$tests" "[.unprivileged]" --warn NoTests
fi
command -v setpriv >/dev/null || { echo "SKIP: setpriv is not installed"; exit 77; }
id nobody >/dev/null 2>&1 || { echo "SKIP: no user nobody"; exit 77; }
group=$(id -gn nobody)
cd /tmp
exec setpriv --reuid=nobody --regid="$group" --clear-groups "$tests" "[.unprivileged]" --warn NoTests
