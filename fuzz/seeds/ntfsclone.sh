#!/usr/bin/env bash
# Writes small real ntfsclone images into the corpus dir $1: `ntfsclone --save-image` of a
# tiny NTFS made by mkntfs (4 KiB and 512-byte clusters, one file with its own data runs),
# so fuzzing starts from a valid header and a real mix of gap and cluster commands.
set -euo pipefail
out=$1
mkdir -p "$out"
[[ -s $out/seed-ntfsclone-512 ]] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "$1" >&2; echo "seeds/ntfsclone.sh: $2 failed" >&2; exit 1; }
head -c 20000 /dev/zero | tr '\0' 'x' >"$tmp/file"
mk() { # name mkntfs-args...
  local name=$1 log; shift
  truncate -s 1088K "$tmp/vol"
  log=$(mkntfs -F -q -f "$@" "$tmp/vol" 2>&1) || fail "$log" "mkntfs $*"
  log=$(ntfscp -f "$tmp/vol" "$tmp/file" file.txt 2>&1) || fail "$log" ntfscp
  log=$(ntfsclone -f --save-image -O "$tmp/$name" "$tmp/vol" 2>&1) || fail "$log" "ntfsclone --save-image"
  mv "$tmp/$name" "$out/$name"
  rm -f "$tmp/vol"
}
mk seed-ntfsclone-4k
mk seed-ntfsclone-512 -c 512
