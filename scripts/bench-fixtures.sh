#!/usr/bin/env bash
# Builds the benchmark fixtures once: 4 GiB ext4, NTFS, XFS and btrfs filesystems (sparse files)
# holding about 1.5 GiB of real files (binaries, libraries, text from /usr, picked in a
# stable order), so compression and dedup see realistic data rather than random bytes.
# Also a 2 TB ext4 (sparse, lazily initialised inode tables as mkfs makes them on a big
# disk) holding the same files: what a nearly empty big disk costs (issue 16 item 6).
# XFS and btrfs are filled through the kernel (loop mount, cp -a) so their layout is the
# one a real disk has, not the one a mkfs --rootdir writer packs.
# Output: build/bench/{ext4.img,ext4-2t.img,ntfs.img,xfs.img,btrfs.img,data/}. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/build/bench"
TARGET_BYTES=$((1536 * 1024 * 1024))
mkdir -p "$OUT"

if [[ ! -f "$OUT/data.done" ]]; then
  rm -rf "$OUT/data"; mkdir -p "$OUT/data"
  # Stable selection: regular files under /usr/lib and /usr/share, sorted, until ~1.5 GiB.
  find /usr/lib /usr/share /usr/bin -xdev -type f -size +0 -printf '%s %p\n' 2>/dev/null \
    | sort -k2 | awk -v lim="$TARGET_BYTES" '!done { if (t + $1 > lim) { done = 1; next } t += $1; print $2 }' \
    > "$OUT/files.txt"
  tar -cf - -T "$OUT/files.txt" 2>/dev/null | tar -xf - -C "$OUT/data"
  touch "$OUT/data.done"
fi

if [[ ! -f "$OUT/ext4.img" ]]; then
  truncate -s 4G "$OUT/ext4.img.tmp"
  mkfs.ext4 -q -F -L benchext -d "$OUT/data" "$OUT/ext4.img.tmp"
  mv "$OUT/ext4.img.tmp" "$OUT/ext4.img"
fi

if [[ ! -f "$OUT/ext4-2t.img" ]]; then
  truncate -s 2T "$OUT/ext4-2t.img.tmp"
  mkfs.ext4 -q -F -L bench2t -E lazy_itable_init=1 -d "$OUT/data" "$OUT/ext4-2t.img.tmp"
  mv "$OUT/ext4-2t.img.tmp" "$OUT/ext4-2t.img"
fi

if [[ ! -f "$OUT/ntfs.img" ]]; then
  truncate -s 4G "$OUT/ntfs.img.tmp"
  mkntfs -q -F -f -L benchntfs "$OUT/ntfs.img.tmp" >/dev/null
  mnt="$(mktemp -d)"
  ntfs-3g "$OUT/ntfs.img.tmp" "$mnt"
  cp -a "$OUT/data/." "$mnt/"
  umount "$mnt"; rmdir "$mnt"
  mv "$OUT/ntfs.img.tmp" "$OUT/ntfs.img"
fi
# fill_by_mount IMG: copy the bench files into a filesystem through a loop mount.
fill_by_mount() {
  local mnt; mnt="$(mktemp -d)"
  mount -o loop "$1" "$mnt"
  cp -a "$OUT/data/." "$mnt/"
  umount "$mnt"; rmdir "$mnt"
}

if [[ ! -f "$OUT/xfs.img" ]]; then
  rm -f "$OUT/xfs.img.tmp"; truncate -s 4G "$OUT/xfs.img.tmp"
  mkfs.xfs -q -f -L benchxfs "$OUT/xfs.img.tmp"
  fill_by_mount "$OUT/xfs.img.tmp"
  mv "$OUT/xfs.img.tmp" "$OUT/xfs.img"
fi

if [[ ! -f "$OUT/btrfs.img" ]]; then
  rm -f "$OUT/btrfs.img.tmp"; truncate -s 4G "$OUT/btrfs.img.tmp"
  mkfs.btrfs -q -f -L benchbtrfs "$OUT/btrfs.img.tmp" >/dev/null
  fill_by_mount "$OUT/btrfs.img.tmp"
  mv "$OUT/btrfs.img.tmp" "$OUT/btrfs.img"
fi
du -sh --apparent-size "$OUT/data/." | sed 's/^/bench data: /'
