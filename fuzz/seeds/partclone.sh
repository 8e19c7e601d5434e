#!/usr/bin/env bash
# Writes small real partclone images into the corpus dir $1 (partclone.ext4 on a tiny
# ext4 made by mke2fs -d), one per checksum option partclone has, so fuzzing starts
# from valid headers, bitmaps and checksum groups.
set -euo pipefail
out=$1
mkdir -p "$out"
[[ -s $out/seed-pc-crc-k1 ]] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tree"
seq 1 4000 >"$tmp/tree/a"
echo hello >"$tmp/tree/b"
truncate -s 1M "$tmp/fs.img"
mke2fs -F -q -t ext4 -b 1024 -N 16 -O ^has_journal -d "$tmp/tree" "$tmp/fs.img" >/dev/null
pc() { # name options...
  local name=$1; shift
  partclone.ext4 -q -c -s "$tmp/fs.img" -O "$tmp/$name" -L "$tmp/log" "$@" >/dev/null 2>&1
  mv "$tmp/$name" "$out/$name"
}
pc seed-pc-none -a0
pc seed-pc-crc-default
pc seed-pc-crc-k7 -a1 -k 7
pc seed-pc-crc-noreseed -a1 -k 5 -K
pc seed-pc-crc-k1 -a1 -k 1
