#!/usr/bin/env bash
# Writes the start of every filesystem and container `probe` recognises, made by its real
# tool, into the corpus dir $1. Probing reads only superblocks, so big formats (XFS and
# btrfs need 300 / 114 MiB) are cut to their first bytes: libFuzzer holds every input in
# memory, and a seed only has to carry the magic numbers and fields past which it must get.
# LVM's pvcreate and BitLocker need a block device / Windows and are left to the fuzzer.
set -euo pipefail
out=$1
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# name size keep tool args...: runs `tool args... FILE` on a sparse file of `size` and keeps
# its first `keep` bytes (`all` for the whole file).
mk() {
  local name=$1 size=$2 keep=$3 tool=$4; shift 4
  [[ -s $out/$name ]] && return 0
  rm -f "$tmp/img"
  truncate -s "$size" "$tmp/img"
  "$tool" "$@" "$tmp/img" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; echo "seeds/probe.sh: $tool $* failed" >&2; exit 1; }
  if [[ $keep == all ]]; then
    cp "$tmp/img" "$out/$name"
  else
    head -c "$keep" "$tmp/img" >"$out/$name"
  fi
}
mk seed-ext4 512K all mke2fs -F -q -t ext4 -b 1024 -N 16 -O ^has_journal
mk seed-ext3 1M all mke2fs -F -q -t ext3 -b 1024 -N 16 -J size=1
mk seed-ext2 256K all mke2fs -F -q -t ext2 -b 1024 -N 16
mk seed-ntfs 1088K all mkntfs -F -q -f
mk seed-fat12 64K all mkfs.fat -F 12
mk seed-fat32 1M all mkfs.fat -F 32
mk seed-exfat 1M all mkfs.exfat -b 4096 -c 4096
mk seed-swap 64K all mkswap
mk seed-xfs 300M 64K mkfs.xfs -f -q
mk seed-btrfs 120M 128K mkfs.btrfs -f -q
# LUKS2's header is 16 KiB plus its JSON area; a fast PBKDF keeps this instant.
if [[ ! -s $out/seed-luks2 ]]; then
  rm -f "$tmp/img"
  truncate -s 20M "$tmp/img"
  printf pass | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    --key-file - "$tmp/img" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; echo "seeds/probe.sh: cryptsetup failed" >&2; exit 1; }
  head -c 64K "$tmp/img" >"$out/seed-luks2"
fi
