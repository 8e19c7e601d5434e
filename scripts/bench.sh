#!/usr/bin/env bash
# `make bench`: ironclone against partclone / ntfsclone piped through zstd, on the same
# 4 GiB ext4 and NTFS fixtures holding ~1.5 GiB of real files (scripts/bench-fixtures.sh).
# Prints one table with times, sizes and ratios. Page cache is warmed first so every
# tool reads from memory and the comparison is of the pipelines, not the disk.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${IRONCLONE:-$ROOT/target/x86_64-unknown-linux-musl/release/ironclone}"
B="$ROOT/build/bench"
W="$(mktemp -d "${TMPDIR:-/tmp}/ironclone-bench.XXXXXX")"
trap 'rm -rf "$W"' EXIT
bash "$ROOT/scripts/bench-fixtures.sh" >/dev/null

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
size() { du -sb --apparent-size "$1" | cut -f1; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }
row() { printf '%-34s %10s %12s %10s\n' "$@"; }

declare -A T S
run() { # run KEY CMD...: time a command, store seconds in T[KEY]
  local key=$1; shift
  # Each job starts with nothing left to write back from the one before: otherwise
  # the previous job's dirty pages are flushed on the next job's clock.
  sync
  local s e; s=$(now); "$@"; e=$(now); T[$key]=$(secs "$s" "$e")
}

cat "$B/ext4.img" "$B/ntfs.img" >/dev/null

for fs in ext4 ntfs; do
  img="$B/$fs.img"
  # --- peers -------------------------------------------------------------------
  if [[ $fs == ext4 ]]; then
    run peer_b_$fs sh -c "partclone.extfs -c -s '$img' -o - 2>/dev/null | zstd -T0 -3 -q > '$W/peer.$fs.zst'"
    S[peer_$fs]=$(size "$W/peer.$fs.zst")
    truncate -s 4G "$W/peer.$fs.out"
    run peer_r_$fs sh -c "zstd -d -q -c '$W/peer.$fs.zst' | partclone.extfs -r -s - -O '$W/peer.$fs.out' >/dev/null 2>&1"
  else
    run peer_b_$fs sh -c "ntfsclone -s -o - '$img' 2>/dev/null | zstd -T0 -3 -q > '$W/peer.$fs.zst'"
    S[peer_$fs]=$(size "$W/peer.$fs.zst")
    truncate -s 4G "$W/peer.$fs.out"
    run peer_r_$fs sh -c "zstd -d -q -c '$W/peer.$fs.zst' | ntfsclone -r -O '$W/peer.$fs.out' - >/dev/null 2>&1"
  fi
  rm -f "$W/peer.$fs.out"
  # --- ironclone ---------------------------------------------------------------
  run map_$fs "$BIN" inspect --json "$img" >/dev/null
  run ic_b_$fs "$BIN" backup "$img" "$W/repo.$fs" --name first >/dev/null
  S[ic_$fs]=$(size "$W/repo.$fs")
  run ic_b2_$fs "$BIN" backup "$img" "$W/repo.$fs" --name second >/dev/null
  S[ic2_$fs]=$(( $(size "$W/repo.$fs") - S[ic_$fs] ))
  truncate -s 4G "$W/ic.$fs.out"
  run ic_r_$fs "$BIN" restore "$W/repo.$fs" first "$W/ic.$fs.out" --yes --no-verify >/dev/null
  rm -f "$W/ic.$fs.out"
done

echo
row "job (4 GiB fs, ~1.5 GiB used)" "seconds" "bytes" "vs peer"
row "----------------------------------" "-------" "-----" "-------"
for fs in ext4 ntfs; do
  peer=$([[ $fs == ext4 ]] && echo "partclone.extfs|zstd -3" || echo "ntfsclone|zstd -3")
  row "$fs map (inspect, metadata only)" "${T[map_$fs]}" "" ""
  row "$fs backup: $peer" "${T[peer_b_$fs]}" "${S[peer_$fs]}" ""
  row "$fs backup: ironclone" "${T[ic_b_$fs]}" "${S[ic_$fs]}" "$(ratio "${T[peer_b_$fs]}" "${T[ic_b_$fs]}") faster"
  row "$fs image size ironclone/peer" "" "" "$(python3 -c "print(f'{${S[ic_$fs]}/${S[peer_$fs]}:.3f}')")"
  row "$fs second backup (unchanged)" "${T[ic_b2_$fs]}" "${S[ic2_$fs]}" "$(python3 -c "print(f'{100*${S[ic2_$fs]}/${S[ic_$fs]}:.2f}% new')")"
  row "$fs restore: peer" "${T[peer_r_$fs]}" "" ""
  row "$fs restore: ironclone" "${T[ic_r_$fs]}" "" "$(ratio "${T[peer_r_$fs]}" "${T[ic_r_$fs]}") faster"
done
