#!/usr/bin/env bash
# Writes real deploy streams into the corpus dir $1: `ironclone backup` of a small FAT disk
# (mkfs.fat + mtools, a compressible and an incompressible file), then
# `ironclone deploy --write-stream` of the image (records stored and zstd, the manifest,
# the trailer).
set -euo pipefail
out=$1
mkdir -p "$out"
[[ -s $out/seed-stream-1 ]] && exit 0
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "$1" >&2; echo "seeds/deploy.sh: $2 failed" >&2; exit 1; }
# shellcheck source=lib-repo.sh
source "$(dirname "$0")/lib-repo.sh"
small_fat_disk "$tmp"
log=$(ironclone backup "$tmp/disk" "$tmp/repo" --name seed 2>&1) || fail "$log" "ironclone backup"
log=$(ironclone deploy "$tmp/repo" seed --clients 1 --write-stream "$out/seed-stream-1" 2>&1) ||
  fail "$log" "ironclone deploy --write-stream"
