#!/usr/bin/env bash
# Writes small real NTFS volumes made by mkntfs (ntfs-3g) into the corpus dir $1, so fuzzing
# starts from a valid boot sector, $MFT records with fixups, run lists and $Bitmap instead of
# having to guess them. mkntfs's smallest volume is 1 MiB (plus the backup boot sector); each
# seed is just above it, since libFuzzer holds every input of the corpus in memory.
set -euo pipefail
out=$1
mkdir -p "$out"
mk() { # name size mkntfs-args...
  local name=$1 size=$2; shift 2
  [[ -s $out/$name ]] && return 0
  truncate -s "$size" "$out/$name.tmp"
  mkntfs -F -q -f "$@" "$out/$name.tmp" >/dev/null 2>&1 ||
    { echo "seeds/ntfs.sh: mkntfs $* failed" >&2; exit 1; }
  # A file with data runs of its own, so $MFT holds a non-resident attribute beyond the system files.
  head -c 20000 /dev/zero | tr '\0' 'x' >"$out/$name.file"
  ntfscp -f "$out/$name.tmp" "$out/$name.file" file.txt >/dev/null 2>&1 ||
    { echo "seeds/ntfs.sh: ntfscp into $name failed" >&2; exit 1; }
  rm -f "$out/$name.file"
  mv "$out/$name.tmp" "$out/$name"
}
mk seed-ntfs-4k 1088K
mk seed-ntfs-512 1088K -c 512
