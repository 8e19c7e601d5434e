#!/usr/bin/env bash
# Plaintext against `backup --encrypt` of the bench fixtures (docs/BENCH.md, "Branch
# encgap"), for one or more ironclone binaries: every round backs each fixture up
# into a new repository, plaintext then encrypted, with each binary in turn, so the
# load of a shared machine hits all alike. One line per backup:
#   round fs binary kind wall_s user_s sys_s maxrss_kib load1 load5
# Usage: scripts/bench-encrypt.sh ROUNDS "ntfs ext4 ..." BIN [BIN...]
# Fixtures: build/bench/<fs>.img (scripts/bench-fixtures.sh), or BENCH_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
B="${BENCH_DIR:-$ROOT/build/bench}"
ROUNDS=$1
read -r -a FSES <<<"$2"
shift 2
W="$(mktemp -d "${TMPDIR:-/tmp}/ironclone-bench-enc.XXXXXX")"
trap 'rm -rf "$W"' EXIT
for fs in "${FSES[@]}"; do cat "$B/$fs.img" >/dev/null; done
for round in $(seq "$ROUNDS"); do
  for fs in "${FSES[@]}"; do
    for bin in "$@"; do
      for kind in plain enc; do
        rm -rf "$W/repo"
        sync
        extra=()
        [[ $kind == enc ]] && extra=(--encrypt)
        s=$(date +%s.%N)
        IRONCLONE_PASSWORD=bench /usr/bin/time -f '%U %S %M' -o "$W/time" \
          "$bin" backup "$B/$fs.img" "$W/repo" "${extra[@]}" --name first >/dev/null 2>&1
        e=$(date +%s.%N)
        read -r user sys rss <"$W/time"
        printf '%s %s %s %s %.3f %s %s %s %s\n' "$round" "$fs" "$(basename "$bin")" "$kind" \
          "$(python3 -c "print($e - $s)")" "$user" "$sys" "$rss" "$(cut -d' ' -f1,2 /proc/loadavg)"
      done
    done
  done
done
