#!/usr/bin/env bash
# Runs shellcheck over every shell script of the project (`make lint`): the tracked *.sh
# files and the extension-less ones whose first line names sh or bash (initramfs/init and
# its helpers, .ci/run). Sourced helpers are followed (-x) from each script's own folder.
# A warning fails the run; one that is wrong for a line is silenced on that line with
# `# shellcheck disable=SCxxxx # reason`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v shellcheck >/dev/null || { echo "shellcheck: missing; run make setup" >&2; exit 1; }
files=()
while IFS= read -r -d '' f; do
  [[ -f $f ]] || continue
  if [[ $f == *.sh ]] || head -n1 "$f" | grep -qE '^#!.*[/ ](ba)?sh( |$)'; then
    files+=("$f")
  fi
done < <(git ls-files -z)
((${#files[@]})) || { echo "shellcheck: no shell scripts found" >&2; exit 1; }
shellcheck -x -P SCRIPTDIR "${files[@]}"
echo "shellcheck: ${#files[@]} scripts clean"
