#!/usr/bin/env bash
# Writes the text files of a Clonezilla image folder into the corpus dir $1: sfdisk
# dumps of a GPT and an MBR disk with a logical partition (made by sgdisk/sfdisk on
# sparse files), a parts list, a dev-fs.list, a parted print, a luks-dev.list and an
# lvm_vg_dev.list naming a PV inside LUKS.
set -euo pipefail
out=$1
mkdir -p "$out"
[[ -s $out/seed-cz-mbr.sf && -s $out/seed-cz-luks-dev.list ]] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
truncate -s 160M "$tmp/gpt.img" "$tmp/mbr.img"
sgdisk -Z -n 1:2048:+32M -t 1:EF00 -c 1:"EFI system" -n 2:0:0 -t 2:8300 "$tmp/gpt.img" >/dev/null
printf 'label: dos\nstart=2048, size=65536, type=c, bootable\nstart=67584, type=5\nstart=69632, type=83\n' |
  sfdisk -q "$tmp/mbr.img"
sfdisk -d "$tmp/gpt.img" | sed "s|$tmp/gpt.img|/dev/sda|" >"$out/seed-cz-gpt.sf"
sfdisk -d "$tmp/mbr.img" | sed "s|$tmp/mbr.img|/dev/sda|" >"$out/seed-cz-mbr.sf"
printf 'sda1 sda5\n' >"$out/seed-cz-parts"
printf '# <Device name>   <File system>   <Size>\n/dev/sda1 vfat 32M\n/dev/sda5 ext4 126M\n' >"$out/seed-cz-dev-fs.list"
printf 'Model: (file)\nDisk /dev/sda: 327680s\nSector size (logical/physical): 512B/512B\n### Image created time: 2026-1130-1200\n' >"$out/seed-cz-parted"
printf '# <Block device> <UUID> <Device mapped name>\n/dev/sda3 0d1c5a8e-1111-4222-8333-944455556666 ocs_luks_Ab1\n' >"$out/seed-cz-luks-dev.list"
printf 'vgubuntu /dev/mapper/ocs_luks_Ab1 i20UTQ-OaX3-c6nB-CiBv-Gav1-hgVf-tEkO2W\n' >"$out/seed-cz-lvm_vg_dev.list"
