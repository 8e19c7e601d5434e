#!/usr/bin/env bash
# Part of `make bench` (issue 16 item 6): a 2 TB ext4 (sparse file, inode tables left
# for lazy init as mkfs.ext4 makes them on a big disk) holding the same files as the
# 4 GiB ext4 fixture must cost what its files cost, not what its size costs. Goal: its
# backup and restore take at most 1.5x those of the 4 GiB one, and the backup no longer
# than `e2image -ra` (which also skips never-used inode tables). Restores go onto new
# sparse files with the read-back verify on, so what is read back is counted too.
# Run alone: bash scripts/bench-big.sh (BENCH_REPEAT=1 for one round).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${IRONCLONE:-$ROOT/target/x86_64-unknown-linux-musl/release/ironclone}"
B="$ROOT/build/bench"
W="$(mktemp -d "${TMPDIR:-/tmp}/ironclone-bench-big.XXXXXX")"
trap 'rm -rf "$W"' EXIT
bash "$ROOT/scripts/bench-fixtures.sh" >/dev/null

row() { printf '%-40s %8s %8s %24s %14s\n' "$@"; }
declare -A T C N
REPEAT="${BENCH_REPEAT:-5}"
# run KEY CMD...: the fastest wall time of the runs counts (see bench.sh), and the
# least CPU time (user + system, all threads): on this shared machine wall times move
# by 2x from minute to minute, the CPU a job needs much less.
run() {
  local key=$1; shift
  sync
  local TIMEFORMAT='%R %U %S' t wall u s
  { t=$( { time "$@" >&3 2>"$W/stderr"; } 2>&1 ) || { cat "$W/stderr"; exit 1; }; } 3>&1
  read -r wall u s <<<"$t"
  local cpu; cpu=$(python3 -c "print(f'{$u + $s:.2f}')")
  if [[ -z "${T[$key]:-}" ]] || python3 -c "import sys; sys.exit(0 if $wall < ${T[$key]} else 1)"; then
    T[$key]=$wall
  fi
  if [[ -z "${C[$key]:-}" ]] || python3 -c "import sys; sys.exit(0 if $cpu < ${C[$key]} else 1)"; then
    C[$key]=$cpu
  fi
}
# The report line of a --json restore, and the stats of an image's manifest.
restore_bytes() { python3 -c "
import json, sys
r = [json.loads(l) for l in open('$1') if l.startswith('{')][-1]['report']
print(r['bytes_written'], r['bytes_verified'])"; }
read_bytes() { "$BIN" images "$1" --json | python3 -c "
import json, sys; print([i for i in json.load(sys.stdin)['images'] if i['name'] == 'first'][0]['stats']['bytes_read'])"; }

declare -A IMG=([small]="$B/ext4.img" [big]="$B/ext4-2t.img")
cat "$B/ext4.img" >/dev/null
for _ in $(seq "$REPEAT"); do
  for k in small big; do
    rm -rf "$W/repo.$k"
    run b_$k "$BIN" backup "${IMG[$k]}" "$W/repo.$k" --name first >/dev/null
    N[read_$k]=$(read_bytes "$W/repo.$k")
    truncate -s "$(stat -c %s "${IMG[$k]}")" "$W/out.$k"
    run r_$k "$BIN" restore "$W/repo.$k" first "$W/out.$k" --yes --json >"$W/restore.$k.json"
    N[rest_$k]=$(restore_bytes "$W/restore.$k.json")
    rm -f "$W/out.$k"
  done
  run e2image e2image -ra "$B/ext4-2t.img" "$W/e2image.out" >/dev/null
  N[e2image]=$(du -B1 "$W/e2image.out" | cut -f1)
  rm -f "$W/e2image.out"
done

ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }
echo
echo "2 TB ext4 against the 4 GiB one, same files (fastest of $REPEAT; cpu = user + sys)"
row "job" "seconds" "cpu s" "bytes" "wall, cpu"
row "----------------------------------------" "-------" "-----" "-----" "---------"
line() { # line LABEL KEY BYTES [BASE-KEY SUFFIX]
  local r=""
  [[ -n "${4:-}" ]] && r="$(ratio "${T[$2]}" "${T[$4]}"), $(ratio "${C[$2]}" "${C[$4]}")$5"
  row "$1" "${T[$2]}" "${C[$2]}" "$3" "$r"
}
line "backup 4 GiB ext4 (bytes read)" b_small "${N[read_small]}"
line "backup 2 TB ext4 (bytes read)" b_big "${N[read_big]}" b_small " of 4 GiB"
line "e2image -ra 2 TB (bytes allocated)" e2image "${N[e2image]}" b_big " of ours"
read -r w v <<<"${N[rest_small]}" || true
line "restore 4 GiB (written/verified)" r_small "$w/$v"
read -r w v <<<"${N[rest_big]}" || true
line "restore 2 TB (written/verified)" r_big "$w/$v" r_small " of 4 GiB"
