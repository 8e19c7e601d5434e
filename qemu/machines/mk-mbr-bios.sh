#!/usr/bin/env bash
# Machine 2 "mbr-bios": a DOS-labelled disk that boots with BIOS only, the classic
# layout an imager most often gets wrong: core.img lives in the unpartitioned post-MBR
# gap (LBA 1..2047), so a copy of "used blocks only" loses it.
#   p1 ext4 /boot (active), p2 NTFS data with files, p3 extended holding p5 (ext4).
# Usage: mk-mbr-bios.sh OUT.img
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -eq 1 ]] || m_die "usage: $0 OUT.img"
OUT=$1
NAME=mbr-bios
BOOT_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e0002
LOG_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e0005
m_need_tools

SECTORS=$((320 * 2048))
P1_START=2048 P1_SIZE=$((96 * 2048))
P2_START=$((P1_START + P1_SIZE)) P2_SIZE=$((64 * 2048))
P3_START=$((P2_START + P2_SIZE)) P3_SIZE=$((SECTORS - P3_START))
P5_START=$((P3_START + 2048)) P5_SIZE=$((32 * 2048))

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -f "$OUT"
truncate -s $((SECTORS * 512)) "$OUT"
sfdisk -q --no-reread --no-tell-kernel "$OUT" <<EOF || m_die "sfdisk failed"
label: dos
label-id: 0x1c0ec1a5
start=$P1_START, size=$P1_SIZE, type=83, bootable
start=$P2_START, size=$P2_SIZE, type=7
start=$P3_START, size=$P3_SIZE, type=5
start=$P5_START, size=$P5_SIZE, type=83
EOF
# sfdisk is the judge of where the logical partition really went.
got=$(sfdisk -d "$OUT" | awk -F'[=,]' '/img5 :/{gsub(/ /,"",$2); print $2}')
[[ $got == "$P5_START" ]] || m_die "logical partition at '$got', expected $P5_START"

m_boot_fs "$work/boot.ext4" $((P1_SIZE / 2048)) "$BOOT_UUID" "$NAME"
m_place "$OUT" "$work/boot.ext4" "$P1_START"

truncate -s $((P2_SIZE * 512)) "$work/data.ntfs"
mkntfs -q -F -Q -s 512 -p "$P2_START" -H 255 -S 63 -L data "$work/data.ntfs" >"$work/mkntfs.log" 2>&1 \
  || { cat "$work/mkntfs.log" >&2; m_die "mkntfs failed"; }
printf 'ironclone test data on NTFS\n' >"$work/readme.txt"
head -c 300000 /dev/urandom >"$work/blob.bin"
ntfscp -q "$work/data.ntfs" "$work/readme.txt" readme.txt || m_die "ntfscp readme failed"
ntfscp -q "$work/data.ntfs" "$work/blob.bin" blob.bin || m_die "ntfscp blob failed"
m_place "$OUT" "$work/data.ntfs" "$P2_START"

d=$(mktemp -d -p "$work")
echo "logical partition of $NAME" >"$d/hello.txt"
truncate -s $((P5_SIZE * 512)) "$work/log.ext4"
mkfs.ext4 -q -F -U "$LOG_UUID" -L logical -d "$d" "$work/log.ext4" || m_die "mkfs.ext4 logical failed"
m_place "$OUT" "$work/log.ext4" "$P5_START"

m_core_img "$work/core.img" "$BOOT_UUID"
m_install_bios_grub "$OUT" "$work/core.img" 1 $((P1_START - 1))

echo "machine $NAME: $OUT ($((SECTORS / 2048)) MiB, MBR 0x1c0ec1a5, BIOS)"
echo "  gap          LBA 1-$((P1_START - 1))  core.img $(stat -c %s "$work/core.img") bytes, MBR kernel_sector=1"
echo "  p1 83 *      LBA $P1_START+$P1_SIZE  ext4 UUID $BOOT_UUID: /boot/{vmlinuz,initrd.img,grub/grub.cfg}"
echo "  p2 07        LBA $P2_START+$P2_SIZE  NTFS 'data' (hidden sectors $P2_START): readme.txt, blob.bin"
echo "  p3 05        LBA $P3_START+$P3_SIZE  extended"
echo "  p5 83        LBA $P5_START+$P5_SIZE  ext4 UUID $LOG_UUID: hello.txt"
