#!/usr/bin/env bash
# Backup to and restore from S3 (a local SeaweedFS cluster: master, two volume servers,
# filer, S3 gateway, all on 127.0.0.1 with data in a temp dir) against the same jobs on
# a local directory, on the 4 GiB ext4 bench fixture (scripts/bench-fixtures.sh).
# Issue 20's targets: S3 backup and restore each at least 0.8x the local speed.
# Prints seconds and peak RSS (GNU time) per job; fastest of BENCH_REPEAT runs (3).
# Also the CPU seconds (user + system) of ironclone and of the SeaweedFS processes in
# that fastest run: the store runs on the same cores, and on a 2-core machine its CPU
# decides whether the client could go faster at all; so a second round pins the client
# to one core and the store to another (needs 2 cores).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${IRONCLONE:-$ROOT/target/x86_64-unknown-linux-musl/release/ironclone}"
IMG="${BENCH_IMG:-$ROOT/build/bench/ext4.img}"
REPEAT="${BENCH_REPEAT:-3}"
W="$(mktemp -d "${TMPDIR:-/tmp}/ironclone-bench-s3.XXXXXX")"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  # The filer can take its time over SIGTERM; nothing of it is kept anyway.
  sleep 1
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
[[ -f $IMG ]] || bash "$ROOT/scripts/bench-fixtures.sh" >/dev/null

source "$ROOT/scripts/lib-weed.sh"
weed_cluster 2 32
S3ARGS=(--s3-path-style)

# store_ticks: clock ticks of CPU (user + system) the SeaweedFS servers have used so far.
store_ticks() {
  local p sum=0 f
  for p in "${PIDS[@]}"; do
    # Fields 14 and 15 of /proc/PID/stat; the command name (field 2) has no spaces here.
    f=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
    sum=$((sum + ${f% *} + ${f#* }))
  done
  echo "$sum"
}
HZ=$(getconf CLK_TCK)
declare -A T R C S
run() { # run KEY CMD...: fastest seconds in T[KEY]; its peak RSS (KiB) in R[KEY], CPU s in C, store CPU s in S
  local key=$1; shift
  sync
  local before after
  before=$(store_ticks)
  /usr/bin/time -f '%e %M %U %S' -o "$W/time" "$@" >/dev/null
  after=$(store_ticks)
  read -r t rss u s <"$W/time"
  if [[ -z "${T[$key]:-}" ]] || python3 -c "import sys; sys.exit(0 if $t < ${T[$key]} else 1)"; then
    T[$key]=$t; R[$key]=$rss
    C[$key]=$(python3 -c "print(f'{$u + $s:.2f}')")
    S[$key]=$(python3 -c "print(f'{($after - $before) / $HZ:.2f}')")
  fi
}

# pin_store CPUS: move every thread of the SeaweedFS servers onto CPUS.
pin_store() {
  local p
  for p in "${PIDS[@]}"; do taskset -a -p -c "$1" "$p" >/dev/null; done
}
# round PREFIX CLIENT...: every job BENCH_REPEAT times, the client run through CLIENT.
round() {
  local k=$1 i; shift
  for i in $(seq "$REPEAT"); do
    rm -rf "$W/repo"
    run "${k}local_b" "$@" "$BIN" backup "$IMG" "$W/repo" --name first
    run "${k}s3_b" "$@" "$BIN" backup "$IMG" "s3://bench/$k$i" --name first "${S3ARGS[@]}"
    truncate -s 4G "$W/out"
    run "${k}local_r" "$@" "$BIN" restore "$W/repo" first "$W/out" --yes --no-verify
    rm -f "$W/out"; truncate -s 4G "$W/out"
    run "${k}s3_r" "$@" "$BIN" restore "s3://bench/$k$i" first "$W/out" --yes --no-verify "${S3ARGS[@]}"
    rm -f "$W/out"
  done
}
row() { printf '%-40s %10s %12s %10s %8s %10s\n' "$@"; }
table() { # table PREFIX TITLE
  local k=$1 j name lr sr
  echo
  echo "$2"
  row "job" "seconds" "peak RSS MiB" "vs local" "cpu s" "store cpu s"
  for j in b r; do
    name=$([[ $j == b ]] && echo backup || echo restore)
    lr=${R[${k}local_$j]}; sr=${R[${k}s3_$j]}
    row "$name: local directory" "${T[${k}local_$j]}" "$((lr / 1024))" "" "${C[${k}local_$j]}" ""
    row "$name: s3://" "${T[${k}s3_$j]}" "$((sr / 1024))" \
      "$(python3 -c "print(f'{${T[${k}local_$j]} / ${T[${k}s3_$j]}:.2f}x')")" "${C[${k}s3_$j]}" "${S[${k}s3_$j]}"
  done
}

cat "$IMG" >/dev/null
# Round 1: everything shares the machine's cores, as on a laptop backing up to a store on
# itself. Round 2 models the store on its own host: ironclone on CPU 0 (for the local
# jobs too, so both sides of the ratio have one core), SeaweedFS on CPU 1.
round shared
pin_store 1
round pinned taskset -c 0
pin_store "0-$(($(nproc) - 1))"
table shared "S3 (local SeaweedFS cluster) vs local directory, ext4 4 GiB (~1.5 GiB used), fastest of $REPEAT"
table pinned "The same, ironclone on CPU 0 and SeaweedFS on CPU 1 (the store on its own host)"
