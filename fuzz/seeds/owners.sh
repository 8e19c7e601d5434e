#!/usr/bin/env bash
# Writes small filesystems holding a directory tree into the corpus dir $1, for the rescue
# owner maps: ext2/ext4 filled by mke2fs -d (inodes with extents, block maps, directories)
# and NTFS filled by ntfscp (MFT records with fixups and run lists), NTFS also with
# 4096-byte sectors (mkntfs -s 4096), whose fixups still stride by 512 bytes.
set -euo pipefail
out=$1
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tree/dir/sub"
head -c 9000 /dev/zero | tr '\0' 'a' >"$tmp/tree/dir/file.txt"
head -c 30000 /dev/zero | tr '\0' 'b' >"$tmp/tree/dir/sub/big.bin"
printf 'small\n' >"$tmp/tree/top.txt"
fail() { echo "$1" >&2; echo "seeds/owners.sh: $2 failed" >&2; exit 1; }
ext() { # name size mke2fs-args...
  local name=$1 size=$2 log; shift 2
  [[ -s $out/$name ]] && return 0
  rm -f "$tmp/img"
  truncate -s "$size" "$tmp/img"
  log=$(mke2fs -F -q -d "$tmp/tree" "$@" "$tmp/img" 2>&1) || fail "$log" "mke2fs $*"
  mv "$tmp/img" "$out/$name"
}
ntfs() { # name size mkntfs-args...
  local name=$1 size=$2 log f; shift 2
  [[ -s $out/$name ]] && return 0
  rm -f "$tmp/img"
  truncate -s "$size" "$tmp/img"
  log=$(mkntfs -F -q -f "$@" "$tmp/img" 2>&1) || fail "$log" "mkntfs $*"
  for f in top.txt dir/file.txt dir/sub/big.bin; do
    log=$(ntfscp -f "$tmp/img" "$tmp/tree/$f" "$(basename "$f")" 2>&1) || fail "$log" "ntfscp $f"
  done
  mv "$tmp/img" "$out/$name"
}
ext seed-ext4 512K -t ext4 -b 1024 -N 32 -O ^has_journal
ext seed-ext2 256K -t ext2 -b 1024 -N 32
ntfs seed-ntfs-512 1088K
ntfs seed-ntfs-4k-sectors 1088K -s 4096
