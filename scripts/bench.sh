#!/usr/bin/env bash
# `make bench`: ironclone against partclone / ntfsclone piped through zstd, on the same
# 4 GiB ext4, NTFS, XFS and btrfs fixtures holding ~1.5 GiB of real files
# (scripts/bench-fixtures.sh).
# Prints one table with times, sizes and ratios. Page cache is warmed first so every
# tool reads from memory and the comparison is of the pipelines, not the disk. Then
# scripts/bench-big.sh: a 2 TB ext4 holding the same files against the 4 GiB one; and
# scripts/bench-dedup.sh: what a day of use and a second machine add, against restic
# and borg (issue 19); scripts/bench-s3.sh: S3 against a local directory (issue 20).
# The table ends with scripts/bench-memory.sh's backup and restore peak RSS extrapolated
# to 1 TB.
# BENCH_ONLY_MAIN=1 skips those three (they take longer than the table).
# BENCH_FS="xfs btrfs" limits the table to some of ext4 ntfs xfs btrfs (default: all).
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
row() { printf '%-40s %10s %12s %14s\n' "$@"; }

declare -A T S
# This machine shares its CPUs: the same job's time varies by 20-40% from minute to
# minute. Every job runs BENCH_REPEAT times, interleaved with its peers, and the fastest
# run of each counts (the least disturbed one), so noise hits both sides alike.
REPEAT="${BENCH_REPEAT:-5}"
read -r -a FSES <<<"${BENCH_FS:-ext4 ntfs xfs btrfs}"
run() { # run KEY CMD...: time a command, keep the fastest seconds in T[KEY]
  local key=$1; shift
  # Each job starts with nothing left to write back from the one before: otherwise
  # the previous job's dirty pages are flushed on the next job's clock.
  sync
  local s e t; s=$(now); "$@"; e=$(now); t=$(secs "$s" "$e")
  if [[ -z "${T[$key]:-}" ]] || python3 -c "import sys; sys.exit(0 if $t < ${T[$key]} else 1)"; then
    T[$key]=$t
  fi
}

for fs in "${FSES[@]}"; do cat "$B/$fs.img" >/dev/null; done

# The peers: partclone.<fs> is what issue 4's targets name; for NTFS, ntfsclone is the
# faster peer (no per-block CRC, no 2 s sleeps) and is measured too.
peers_of() {
  case $1 in
  ext4) echo "partclone.extfs" ;;
  ntfs) echo "partclone.ntfs ntfsclone" ;;
  *) echo "partclone.$1" ;;
  esac
}
peer_backup() { # peer_backup TOOL IMG OUT
  case $1 in
  ntfsclone) sh -c "ntfsclone -s -o - '$2' 2>/dev/null | zstd -T0 -3 -q > '$3'" ;;
  *) sh -c "$1 -c -s '$2' -o - 2>/dev/null | zstd -T0 -3 -q > '$3'" ;;
  esac
}
peer_restore() { # peer_restore TOOL ZST OUT
  case $1 in
  ntfsclone) sh -c "zstd -d -q -c '$2' | ntfsclone -r -O '$3' - >/dev/null 2>&1" ;;
  *) sh -c "zstd -d -q -c '$2' | $1 -r -s - -O '$3' >/dev/null 2>&1" ;;
  esac
}

for fs in "${FSES[@]}"; do
  img="$B/$fs.img"
  for _ in $(seq "$REPEAT"); do
    # --- peers -----------------------------------------------------------------
    for p in $(peers_of "$fs"); do
      run "peer_b_$p" peer_backup "$p" "$img" "$W/$p.zst"
      S[peer_$p]=$(size "$W/$p.zst")
      truncate -s 4G "$W/$p.out"
      run "peer_r_$p" peer_restore "$p" "$W/$p.zst" "$W/$p.out"
      rm -f "$W/$p.out" "$W/$p.zst"
    done
    # --- ironclone -------------------------------------------------------------
    rm -rf "$W/repo.$fs"
    run "map_$fs" "$BIN" inspect --json "$img" >/dev/null
    run "ic_b_$fs" "$BIN" backup "$img" "$W/repo.$fs" --name first >/dev/null
    S[ic_$fs]=$(size "$W/repo.$fs")
    truncate -s 4G "$W/ic.$fs.out"
    run "ic_r_$fs" "$BIN" restore "$W/repo.$fs" first "$W/ic.$fs.out" --yes --no-verify >/dev/null
    rm -f "$W/ic.$fs.out"
    # The same backup into an encrypted repository (docs/FORMAT.md, "Encryption"); the
    # key slot's Argon2id (64 MiB, 3 passes) is part of its time, as for a user.
    rm -rf "$W/repo-enc.$fs"
    run "ic_be_$fs" env IRONCLONE_PASSWORD=bench "$BIN" backup "$img" "$W/repo-enc.$fs" --encrypt --name first >/dev/null
    S[ice_$fs]=$(size "$W/repo-enc.$fs")
    rm -rf "$W/repo-enc.$fs"
  done
  run "ic_b2_$fs" "$BIN" backup "$img" "$W/repo.$fs" --name second >/dev/null
  after=$(size "$W/repo.$fs")
  S[ic2_$fs]=$((after - ${S[ic_$fs]}))
done

# Backup peak RSS against the number of chunks, extrapolated to 1 TB (issue 20).
IRONCLONE="$BIN" bash "$ROOT/scripts/bench-memory.sh" >"$W/memory.txt"

echo
echo "fastest of $REPEAT runs each (BENCH_REPEAT), jobs interleaved"
row "job (4 GiB fs, ~1.5 GiB used)" "seconds" "bytes" "vs peer"
row "----------------------------------------" "-------" "-----" "-------"
for fs in "${FSES[@]}"; do
  row "$fs map (inspect, metadata only)" "${T[map_$fs]}" "" ""
  row "$fs backup: ironclone" "${T[ic_b_$fs]}" "${S[ic_$fs]}" ""
  row "$fs backup: ironclone --encrypt" "${T[ic_be_$fs]}" "${S[ice_$fs]}" "$(ratio "${T[ic_b_$fs]}" "${T[ic_be_$fs]}") speed"
  for p in $(peers_of "$fs"); do
    row "$fs backup: $p|zstd -3" "${T[peer_b_$p]}" "${S[peer_$p]}" "$(ratio "${T[peer_b_$p]}" "${T[ic_b_$fs]}") faster"
    row "$fs image size ironclone/$p" "" "" "$(python3 -c "print(f'{${S[ic_$fs]}/${S[peer_$p]}:.3f}')")"
  done
  row "$fs second backup (unchanged)" "${T[ic_b2_$fs]}" "${S[ic2_$fs]}" "$(python3 -c "print(f'{100*${S[ic2_$fs]}/${S[ic_$fs]}:.2f}% new')")"
  row "$fs restore: ironclone" "${T[ic_r_$fs]}" "" ""
  for p in $(peers_of "$fs"); do
    row "$fs restore: zstd -d|$p -r" "${T[peer_r_$p]}" "" "$(ratio "${T[peer_r_$p]}" "${T[ic_r_$fs]}") faster"
  done
done

# One row per repository kind; the fit and its points are in scripts/bench-memory.sh.
while IFS='|' read -r job at256 at64; do
  row "peak RSS, extrapolated to 1 TB used ($job)" "" "" "${at256} MiB @256K, ${at64} MiB @64K"
done < <(sed -n 's/^peak RSS, extrapolated to 1 TB used (\([a-z ,]*\)): \([-0-9]*\) MiB at 256 KiB chunks, \([-0-9]*\) MiB.*/\1|\2|\3/p' "$W/memory.txt")

[[ ${BENCH_ONLY_MAIN:-0} == 1 ]] && exit 0

# A 2 TB ext4 with the same files as the 4 GiB one (issue 16 item 6).
bash "$ROOT/scripts/bench-big.sh"

# What a day of use and a second machine holding the same files add (issue 19).
IRONCLONE="$BIN" bash "$ROOT/scripts/bench-dedup.sh"

# Clonezilla images: restore against zstd -d | partclone -r, import against backup (issue 21).
IRONCLONE="$BIN" bash "$ROOT/scripts/bench-clonezilla.sh"

# Backup to and restore from a local S3 cluster against a local directory (issue 20).
IRONCLONE="$BIN" bash "$ROOT/scripts/bench-s3.sh" 2>/dev/null
