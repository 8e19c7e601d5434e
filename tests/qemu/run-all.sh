#!/usr/bin/env bash
# Runs every QEMU end-to-end test script in this folder (test-*.sh), in order,
# and prints a closing "N passed, N failed" line. A failing test's log path is shown.
set -uo pipefail
cd "$(dirname "$0")" || exit 1
passed=0 failed=0
shopt -s nullglob
for t in test-*.sh; do
  echo "== qemu: $t"
  if bash "$t"; then passed=$((passed+1)); else failed=$((failed+1)); echo "FAILED: $t"; fi
done
echo "qemu: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
