#!/usr/bin/env bash
# Runs the QEMU end-to-end test scripts in this folder (test-*.sh), in order, and prints
# how long each took and a closing "N passed, N failed" line. A failing test's log path
# is shown by the test itself.
#
# QEMU_SUITE=ci skips the scripts that carry a `# suite: all` line in their header: CI
# (`make test`) has a time budget, and those scripts prove things another CI script
# already covers in part (see the README's "Tests" section). QEMU_SUITE=all (the
# default, and `make test-all`) runs every script except those marked
# `# suite: known-failing` (a test written for a case the product does not pass yet, kept
# to be run by hand while it is worked on; each says why in its header and the README's
# table): they are listed as skipped in both suites, so that a red test is never hidden
# inside a green suite nor makes every run red.
set -uo pipefail
cd "$(dirname "$0")" || exit 1
suite=${QEMU_SUITE:-all}
[[ $suite == ci || $suite == all ]] || { echo "run-all: QEMU_SUITE must be ci or all, not '$suite'" >&2; exit 2; }
passed=0 failed=0 skipped=0
summary=()
shopt -s nullglob
for t in test-*.sh; do
  # Only the header counts: a script may mention the marker further down.
  if head -n 20 "$t" | grep -qx '# suite: known-failing'; then
    skipped=$((skipped+1))
    summary+=("$(printf '%-32s %s' "$t" 'skipped (known failing, see its header)')")
    continue
  fi
  if [[ $suite == ci ]] && head -n 20 "$t" | grep -qx '# suite: all'; then
    skipped=$((skipped+1))
    summary+=("$(printf '%-32s %s' "$t" 'skipped (make test-all)')")
    continue
  fi
  echo "== qemu: $t"
  start=$SECONDS
  if bash "$t"; then
    passed=$((passed+1)); result=ok
  else
    failed=$((failed+1)); result=FAILED; echo "FAILED: $t"
  fi
  summary+=("$(printf '%-32s %-6s %4d s' "$t" "$result" $((SECONDS-start)))")
done
echo "== qemu ($suite suite): time per script"
printf '%s\n' "${summary[@]}"
echo "qemu: $passed passed, $failed failed, $skipped skipped, ${SECONDS} s"
[[ $failed -eq 0 ]]
