#!/usr/bin/env bash
# Writes small real XFS filesystems into the corpus dir $1, in the fuzz target's
# format: the first 64 KiB of each 16 MiB allocation group, concatenated (the map reads
# nothing else). mkfs.xfs refuses filesystems under 300 MB unless the three fstests
# variables are set, which is what they are for.
set -euo pipefail
out=$1
mkdir -p "$out"
export TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=xfs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A few files through a prototype file, so the trees are not all empty.
head -c 300000 /dev/zero | tr '\0' 'x' >"$tmp/big"
printf 'small\n' >"$tmp/small"
cat >"$tmp/proto" <<P
/dev/null
0 0
d--755 0 0
big ---644 0 0 $tmp/big
small ---644 0 0 $tmp/small
d d--755 0 0
\$
\$
P
mk() { # name mkfs-args...
  local name=$1; shift
  [[ -s $out/$name ]] && return 0
  truncate -s 64M "$tmp/fs"
  mkfs.xfs -q -f -d agsize=16m "$@" "$tmp/fs" >/dev/null 2>&1
  : >"$out/$name.tmp"
  for ag in 0 1 2 3; do
    dd if="$tmp/fs" bs=64K skip=$((ag * 256)) count=1 status=none >>"$out/$name.tmp"
  done
  mv "$out/$name.tmp" "$out/$name"
  rm -f "$tmp/fs"
}
mk seed-xfs-v5 -p "$tmp/proto"
mk seed-xfs-v5-1k -b size=1024
mk seed-xfs-v4 -m crc=0 -p "$tmp/proto"
mk seed-xfs-rmap-reflink -m rmapbt=1,reflink=1
mk seed-xfs-sect4k -s size=4096
