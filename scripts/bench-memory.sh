#!/usr/bin/env bash
# Backup, restore, verify and prune peak memory against the number of chunks (issue 20: "memory stays
# under 200 MB for a 1 TB source"). Peak RSS (GNU time's "Maximum resident set size") of
# `backup` of synthetic raw images of two sizes, each image first into a new repository
# and then again into the same one (then every chunk is already known, the index is
# full), and of the restore of the first image (with its read-back verify, checked
# against the source with cmp); plaintext and --encrypt. The line through the two largest sizes
# gives the bytes per chunk and the fixed part; the 1 TB figure is that line at
# 4 Mi chunks (1 TiB of 256 KiB file chunks) and at 16 Mi (1 TiB of 64 KiB chunks).
# A restore, and a verify of one image, take at most 4 Mi chunks per pass
# (src/repo/restore_passes.rs), so their 1 TB figures are the line at min(chunks,
# 4 Mi); the rows "in passes" show the bound: the same jobs in passes of 256 Ki chunks
# (IRONCLONE_RESTORE_PASS_CHUNKS), 4 and 8 passes at the two sizes, whose line is flat.
#
# What a backup holds per chunk does not depend on the chunk's size, so the new
# repositories get 4 KiB chunks (IRONCLONE_CHUNKING, docs/FORMAT.md): 16x as many chunks
# per byte read as the 64 KiB default, the slope is measured on 1 Mi chunks.
# The images are random bytes (incompressible, as the issue asks; compressible data
# would put a whole backup's chunks in one pack and measure the pack's index entries,
# which a real pack bounds at 128 MiB of stored data).
# RSS does not depend on the machine's load; the time does, and is not reported. The
# fixed part does, a little: the pipeline's buffers (at most `PIPELINE_BUDGET`, 48 MiB)
# are added as the queues first fill up together, in steps over several seconds, later
# in a slower (encrypted, loaded) pipeline. A second backup, which compresses nothing,
# runs a 1 GiB source in under a second, before that: a line through 1 and 4 GiB
# measured the steps (31 B/chunk for a second backup, against 8.8 between 4 and 8 GiB),
# not what is held per chunk (docs/BENCH.md, "Branch mem" and "Chunk tables of 7.5
# bytes"). Hence 4 and 8 GiB (1 and 2 Mi chunks).
#
# An encrypted first backup wraps its key slot (Argon2id, 64 MiB by default) on a thread
# of its own while the pipeline starts: a fixed phase of about 150 MiB that is the peak
# of every size measurable here, so a line through two such peaks measures noise (it
# gave 45 B/chunk). The encrypted line is therefore measured with a small key slot
# (IRONCLONE_KDF=1024,1,1: what the pipeline holds per chunk), the key-slot phase once
# with the default parameters on the smallest image, and the 1 TB figure is the larger
# of the two: the phase ends within the first second, before the per-chunk tables grow.
#
# BENCH_MEM_STORE=s3 backs up to an S3 repository instead: a SeaweedFS cluster started
# here on 127.0.0.1 (master, volume server, filer, S3 gateway; data in the temp dir), as
# scripts/bench-s3.sh does. There a backup holds its packs in memory until each is put
# (4 of 32 MiB by default, a fixed cost that would hide the per-chunk slope at these
# sizes), so this mode closes packs at BENCH_MEM_S3_PACK_MIB (8) and puts one at a time
# (IRONCLONE_REMOTE_PACK_MIB, IRONCLONE_REMOTE_PUTS); the default packs add at most
# 4 x 32 - 2 x 8 = 112 MiB to the fixed part, not to the slope.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${IRONCLONE:-$ROOT/target/x86_64-unknown-linux-musl/release/ironclone}"
read -r -a SIZES <<<"${BENCH_MEM_SIZES:-4096 8192}" # MiB
STORE="${BENCH_MEM_STORE:-local}"
W="$(mktemp -d "${TMPDIR:-/tmp}/ironclone-bench-mem.XXXXXX")"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

source "$ROOT/scripts/lib-weed.sh"
REPO_ARGS=()
case $STORE in
local) ;;
s3)
  weed_cluster 1 64
  export IRONCLONE_REMOTE_PACK_MIB="${BENCH_MEM_S3_PACK_MIB:-8}" IRONCLONE_REMOTE_PUTS=1
  REPO_ARGS=(--s3-path-style)
  ;;
*)
  echo "BENCH_MEM_STORE is local or s3, not $STORE" >&2
  exit 2
  ;;
esac

mkimg() { # mkimg PATH MIB: random bytes, each 4 KiB block numbered (all distinct)
  python3 - "$1" "$2" <<'PY'
import os, sys
path, mib = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    for m in range(mib):
        buf = bytearray(os.urandom(1 << 20))
        for b in range(256):
            buf[b * 4096 : b * 4096 + 16] = b"IC%014d" % (m * 256 + b)
        f.write(buf)
PY
}
rss() { # rss CMD...: peak RSS in KiB of CMD
  /usr/bin/time -f '%M' -o "$W/time" "$@" >/dev/null 2>"$W/err" || {
    cat "$W/err" >&2
    return 1
  }
  tail -n 1 "$W/time"
}
export IRONCLONE_PASSWORD=bench-memory IRONCLONE_CHUNKING=4096,4096
declare -A RSS N SUM
for mib in "${SIZES[@]}"; do
  img="$W/src-$mib.img"
  mkimg "$img" "$mib"
  for mode in plain enc; do
    repo="$W/repo-$mode-$mib"
    [[ $STORE == s3 ]] && repo="s3://bench/$mode-$mib"
    args=("${REPO_ARGS[@]}")
    [[ $mode == enc ]] && args+=(--encrypt)
    N[$mode,$mib]=$((mib * 256))
    kdf=()
    [[ $mode == enc ]] && kdf=(env "IRONCLONE_KDF=1024,1,1")
    RSS[$mode,first,$mib]=$(rss "${kdf[@]}" "$BIN" backup "$img" "$repo" --name first "${args[@]}")
    RSS[$mode,second,$mib]=$(rss "$BIN" backup "$img" "$repo" --name second "${REPO_ARGS[@]}")
    # A restore of the first image (read-back verify included) onto a sparse file,
    # compared with the source by checksum: the source, the repository and the restored
    # copy of the largest size together would need 3 x 8 GiB of disk.
    truncate -s "${mib}M" "$W/out.img"
    [[ -n ${SUM[$mib]:-} ]] || SUM[$mib]=$(sha256sum <"$img")
    # (The smallest image is backed up once more below, for the key-slot phase.)
    [[ $mode == enc && $mib != "${SIZES[0]}" ]] && rm -f "$img"
    RSS[$mode,restore,$mib]=$(rss "$BIN" restore "$repo" first "$W/out.img" --yes "${REPO_ARGS[@]}")
    [[ $(sha256sum <"$W/out.img") == "${SUM[$mib]}" ]] || {
      echo "the restore of $mode-$mib differs from its source" >&2
      exit 1
    }
    truncate -s 0 "$W/out.img"
    truncate -s "${mib}M" "$W/out.img"
    RSS[$mode,passes,$mib]=$(rss env IRONCLONE_RESTORE_PASS_CHUNKS=262144 "$BIN" restore "$repo" first "$W/out.img" --yes "${REPO_ARGS[@]}")
    [[ $(sha256sum <"$W/out.img") == "${SUM[$mib]}" ]] || {
      echo "the restore in passes of $mode-$mib differs from its source" >&2
      exit 1
    }
    rm -f "$W/out.img"
    # verify of the first image (every pack read) and prune (nothing to delete: both
    # images use every chunk), each reading the manifests as a stream.
    RSS[$mode,verify,$mib]=$(rss "$BIN" verify "$repo" first "${REPO_ARGS[@]}")
    RSS[$mode,vpasses,$mib]=$(rss env IRONCLONE_RESTORE_PASS_CHUNKS=262144 "$BIN" verify "$repo" first "${REPO_ARGS[@]}")
    RSS[$mode,prune,$mib]=$(rss "$BIN" prune "$repo" "${REPO_ARGS[@]}")
    [[ $STORE == local ]] && rm -rf "$repo"
    if [[ $mode == enc && $mib == "${SIZES[0]}" ]]; then
      # The key-slot phase: the default Argon2id beside the pipeline's start.
      repo="$W/repo-kdf"
      [[ $STORE == s3 ]] && repo="s3://bench/kdf"
      KDF_PEAK=$(rss "$BIN" backup "$img" "$repo" --name first "${args[@]}")
      [[ $STORE == local ]] && rm -rf "$repo"
    fi
  done
  rm -f "$img"
done

row() { printf '%-44s %12s %12s %14s %14s\n' "$@"; }
echo
echo "backup, restore, verify and prune peak RSS against chunks ($STORE repository; sizes ${SIZES[*]} MiB; 4 KiB chunks)"
row "job" "fixed MiB" "B/chunk" "1 TB@256K MiB" "1 TB@64K MiB"
row "---" "---------" "-------" "-------------" "------------"
for mode in plain enc; do
  for run in first second restore passes verify vpasses prune; do
    pts=()
    for mib in "${SIZES[@]}"; do pts+=("${N[$mode,$mib]}:${RSS[$mode,$run,$mib]}"); done
    floor=0
    [[ $mode == enc && $run == first ]] && floor=$KDF_PEAK
    cap=0 # the most chunks held at once (0: all)
    [[ $run == restore || $run == verify ]] && cap=$((4 << 20))
    [[ $run == passes || $run == vpasses ]] && cap=262144
    read -r fixed slope tb256 tb64 <<<"$(python3 - "$floor" "$cap" "${pts[@]}" <<'PY'
import sys
floor = float(sys.argv[1]) / 1024  # MiB: a fixed phase's peak (the key slot's)
cap = int(sys.argv[2]) or 1 << 62
pts = [tuple(map(float, p.split(":"))) for p in sys.argv[3:]]
# The line through the two largest sources: below some size the peak is a fixed
# phase's (the key slot's Argon2id, the pack buffers) and does not grow at all.
(x0, y0), (x1, y1) = pts[-2], pts[-1]
slope = (y1 - y0) * 1024 / (x1 - x0)
fixed = y1 * 1024 - slope * x1
mib = lambda chunks: max(floor, (fixed + slope * min(chunks, cap)) / 2**20)
print(f"{fixed / 2**20:.1f} {slope:.0f} {mib(4 * 2**20):.0f} {mib(16 * 2**20):.0f}")
PY
)"
    job="$run backup"
    [[ $run == restore ]] && job="restore of the first"
    [[ $run == passes ]] && job="restore in passes of 256 Ki chunks"
    [[ $run == verify ]] && job="verify of the first"
    [[ $run == vpasses ]] && job="verify in passes of 256 Ki chunks"
    [[ $run == prune ]] && job="prune (nothing to delete)"
    row "$mode, $job" "$fixed" "$slope" "$tb256" "$tb64"
    echo "  (chunks:KiB ${pts[*]})"
    [[ $floor != 0 ]] && echo "  (key-slot phase, default Argon2id, ${SIZES[0]} MiB image: $floor KiB; the 1 TB figures are at least that)"
    echo "peak RSS, extrapolated to 1 TB used ($mode, $job): ${tb256} MiB at 256 KiB chunks, ${tb64} MiB at 64 KiB" >>"$W/summary"
  done
done
echo
echo "($STORE repository)"
cat "$W/summary"
