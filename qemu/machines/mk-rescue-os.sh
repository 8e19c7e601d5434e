#!/usr/bin/env bash
# The "installed system" of tests/qemu/test-schedule-rescue*.sh, its OS being the live
# kernel and initramfs booted by GRUB with `ironclone.job=UUID=<root>:os/init.sh`: the live
# /init mounts the root partition read-write at /run/ironclone/job and runs os/init.sh
# there, which stands in for the installed system's init (a real OS would have systemd run
# the timer). The root (ext4) holds /boot/{vmlinuz,initrd.img} (what `rescue install`
# copies), /etc/hostname and os/init.sh.
#  - UEFI (default): GPT, FAT32 ESP with GRUB as the fallback loader (/boot/efi is its
#    mount point), root; grub.cfg is written once.
#  - BIOS (--bios): MBR, core.img in the post-MBR gap (with loadenv), root active. Its
#    grub.cfg is generated the way grub-mkconfig does it: os/update-grub.sh runs the
#    executable /etc/grub.d/* scripts in order (00_header, 10_installed, and the
#    42_ironclone-rescue that `rescue install` adds) into /boot/grub/grub.cfg. 00_header
#    has the next_entry handling of grub-mkconfig's header (load_env; a set next_entry
#    is this boot's default, cleared with save_env), which grub-reboot relies on;
#    /boot/grub/grubenv exists (GRUB can rewrite a file, not create one).
#  - --luks MIB (UEFI): a third, empty partition of MIB (type Linux LUKS) after the root,
#    for a test whose first boot makes it a LUKS root; the ext4 partition is then its
#    plain /boot (the Fedora layout: ESP, /boot, LUKS root).
# Usage: mk-rescue-os.sh [--bios | --luks MIB] OUT.img KERNEL INITRD INIT_SH ROOT_UUID
set -euo pipefail
source "$(dirname "$0")/lib.sh"
FW=uefi LUKS_MIB=0
[[ ${1:-} == --bios ]] && { FW=bios; shift; }
[[ ${1:-} == --luks ]] && { LUKS_MIB=${2:?--luks MIB}; shift 2; }
[[ $# -eq 5 ]] || m_die "usage: $0 [--bios | --luks MIB] OUT.img KERNEL INITRD INIT_SH ROOT_UUID"
OUT=$1 KERNEL=$2 INITRD=$3 INIT=$4 ROOT_UUID=$5
NAME=rescue-os
m_need_tools
for f in "$KERNEL" "$INITRD" "$INIT"; do [[ -f $f ]] || m_die "no file $f"; done

# The rescue entry's copy of the kernel and initramfs goes to the ESP (UEFI) or next to
# the OS's own in /boot (BIOS).
need_mib=$((($(stat -c %s "$KERNEL") + $(stat -c %s "$INITRD")) / 1048576 + 1))
ESP_MIB=$((need_mib + 40))
if [[ $FW == bios ]]; then ROOT_MIB=$((2 * need_mib + 32)); else ROOT_MIB=$((need_mib + 24)); fi
OS_CMDLINE="console=ttyS0,115200 panic=10 loglevel=4 ironclone.net=0 ironclone.settle=20 ironclone.job=UUID=$ROOT_UUID:os/init.sh"
# Under TCG on a loaded host the kernel's IO-APIC timer check can fail ("IO-APIC + timer
# doesn't work!", a panic seen at a load of 20 on 2 cores); a VM needs no such check.
[[ $FW == bios ]] && OS_CMDLINE+=" no_timer_check"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
d=$work/root
mkdir -p "$d/boot/grub" "$d/etc" "$d/os" "$d/var/lib"
cp "$KERNEL" "$d/boot/vmlinuz"
cp "$INITRD" "$d/boot/initrd.img"
cp "$INIT" "$d/os/init.sh"
echo "$NAME" >"$d/etc/hostname"
rm -f "$OUT"

if [[ $FW == uefi ]]; then
  ESP_START=2048
  ESP_END=$((ESP_START + ESP_MIB * 2048 - 1))
  ROOT_START=$((ESP_END + 1))
  ROOT_END=$((ROOT_START + ROOT_MIB * 2048 - 1))
  LUKS_END=$((ROOT_END + LUKS_MIB * 2048))
  SECTORS=$((LUKS_END + 1 + 2048))
  truncate -s $((SECTORS * 512)) "$OUT"
  luks=()
  ((LUKS_MIB > 0)) && luks=(-n "3:$((ROOT_END + 1)):$LUKS_END" -t 3:8309 -c 3:luksroot
    -u 3:1C0EC1A5-000A-4000-8000-000000000003)
  sgdisk -o -U 1C0EC1A5-0000-4000-8000-00000000000A \
    -n 1:$ESP_START:$ESP_END -t 1:EF00 -c 1:esp -u 1:1C0EC1A5-000A-4000-8000-000000000001 \
    -n 2:$ROOT_START:$ROOT_END -t 2:8300 -c 2:root -u 2:1C0EC1A5-000A-4000-8000-000000000002 \
    "${luks[@]}" "$OUT" >/dev/null || m_die "sgdisk failed"
  mkdir -p "$d/boot/efi"
  cat >"$d/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
menuentry 'installed system $NAME' {
  search --no-floppy --fs-uuid --set=root $ROOT_UUID
  echo 'ironclone: booting the installed system $NAME'
  linux /boot/vmlinuz $OS_CMDLINE
  initrd /boot/initrd.img
}
CFG
else
  ROOT_START=2048
  SECTORS=$((ROOT_START + ROOT_MIB * 2048))
  truncate -s $((SECTORS * 512)) "$OUT"
  sfdisk -q --no-reread --no-tell-kernel "$OUT" <<SF || m_die "sfdisk failed"
label: dos
label-id: 0x1c0ec1a5
start=$ROOT_START, size=$((ROOT_MIB * 2048)), type=83, bootable
SF
  mkdir -p "$d/etc/grub.d"
  cat >"$d/etc/grub.d/00_header" <<'HDR'
#!/bin/sh
cat <<'CFG'
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="0"
fi
set timeout=0
CFG
HDR
  cat >"$d/etc/grub.d/10_installed" <<ENTRY
#!/bin/sh
cat <<'CFG'
menuentry 'installed system $NAME' --id installed {
  search --no-floppy --fs-uuid --set=root $ROOT_UUID
  echo 'ironclone: booting the installed system $NAME'
  linux /boot/vmlinuz $OS_CMDLINE
  initrd /boot/initrd.img
}
CFG
ENTRY
  # update-grub of this OS: ROOT is where the installed root is mounted.
  cat >"$d/os/update-grub.sh" <<'UPD'
#!/bin/sh
# grub-mkconfig's loop: each executable /etc/grub.d script, in order, into grub.cfg.
set -eu
R=${1:?usage: update-grub.sh ROOT}
out="$R/boot/grub/grub.cfg"
: >"$out.new"
for s in "$R"/etc/grub.d/*; do
  if [ -x "$s" ]; then sh "$s" >>"$out.new"; fi
done
mv "$out.new" "$out"
UPD
  chmod 755 "$d/etc/grub.d/00_header" "$d/etc/grub.d/10_installed" "$d/os/update-grub.sh"
  sh "$d/os/update-grub.sh" "$d"
  grub-editenv "$d/boot/grub/grubenv" create || m_die "grub-editenv failed"
fi

truncate -s "${ROOT_MIB}M" "$work/root.ext4"
mkfs.ext4 -q -F -U "$ROOT_UUID" -L "$NAME" -O ^metadata_csum_seed,^orphan_file -d "$d" "$work/root.ext4" \
  || m_die "mkfs.ext4 failed"
m_place "$OUT" "$work/root.ext4" "$ROOT_START"
if [[ $FW == uefi ]]; then
  m_efi_img "$work/grubx64.efi" "$ROOT_UUID"
  m_esp "$work/esp.fat" "$ESP_MIB" "$ESP_START" "$work/grubx64.efi" ::/EFI/BOOT/BOOTX64.EFI
  m_place "$OUT" "$work/esp.fat" "$ESP_START"
  echo "machine $NAME: $OUT (GPT, ESP ${ESP_MIB} MiB, root ${ROOT_MIB} MiB UUID $ROOT_UUID)"
else
  m_core_img "$work/core.img" "$ROOT_UUID" loadenv
  m_install_bios_grub "$OUT" "$work/core.img" 1 $((ROOT_START - 1))
  echo "machine $NAME: $OUT (MBR, BIOS, root ${ROOT_MIB} MiB UUID $ROOT_UUID, core.img in the gap)"
fi
