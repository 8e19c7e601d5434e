#!/usr/bin/env bash
# Writes small real ext filesystems into the corpus dir $1, so fuzzing starts from
# valid superblocks, descriptors and bitmaps instead of having to guess the magic.
set -euo pipefail
out=$1
mkdir -p "$out"
mk() { # name size mke2fs-args...
  local name=$1 size=$2; shift 2
  [[ -s $out/$name ]] && return 0
  truncate -s "$size" "$out/$name.tmp"
  mke2fs -F -q "$@" "$out/$name.tmp" >/dev/null
  mv "$out/$name.tmp" "$out/$name"
}
mk seed-ext2-1k 256K -t ext2 -b 1024 -N 16
mk seed-ext4-1k-csum 512K -t ext4 -b 1024 -N 16 -O metadata_csum,64bit,^has_journal -g 1024
mk seed-ext4-metabg 512K -t ext4 -b 1024 -N 16 -O meta_bg,^resize_inode,^has_journal -g 256
mk seed-ext4-uninit 512K -t ext4 -b 1024 -N 16 -O ^metadata_csum,uninit_bg,^has_journal -g 1024
mk seed-ext4-bigalloc 1M -t ext4 -b 1024 -N 16 -O bigalloc,^has_journal,^resize_inode -C 4096
