#!/usr/bin/env bash
# Writes real deploy streams into the corpus dir $1: `ironclone backup` of a small FAT disk
# (mkfs.fat + mtools, a compressible and an incompressible file), then
# `ironclone deploy --write-stream` of the image (records stored and zstd, the manifest,
# the trailer).
# The binary is $IRONCLONE, or the crate's debug build (cargo builds it when needed).
set -euo pipefail
out=$1
mkdir -p "$out"
[[ -s $out/seed-stream-1 ]] && exit 0
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "$1" >&2; echo "seeds/deploy.sh: $2 failed" >&2; exit 1; }
ironclone() {
  if [[ -n ${IRONCLONE:-} ]]; then
    "$IRONCLONE" "$@"
  else
    cargo run -q --locked --manifest-path "$root/Cargo.toml" --bin ironclone -- "$@"
  fi
}
truncate -s 1M "$tmp/disk"
log=$(mkfs.fat -F 12 "$tmp/disk" 2>&1) || fail "$log" mkfs.fat
head -c 100000 /dev/zero | tr '\0' 'z' >"$tmp/text"
head -c 50000 /dev/urandom >"$tmp/noise"
log=$(mcopy -i "$tmp/disk" "$tmp/text" "$tmp/noise" :: 2>&1) || fail "$log" mcopy
log=$(ironclone backup "$tmp/disk" "$tmp/repo" --name seed 2>&1) || fail "$log" "ironclone backup"
log=$(ironclone deploy "$tmp/repo" seed --clients 1 --write-stream "$out/seed-stream-1" 2>&1) ||
  fail "$log" "ironclone deploy --write-stream"
