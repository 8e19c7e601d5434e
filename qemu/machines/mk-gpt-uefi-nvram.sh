#!/usr/bin/env bash
# Machine 3 "gpt-uefi-nvram": GPT, UEFI only, the case that breaks on replacement
# hardware. The loader lives only at the distribution path \EFI\ironclone\grubx64.efi
# (no fallback \EFI\BOOT\BOOTX64.EFI), so the disk boots only through an NVRAM
# Boot#### entry. That entry is written into a copy of OVMF_VARS_4M.fd by the
# firmware itself: OVMF is booted once with a temporary \startup.nsh on the ESP that
# runs the UEFI shell's `bcfg boot add`, then powers off; the script is removed again.
# So the entry's bytes come from the firmware, not from our own encoder, and
# src/bootfix/efi_load_option.rs is tested against them.
#   with OUT-vars.fd         -> boots (entry first in BootOrder)
#   with a fresh OVMF_VARS   -> does NOT boot (no fallback loader): the negative case
# Usage: mk-gpt-uefi-nvram.sh OUT.img [VARS_OUT.fd]   (default VARS_OUT: OUT without .img + -vars.fd)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -ge 1 && $# -le 2 ]] || m_die "usage: $0 OUT.img [VARS_OUT.fd]"
OUT=$1
VARS_OUT=${2:-${OUT%.img}-vars.fd}
NAME=gpt-uefi-nvram
ROOT_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e0003
DISK_GUID=1C0EC1A5-0000-4000-8000-000000000003
ESP_GUID=1C0EC1A5-0003-4000-8000-000000000001
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
m_need_tools
[[ -f $OVMF_CODE && -f $OVMF_VARS ]] || m_die "missing OVMF ($OVMF_CODE, $OVMF_VARS)"
command -v qemu-system-x86_64 >/dev/null || m_die "missing qemu-system-x86_64"

SECTORS=$((256 * 2048))
ESP_START=2048 ESP_MIB=64
ESP_END=$((ESP_START + ESP_MIB * 2048 - 1))
ROOT_START=$((ESP_END + 1))
ROOT_END=$((SECTORS - 34))
ROOT_MIB=$(((ROOT_END - ROOT_START + 1) / 2048))

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -f "$OUT"
truncate -s $((SECTORS * 512)) "$OUT"
sgdisk -o -U "$DISK_GUID" \
  -n 1:$ESP_START:$ESP_END -t 1:EF00 -c 1:esp -u 1:$ESP_GUID \
  -n 2:$ROOT_START:$ROOT_END -t 2:8300 -c 2:root -u 2:1C0EC1A5-0003-4000-8000-000000000002 \
  "$OUT" >/dev/null || m_die "sgdisk failed"

m_boot_fs "$work/root.ext4" "$ROOT_MIB" "$ROOT_UUID" "$NAME"
m_place "$OUT" "$work/root.ext4" "$ROOT_START"

m_efi_img "$work/grubx64.efi" "$ROOT_UUID"
m_esp "$work/esp.fat" "$ESP_MIB" "$ESP_START" "$work/grubx64.efi" ::/EFI/ironclone/grubx64.efi
printf '@echo -off\r\nbcfg boot add 0 fs0:\\EFI\\ironclone\\grubx64.efi "ironclone"\r\necho IRONCLONE-VARS-WRITTEN\r\nreset -s\r\n' \
  >"$work/startup.nsh"
mcopy -i "$work/esp.fat" "$work/startup.nsh" ::/startup.nsh || m_die "mcopy startup.nsh failed"
m_place "$OUT" "$work/esp.fat" "$ESP_START"

# One firmware boot: no Boot#### matches the disk, OVMF falls to its built-in shell,
# which runs \startup.nsh. Same machine model as qemu/boot-disk.sh, so the device path
# bcfg records is the one later boots see.
cp "$OVMF_VARS" "$work/vars.fd"
timeout 120 qemu-system-x86_64 -accel tcg -machine q35 -m 512 -display none -no-reboot -nodefaults \
  -serial "file:$work/vars.log" -net none \
  -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" \
  -drive "if=pflash,format=raw,unit=1,file=$work/vars.fd" \
  -drive "file=$OUT,format=raw,if=none,id=d0" -device ide-hd,drive=d0,bus=ide.0 \
  >"$work/qemu.out" 2>&1 || true
if ! grep -aq IRONCLONE-VARS-WRITTEN "$work/vars.log"; then
  tr -d '\r' <"$work/vars.log" | tail -n 20 >&2
  cat "$work/qemu.out" >&2
  m_die "the UEFI shell did not write the Boot#### entry"
fi
cp "$work/vars.fd" "$VARS_OUT"

# The disk must not carry the helper script: a fresh VARS must not boot it.
esp_off=$((ESP_START * 512))
mdel -i "$OUT@@$esp_off" ::/startup.nsh || m_die "mdel startup.nsh failed"

echo "machine $NAME: $OUT ($((SECTORS / 2048)) MiB, GPT, UEFI only) + NVRAM $VARS_OUT"
echo "  p1 esp   EF00  LBA $ESP_START-$ESP_END  GUID $ESP_GUID  FAT32: \\EFI\\ironclone\\grubx64.efi only"
echo "  p2 root  8300  LBA $ROOT_START-$ROOT_END  ext4 UUID $ROOT_UUID: /boot/{vmlinuz,initrd.img,grub/grub.cfg}"
echo "  NVRAM: Boot#### 'ironclone' -> HD(1,GPT,$ESP_GUID)/\\EFI\\ironclone\\grubx64.efi, first in BootOrder"
