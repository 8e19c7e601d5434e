#!/usr/bin/env bash
# `make test` (SUITE=ci, what CI runs) and `make test-all` (SUITE=all): the phases in
# order, stopping at the first failure, then how long each phase took. CI has 90 minutes
# and the suite must stay well inside them on a 2-core machine, so the time of every
# phase is printed on every run: a phase that grows shows up here before CI goes red.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
suite=${1:-ci}
case $suite in
  # CI: fuzz 10 s a target, and the QEMU scripts not marked `# suite: all`.
  ci) fuzz_seconds=${FUZZ_SECONDS:-10} ;;
  all) fuzz_seconds=${FUZZ_SECONDS:-15} ;;
  *) echo "suite: unknown suite '$suite' (ci or all)" >&2; exit 2 ;;
esac
times=() rc=0
for phase in lint build test-fast fuzz test-qemu; do
  start=$SECONDS
  if ! make --no-print-directory "$phase" FUZZ_SECONDS="$fuzz_seconds" QEMU_SUITE="$suite"; then
    rc=1
  fi
  times+=("$(printf '%-10s %5d s%s' "$phase" $((SECONDS-start)) "$([[ $rc -ne 0 ]] && echo '  FAILED')")")
  [[ $rc -eq 0 ]] || break
done
echo "== make test$([[ $suite == all ]] && echo -all): time per phase (${suite} suite)"
printf '%s\n' "${times[@]}"
echo "total      ${SECONDS} s"
exit "$rc"
