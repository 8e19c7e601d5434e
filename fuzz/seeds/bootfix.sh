#!/usr/bin/env bash
# Writes inputs for the boot-repair parsers into the corpus dir $1:
# - an MBR disk with GRUB for BIOS (boot.img from grub-pc-bin, core.img by grub-mkimage)
#   laid down as grub-bios-setup does it, by the same helper the QEMU test machines use;
# - the boot sectors mkfs.fat (FAT12, FAT32) and mkntfs write (hidden sectors set);
# - a Boot#### EFI load option as OVMF's firmware wrote it (the one tests/bootfix_cli.rs
#   carries), whose device path holds a HardDrive and a FilePath node.
set -euo pipefail
out=$1
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=qemu/machines/lib.sh
source "$here/../../qemu/machines/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "$1" >&2; echo "seeds/bootfix.sh: $2 failed" >&2; exit 1; }
log=
if [[ ! -s $out/seed-grub-mbr ]]; then
  truncate -s 256K "$tmp/disk"
  log=$(printf 'label: dos\nstart=128, type=83, bootable\n' | sfdisk -q "$tmp/disk" 2>&1) || fail "$log" sfdisk
  log=$(grub-mkimage -O i386-pc -d "$M_GRUB_PC" -p '(hd0,msdos1)/boot/grub' -o "$tmp/core.img" \
    biosdisk part_msdos ext2 2>&1) || fail "$log" grub-mkimage
  m_install_bios_grub "$tmp/disk" "$tmp/core.img" 1 127
  mv "$tmp/disk" "$out/seed-grub-mbr"
fi
if [[ ! -s $out/seed-fat12-boot ]]; then
  truncate -s 64K "$tmp/fat12"
  log=$(mkfs.fat -F 12 -h 2048 "$tmp/fat12" 2>&1) || fail "$log" "mkfs.fat -F 12"
  head -c 512 "$tmp/fat12" >"$out/seed-fat12-boot"
fi
if [[ ! -s $out/seed-fat32-boot ]]; then
  truncate -s 34M "$tmp/fat32"
  log=$(mkfs.fat -F 32 -h 2048 "$tmp/fat32" 2>&1) || fail "$log" "mkfs.fat -F 32"
  head -c 512 "$tmp/fat32" >"$out/seed-fat32-boot"
fi
if [[ ! -s $out/seed-ntfs-boot ]]; then
  truncate -s 1088K "$tmp/ntfs"
  log=$(mkntfs -F -q -f -p 2048 "$tmp/ntfs" 2>&1) || fail "$log" mkntfs
  head -c 512 "$tmp/ntfs" >"$out/seed-ntfs-boot"
fi
if [[ ! -s $out/seed-efi-boot0003 ]]; then
  # Boot0003 as OVMF's shell `bcfg` wrote it (qemu/machines/mk-gpt-uefi-nvram.sh).
  xxd -r -p >"$out/seed-efi-boot0003" <<'HEX'
010000008400690072006f006e0063006c006f006e006500000002010c00d041030a0000000001010600021f03120a000000ffff000004012a000100000000080000000000000000020000000000a5c10e1c030000408000000000000001020204043a005c004500460049005c00690072006f006e0063006c006f006e0065005c0067007200750062007800360034002e0065006600690000007fff0400
HEX
fi
