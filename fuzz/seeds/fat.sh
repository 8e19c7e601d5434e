#!/usr/bin/env bash
# Writes small real FAT12/16/32 volumes made by mkfs.fat (with a directory and a file added by
# mtools, so the FAT holds chains) and a swap area made by mkswap into the corpus dir $1: the
# fat target fuzzes both parsers, and starts from valid BPBs, FATs and a swap header.
set -euo pipefail
out=$1
mkdir -p "$out"
mk() { # name size mkfs.fat-args...; files=0 in the environment skips the mtools part
  local name=$1 size=$2; shift 2
  [[ -s $out/$name ]] && return 0
  truncate -s "$size" "$out/$name.tmp"
  mkfs.fat "$@" "$out/$name.tmp" >/dev/null 2>&1 ||
    { echo "seeds/fat.sh: mkfs.fat $* failed" >&2; exit 1; }
  if [[ ${files:-1} == 1 ]]; then
    head -c 5000 /dev/zero | tr '\0' 'x' >"$out/$name.file"
    if ! mmd -i "$out/$name.tmp" ::/dir || ! mcopy -i "$out/$name.tmp" "$out/$name.file" ::/dir/file.txt; then
      echo "seeds/fat.sh: mtools into $name failed" >&2
      exit 1
    fi
    rm -f "$out/$name.file"
  fi
  mv "$out/$name.tmp" "$out/$name"
}
mk seed-fat12 64K -F 12
# FAT16 needs 4085 clusters: 2200 KiB of one-sector clusters.
mk seed-fat16 2200K -F 16 -s 1
# The FAT type is decided by the cluster count, not by mkfs's -F: a real FAT32 needs 65525
# clusters, 33 MiB at least, too big for libFuzzer's in-memory corpus. This one is what
# `mkfs.fat -F 32` makes of 1 MiB (with a warning): FAT32 fields, FAT16 by the count. The
# FAT32 decoding itself is covered by tests/usedmap_fat.rs on a real FAT32 (mtools refuses
# this one, so it gets no files).
files=0 mk seed-fat32-small 1M -F 32
if [[ ! -s $out/seed-swap ]]; then
  truncate -s 64K "$out/seed-swap.tmp"
  mkswap "$out/seed-swap.tmp" >/dev/null 2>&1 || { echo "seeds/fat.sh: mkswap failed" >&2; exit 1; }
  mv "$out/seed-swap.tmp" "$out/seed-swap"
fi
