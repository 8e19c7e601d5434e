#!/usr/bin/env bash
# Writes the files of a tiny real repository into the corpus dir $1: `ironclone backup` of
# a small FAT disk (mkfs.fat + mtools, a compressible and an incompressible file) gives a
# pack (zstd and stored records), its index file and the image's manifest; a second
# backup of the changed disk gives a manifest whose chunks are partly deduplicated.
# Index files and manifests are zstd-compressed JSON since format 2; the seeds are the
# JSON the parsers see.
# SEED_ENCRYPT=1 (seeds/repo_crypt.sh): the repository is encrypted instead, and its key
# slot, sealed pack, sealed index file and sealed manifest are the seeds, as stored.
set -euo pipefail
out=$1
mkdir -p "$out"
[[ -s $out/seed-manifest-1 ]] && exit 0
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "$1" >&2; echo "seeds/repo.sh: $2 failed" >&2; exit 1; }
# shellcheck source=lib-repo.sh
source "$(dirname "$0")/lib-repo.sh"
small_fat_disk "$tmp"
if [[ ${SEED_ENCRYPT:-0} == 1 ]]; then
  export IRONCLONE_PASSWORD=pass IRONCLONE_KDF=8,1,1
  log=$(ironclone backup "$tmp/disk" "$tmp/repo" --encrypt --name seed-1 2>&1) || fail "$log" "ironclone backup --encrypt"
  n=0
  for f in "$tmp"/repo/keys/* "$tmp"/repo/packs/*/*.pack "$tmp"/repo/index/*.json; do cp "$f" "$out/seed-$((n += 1))"; done
  cp "$tmp/repo/images/seed-1.json" "$out/seed-manifest-1"
  exit 0
fi
log=$(ironclone backup "$tmp/disk" "$tmp/repo" --name seed-1 2>&1) || fail "$log" "ironclone backup"
head -c 30000 /dev/urandom >"$tmp/more"
log=$(mcopy -i "$tmp/disk" "$tmp/more" :: 2>&1) || fail "$log" mcopy
log=$(ironclone backup "$tmp/disk" "$tmp/repo" --name seed-2 2>&1) || fail "$log" "ironclone backup"
n=0
for f in "$tmp"/repo/packs/*/*.pack; do cp "$f" "$out/seed-pack-$((n += 1))"; done
n=0
unpack() { zstd -dcq "$1" 2>/dev/null || cat "$1"; }
for f in "$tmp"/repo/index/*.json; do
  n=$((n + 1))
  unpack "$f" >"$out/seed-index-$n"
done
unpack "$tmp/repo/images/seed-2.json" >"$out/seed-manifest-2"
unpack "$tmp/repo/images/seed-1.json" >"$out/seed-manifest-1"
