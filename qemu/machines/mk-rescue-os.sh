#!/usr/bin/env bash
# The "installed system" of tests/qemu/test-schedule-rescue.sh: a UEFI machine (GPT, FAT32
# ESP with GRUB as the fallback loader, ext4 root) whose OS is the live kernel and
# initramfs booted by GRUB with `ironclone.job=UUID=<root>:os/init.sh`: the live /init
# mounts the root partition read-write at /run/ironclone/job and runs os/init.sh there,
# which stands in for the installed system's init (a real OS would have systemd run the
# timer). The root holds /boot/{vmlinuz,initrd.img} (what `rescue install` copies to the
# ESP), /boot/efi (the ESP's mount point), /etc/hostname and os/init.sh.
# Usage: mk-rescue-os.sh OUT.img KERNEL INITRD INIT_SH ROOT_UUID
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -eq 5 ]] || m_die "usage: $0 OUT.img KERNEL INITRD INIT_SH ROOT_UUID"
OUT=$1 KERNEL=$2 INITRD=$3 INIT=$4 ROOT_UUID=$5
NAME=rescue-os
m_need_tools
for f in "$KERNEL" "$INITRD" "$INIT"; do [[ -f $f ]] || m_die "no file $f"; done

# The ESP takes the rescue entry's copy of the kernel and initramfs; the root the OS's own.
need_mib=$((($(stat -c %s "$KERNEL") + $(stat -c %s "$INITRD")) / 1048576 + 1))
ESP_MIB=$((need_mib + 40))
ROOT_MIB=$((need_mib + 24))
ESP_START=2048
ESP_END=$((ESP_START + ESP_MIB * 2048 - 1))
ROOT_START=$((ESP_END + 1))
ROOT_END=$((ROOT_START + ROOT_MIB * 2048 - 1))
SECTORS=$((ROOT_END + 1 + 2048))

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -f "$OUT"
truncate -s $((SECTORS * 512)) "$OUT"
sgdisk -o -U 1C0EC1A5-0000-4000-8000-00000000000A \
  -n 1:$ESP_START:$ESP_END -t 1:EF00 -c 1:esp -u 1:1C0EC1A5-000A-4000-8000-000000000001 \
  -n 2:$ROOT_START:$ROOT_END -t 2:8300 -c 2:root -u 2:1C0EC1A5-000A-4000-8000-000000000002 \
  "$OUT" >/dev/null || m_die "sgdisk failed"

d=$work/root
mkdir -p "$d/boot/grub" "$d/boot/efi" "$d/etc" "$d/os" "$d/var/lib"
cp "$KERNEL" "$d/boot/vmlinuz"
cp "$INITRD" "$d/boot/initrd.img"
cp "$INIT" "$d/os/init.sh"
echo "$NAME" >"$d/etc/hostname"
cat >"$d/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
menuentry 'installed system $NAME' {
  search --no-floppy --fs-uuid --set=root $ROOT_UUID
  echo 'ironclone: booting the installed system $NAME'
  linux /boot/vmlinuz console=ttyS0,115200 panic=10 loglevel=4 ironclone.net=0 ironclone.settle=20 ironclone.job=UUID=$ROOT_UUID:os/init.sh
  initrd /boot/initrd.img
}
CFG
truncate -s "${ROOT_MIB}M" "$work/root.ext4"
mkfs.ext4 -q -F -U "$ROOT_UUID" -L "$NAME" -O ^metadata_csum_seed,^orphan_file -d "$d" "$work/root.ext4" \
  || m_die "mkfs.ext4 failed"
m_place "$OUT" "$work/root.ext4" "$ROOT_START"
m_efi_img "$work/grubx64.efi" "$ROOT_UUID"
m_esp "$work/esp.fat" "$ESP_MIB" "$ESP_START" "$work/grubx64.efi" ::/EFI/BOOT/BOOTX64.EFI
m_place "$OUT" "$work/esp.fat" "$ESP_START"
echo "machine $NAME: $OUT (GPT, ESP ${ESP_MIB} MiB, root ${ROOT_MIB} MiB UUID $ROOT_UUID)"
