#!/usr/bin/env bash
# Writes small real btrfs filesystems made by mkfs.btrfs into the corpus dir $1: 16 MiB is
# the smallest mkfs.btrfs makes, and only with --mixed (data and metadata in one chunk
# type). One is empty (DUP), one holds files and a directory from --rootdir (no mount, so
# no root needed), one is single-profile. The fuzzer starts from a valid superblock,
# sys_chunk_array, chunk, root and extent trees.
set -euo pipefail
out=$1
mkdir -p "$out"
mk() { # name mkfs.btrfs-args...
  local name=$1; shift
  [[ -s $out/$name ]] && return 0
  rm -f "$out/$name.tmp"
  truncate -s 16M "$out/$name.tmp"
  mkfs.btrfs -q -f --mixed "$@" "$out/$name.tmp" >/dev/null 2>&1 ||
    { echo "seeds/btrfs.sh: mkfs.btrfs $* failed" >&2; exit 1; }
  mv "$out/$name.tmp" "$out/$name"
}
mk seed-btrfs-mixed
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/dir"
head -c 20000 /dev/zero | tr '\0' 'b' >"$tree/dir/file.txt"
head -c 3000 /dev/zero | tr '\0' 'i' >"$tree/inline.txt"
mk seed-btrfs-rootdir --rootdir "$tree"
mk seed-btrfs-single -d single -m single
