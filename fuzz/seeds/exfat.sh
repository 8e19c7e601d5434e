#!/usr/bin/env bash
# Writes small real exFAT volumes made by mkfs.exfat into the corpus dir $1: 512-byte and
# 4 KiB clusters, the bitmap in its usual place and packed into the FAT segment, with a
# label, so the fuzzer starts from a valid boot region (checksum included), FAT chains and
# the root directory's bitmap, up-case and label entries. mkfs.exfat's default 1 MiB
# boundary alignment does not fit such small volumes, so -b is given. Files cannot be
# added without a FUSE mount (root); tests/usedmap_exfat.rs covers filled volumes.
set -euo pipefail
out=$1
mkdir -p "$out"
mk() { # name size mkfs.exfat-args...
  local name=$1 size=$2; shift 2
  [[ -s $out/$name ]] && return 0
  rm -f "$out/$name.tmp"
  truncate -s "$size" "$out/$name.tmp"
  mkfs.exfat "$@" "$out/$name.tmp" >/dev/null 2>&1 ||
    { echo "seeds/exfat.sh: mkfs.exfat $* failed" >&2; exit 1; }
  mv "$out/$name.tmp" "$out/$name"
}
mk seed-exfat-512 1M -b 4K -c 512 -L seed
mk seed-exfat-4k-packed 1M -b 4K -c 4K --pack-bitmap
mk seed-exfat-64k-align 2M -b 64K -c 4K -L aligned
