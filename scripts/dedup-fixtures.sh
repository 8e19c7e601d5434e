#!/usr/bin/env bash
# The fixtures of issue 19's dedup measurements, for ext4 and NTFS (plain filesystem
# images, sparse files), built once and cached:
#   A  "first": a fresh filesystem filled with real files from /usr (sorted paths until
#      the budget), written through a loop mount (ext4) or ntfs-3g (NTFS);
#   B  "day of use": a copy of A after scripts/dedup_day.py (appends, edits, deletes,
#      new files; seeded);
#   C  "second machine": a fresh filesystem of the same size holding A's files copied in
#      a seeded shuffled order (folders created in another order too), so that files lie
#      elsewhere than in A, as on another install. (Reversed order was tried first: on
#      ext4, ironclone v1's fixed 8 MiB grid still found 60% of A's chunks in it.)
# And the reference figures each goal is measured against, in <fs>.ref (key=bytes lines):
# changed_raw (4 KiB blocks that differ between A and B), changed_zstd (those blocks of B
# concatenated, through zstd -3) and partclone_zstd (partclone.<fs> -c of A | zstd -T0 -3).
#
# Usage: dedup-fixtures.sh [FS_SIZE [DATA_MB]]   (defaults 3G and 881, the issue's figures)
# DEDUP_FS picks the filesystems (default "ext4 ntfs"). The day of use scales with DATA_MB
# (300 appends, 100 edits, 100 deletes and 40 MiB of new files at 881). Prints the output
# folder, build/dedup/<FS_SIZE>-<DATA_MB>MB-<hash of the scripts>/, holding
# <fs>-{a,b,c}.img and <fs>.ref. Progress goes to stderr.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SIZE="${1:-3G}"
DATA_MB="${2:-881}"
FSES="${DEDUP_FS:-ext4 ntfs}"
BASE="$ROOT/build/dedup"
# The cache is keyed on the scripts that make it: a changed day of use rebuilds.
STAMP=$(cat "$0" "$ROOT/scripts/dedup_day.py" | sha256sum | cut -c1-8)
OUT="$BASE/$SIZE-${DATA_MB}MB-$STAMP"
DATA="$BASE/data-${DATA_MB}MB"
mkdir -p "$BASE"
# A test and `make bench` may ask for the same fixtures at once (and should not wait for
# each other's when they differ).
exec 9>"$BASE/$SIZE-${DATA_MB}MB.lock"
flock 9
for old in "$BASE/$SIZE-${DATA_MB}MB-"*; do
  if [[ -e $old && $old != "$OUT" ]]; then rm -rf "$old"; fi
done
mkdir -p "$OUT"
log() { echo "dedup-fixtures: $*" >&2; }

if [[ ! -f "$DATA.done" ]]; then
  log "copying ${DATA_MB} MB of files from /usr"
  rm -rf "$DATA"
  mkdir -p "$DATA"
  # Regular files in sorted path order, each one that still fits the budget, hard links
  # once (tar stores them once).
  python3 - "$((DATA_MB * 1000000))" >"$DATA.list" <<'PY'
import os, stat, sys
budget, seen = int(sys.argv[1]), set()
for d, dirs, names in os.walk("/usr"):
    dirs.sort()
    for name in sorted(names):
        st = os.lstat(os.path.join(d, name))
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0 or (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        if st.st_size <= budget and "\n" not in name:
            budget -= st.st_size
            print(os.path.relpath(os.path.join(d, name), "/usr"))
PY
  tar -C /usr -cf - -T "$DATA.list" | tar -C "$DATA" -xf -
  touch "$DATA.done"
fi

MNT=""
FUSE_PID=""
cleanup() {
  if [[ -n $MNT ]]; then
    umount "$MNT" 2>/dev/null || true
    rmdir "$MNT" 2>/dev/null || true
  fi
}
trap cleanup EXIT

mkfs_img() { # mkfs_img FS IMG
  truncate -s "$SIZE" "$2"
  case $1 in
  ext4) mkfs.ext4 -q -F -b 4096 -L dedup "$2" ;;
  ntfs) mkntfs -q -Q -F -L dedup "$2" >"$OUT/mkntfs.log" 2>&1 || { cat "$OUT/mkntfs.log" >&2; exit 1; } ;;
  esac
}
mount_img() { # mount_img FS IMG
  MNT="$(mktemp -d "${TMPDIR:-/tmp}/ironclone-dedup.XXXXXX")"
  case $1 in
  ext4) mount -o loop "$2" "$MNT" ;;
  ntfs)
    # In the foreground (no_detach) so that unmount_img can wait until ntfs-3g has
    # closed the volume: umount returns before a FUSE daemon has written everything.
    ntfs-3g -o no_detach "$2" "$MNT" >"$OUT/ntfs-3g.log" 2>&1 &
    FUSE_PID=$!
    for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
    mountpoint -q "$MNT" || { cat "$OUT/ntfs-3g.log" >&2; exit 1; }
    ;;
  esac
}
unmount_img() {
  sync
  umount "$MNT"
  if [[ -n $FUSE_PID ]]; then wait "$FUSE_PID"; FUSE_PID=""; fi
  rmdir "$MNT"
  MNT=""
}
fill() { # fill FS IMG LIST: a fresh filesystem holding the files of LIST, in its order
  mkfs_img "$1" "$2"
  mount_img "$1" "$2"
  # NTFS through ntfs-3g keeps no Unix owners or modes; ext4 keeps them.
  local keep=()
  [[ $1 == ntfs ]] && keep=(--no-same-owner --no-same-permissions)
  tar -C "$DATA" -cf - --no-recursion -T "$3" | tar -C "$MNT" "${keep[@]}" -xf -
  unmount_img
}

scale=$(python3 -c "print($DATA_MB / 881)")
for fs in $FSES; do
  a="$OUT/$fs-a.img" b="$OUT/$fs-b.img" c="$OUT/$fs-c.img"
  if [[ ! -f $a ]]; then
    log "$fs A: ${DATA_MB} MB of files, sorted, on a fresh $SIZE filesystem"
    fill "$fs" "$a.tmp" "$DATA.list"
    mv "$a.tmp" "$a"
  fi
  if [[ ! -f $b ]]; then
    log "$fs B: A after a day of use (scale $scale)"
    cp --sparse=always "$a" "$b.tmp"
    mount_img "$fs" "$b.tmp"
    python3 "$ROOT/scripts/dedup_day.py" "$MNT" "$scale"
    unmount_img
    mv "$b.tmp" "$b"
  fi
  if [[ ! -f $c ]]; then
    log "$fs C: A's files in another order on another fresh filesystem"
    python3 -c 'import random, sys; l = sys.stdin.readlines(); random.Random(19).shuffle(l); print("".join(l), end="")' \
      <"$DATA.list" >"$OUT/shuffled.list"
    fill "$fs" "$c.tmp" "$OUT/shuffled.list"
    mv "$c.tmp" "$c"
  fi
  if [[ ! -f $OUT/$fs.ref ]]; then
    log "$fs: reference figures"
    changed_zstd=$(python3 - "$a" "$b" "$OUT/changed_raw" <<'PY' | zstd -3 -q -c | wc -c
import sys
# The 4 KiB blocks of B that differ from A's, concatenated on stdout; their count in bytes
# in the file named third.
BLOCK, STEP = 4096, 4 << 20
raw = 0
with open(sys.argv[1], "rb") as a, open(sys.argv[2], "rb") as b:
    while y := b.read(STEP):
        x = a.read(STEP)
        if x == y:
            continue
        for i in range(0, len(y), BLOCK):
            if x[i : i + BLOCK] != y[i : i + BLOCK]:
                sys.stdout.buffer.write(y[i : i + BLOCK])
                raw += len(y[i : i + BLOCK])
open(sys.argv[3], "w").write(f"{raw}\n")
PY
    )
    tool=partclone.extfs
    [[ $fs == ntfs ]] && tool=partclone.ntfs
    peer=$("$tool" -c -s "$a" -o - 2>"$OUT/partclone.log" | zstd -T0 -3 -q -c | wc -c) ||
      { cat "$OUT/partclone.log" >&2; exit 1; }
    printf 'changed_raw=%s\nchanged_zstd=%s\npartclone_zstd=%s\n' \
      "$(cat "$OUT/changed_raw")" "$changed_zstd" "$peer" >"$OUT/$fs.ref.tmp"
    mv "$OUT/$fs.ref.tmp" "$OUT/$fs.ref"
  fi
done
echo "$OUT"
