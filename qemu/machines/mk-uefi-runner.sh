#!/usr/bin/env bash
# A helper machine, not a test subject: GPT + ESP (fallback loader) + ext4 root whose
# initramfs runs a job script with an ironclone binary inside a UEFI-booted Linux,
# efivarfs mounted. Tests use it to let ironclone write NVRAM (Boot####, BootOrder)
# through the real kernel and firmware, then boot another disk with the resulting
# VARS (qemu/boot-disk.sh --vars-out). The binary must be static (musl build).
# Usage: mk-uefi-runner.sh OUT.img IRONCLONE_BIN JOB.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -eq 3 ]] || m_die "usage: $0 OUT.img IRONCLONE_BIN JOB.sh"
OUT=$1 BIN=$2 JOB=$3
NAME=uefi-runner
ROOT_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e0009
m_need_tools
[[ -x $BIN ]] || m_die "no executable $BIN"
file -L "$BIN" | grep -Eq 'statically linked|static-pie linked' || m_die "$BIN is not static (build the musl target)"

SECTORS=$((160 * 2048))
ESP_START=2048 ESP_MIB=40
ESP_END=$((ESP_START + ESP_MIB * 2048 - 1))
ROOT_START=$((ESP_END + 1))
ROOT_END=$((SECTORS - 34))
ROOT_MIB=$(((ROOT_END - ROOT_START + 1) / 2048))

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -f "$OUT"
truncate -s $((SECTORS * 512)) "$OUT"
sgdisk -o -U 1C0EC1A5-0000-4000-8000-000000000009 \
  -n 1:$ESP_START:$ESP_END -t 1:EF00 -c 1:esp -u 1:1C0EC1A5-0009-4000-8000-000000000001 \
  -n 2:$ROOT_START:$ROOT_END -t 2:8300 -c 2:root -u 2:1C0EC1A5-0009-4000-8000-000000000002 \
  "$OUT" >/dev/null || m_die "sgdisk failed"
m_initrd_runner "$work/initrd.img" "$NAME" "$BIN" "$JOB"
m_boot_fs "$work/root.ext4" "$ROOT_MIB" "$ROOT_UUID" "$NAME" "$work/initrd.img"
m_place "$OUT" "$work/root.ext4" "$ROOT_START"
m_efi_img "$work/grubx64.efi" "$ROOT_UUID"
m_esp "$work/esp.fat" "$ESP_MIB" "$ESP_START" "$work/grubx64.efi" ::/EFI/BOOT/BOOTX64.EFI
m_place "$OUT" "$work/esp.fat" "$ESP_START"
echo "machine $NAME: $OUT (GPT, UEFI fallback loader), job $(basename "$JOB") with $(basename "$BIN")"
