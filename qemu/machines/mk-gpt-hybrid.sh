#!/usr/bin/env bash
# Machine 1 "gpt-hybrid": a GPT disk that boots with BIOS and with UEFI.
# BIOS: boot.img in the protective MBR -> core.img in the BIOS-boot partition (EF02).
# UEFI: GRUB at \EFI\BOOT\BOOTX64.EFI and \EFI\debian\grubx64.efi on a FAT32 ESP.
# Both find /boot/grub/grub.cfg on the ext4 root by filesystem UUID.
# Usage: mk-gpt-hybrid.sh OUT.img
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -eq 1 ]] || m_die "usage: $0 OUT.img"
OUT=$1
NAME=gpt-hybrid
ROOT_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e0001
DISK_GUID=1C0EC1A5-0000-4000-8000-000000000001
m_need_tools

SECTORS=$((256 * 2048))
BB_START=2048 BB_END=4095
ESP_START=4096 ESP_MIB=64
ESP_END=$((ESP_START + ESP_MIB * 2048 - 1))
ROOT_START=$((ESP_END + 1))
ROOT_END=$((SECTORS - 34))
ROOT_MIB=$(((ROOT_END - ROOT_START + 1) / 2048))

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -f "$OUT"
truncate -s $((SECTORS * 512)) "$OUT"
sgdisk -o -U "$DISK_GUID" \
  -n 1:$BB_START:$BB_END -t 1:EF02 -c 1:bios-boot -u 1:1C0EC1A5-0001-4000-8000-000000000001 \
  -n 2:$ESP_START:$ESP_END -t 2:EF00 -c 2:esp -u 2:1C0EC1A5-0001-4000-8000-000000000002 \
  -n 3:$ROOT_START:$ROOT_END -t 3:8300 -c 3:root -u 3:1C0EC1A5-0001-4000-8000-000000000003 \
  "$OUT" >/dev/null || m_die "sgdisk failed"

m_boot_fs "$work/root.ext4" "$ROOT_MIB" "$ROOT_UUID" "$NAME"
m_place "$OUT" "$work/root.ext4" "$ROOT_START"

m_efi_img "$work/grubx64.efi" "$ROOT_UUID"
m_esp "$work/esp.fat" "$ESP_MIB" "$ESP_START" "$work/grubx64.efi" ::/EFI/BOOT/BOOTX64.EFI ::/EFI/debian/grubx64.efi
m_place "$OUT" "$work/esp.fat" "$ESP_START"

m_core_img "$work/core.img" "$ROOT_UUID"
m_install_bios_grub "$OUT" "$work/core.img" "$BB_START" $((BB_END - BB_START + 1))

echo "machine $NAME: $OUT ($((SECTORS / 2048)) MiB, GPT, BIOS+UEFI)"
echo "  p1 bios-boot EF02  LBA $BB_START-$BB_END  core.img $(stat -c %s "$work/core.img") bytes, MBR kernel_sector=$BB_START"
echo "  p2 esp       EF00  LBA $ESP_START-$ESP_END  FAT32: \\EFI\\BOOT\\BOOTX64.EFI, \\EFI\\debian\\grubx64.efi"
echo "  p3 root      8300  LBA $ROOT_START-$ROOT_END  ext4 UUID $ROOT_UUID: /boot/{vmlinuz,initrd.img,grub/grub.cfg}"
