# shellcheck shell=bash
# Shared pieces of the bootable test machines (sourced by mk-*.sh).
#
# Why this exists: the boot-repair code (src/bootfix) is only proven by booting the
# disks it repaired, so the machines must be real GRUB installs. grub-install cannot
# map loop partitions on the test hosts, so GRUB is laid down by hand here exactly the
# way grub-bios-setup does it (boot.img in the MBR with kernel_sector patched, core.img
# with its diskboot blocklist patched), and the EFI loader is a grub-mkimage image put
# on the ESP with mtools. Nothing is mounted; every filesystem is built in a sparse
# file and placed with dd.
set -euo pipefail

M_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
M_KERNEL="$M_ROOT/build/kernel/vmlinuz"
M_GRUB_PC=/usr/lib/grub/i386-pc
M_GRUB_EFI=/usr/lib/grub/x86_64-efi
# Everything GRUB needs is embedded in its image, so /boot/grub holds only grub.cfg.
M_GRUB_MODS_COMMON="part_gpt part_msdos ext2 fat search search_fs_uuid normal configfile
  linux echo serial terminal test sleep halt reboot ls cat"

m_die() { echo "machines: $*" >&2; exit 1; }

m_need_tools() {
  local t
  for t in grub-mkimage mkfs.ext4 mkfs.fat mmd mcopy mkntfs ntfscp sgdisk sfdisk cpio gzip busybox dd truncate; do
    command -v "$t" >/dev/null || m_die "missing tool '$t' (run scripts/setup.sh)"
  done
  [[ -f $M_GRUB_PC/boot.img ]] || m_die "missing $M_GRUB_PC/boot.img (grub-pc-bin)"
  [[ -d $M_GRUB_EFI ]] || m_die "missing $M_GRUB_EFI (grub-efi-amd64-bin)"
  bash "$M_ROOT/scripts/fetch-kernel.sh"
  [[ -f $M_KERNEL ]] || m_die "no kernel at $M_KERNEL"
  # busybox must be static: the initramfs has no libc.
  file -L "$(command -v busybox)" | grep -q 'statically linked' || m_die "busybox is not static (busybox-static)"
}

# m_initrd OUT NAME: a busybox initramfs whose /init prints the marker and powers off.
m_initrd() {
  local out=$1 name=$2 d
  d=$(mktemp -d)
  mkdir -p "$d/bin" "$d/dev" "$d/proc" "$d/sys"
  cp "$(command -v busybox)" "$d/bin/busybox"
  ln -s busybox "$d/bin/sh"
  cat >"$d/init" <<EOF
#!/bin/sh
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
/bin/busybox mount -t proc proc /proc
echo "IRONCLONE-MACHINE-OK $name" >/dev/ttyS0
echo "IRONCLONE-MACHINE-OK $name"
/bin/busybox sync
/bin/busybox poweroff -f
EOF
  chmod 755 "$d/init"
  (cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
  rm -rf "$d"
}

# m_initrd_runner OUT NAME BINARY SCRIPT: an initramfs that mounts proc/sys/devtmpfs and
# efivarfs (when booted with UEFI), runs SCRIPT (a file: shell commands, with BINARY
# at /bin/ironclone) and prints "IRONCLONE-RUNNER-DONE <name> rc=N" before powering off.
# This is how a test runs ironclone inside a firmware-booted Linux (e.g. to write
# Boot#### entries through efivarfs).
m_initrd_runner() {
  local out=$1 name=$2 bin=$3 script=$4 d kver
  d=$(mktemp -d)
  mkdir -p "$d/bin" "$d/dev" "$d/proc" "$d/sys" "$d/lib"
  cp "$(command -v busybox)" "$d/bin/busybox"
  ln -s busybox "$d/bin/sh"
  cp "$bin" "$d/bin/ironclone"
  cp "$script" "$d/job.sh"
  kver=$(cat "$M_ROOT/build/kernel/version")
  cp "$M_ROOT/build/kernel/lib/modules/$kver/kernel/fs/efivarfs/efivarfs.ko" "$d/lib/" 2>/dev/null || true
  cat >"$d/init" <<EOF
#!/bin/sh
export PATH=/bin
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
if [ -d /sys/firmware/efi ]; then
  /bin/busybox insmod /lib/efivarfs.ko 2>/dev/null
  /bin/busybox mount -t efivarfs efivarfs /sys/firmware/efi/efivars
fi
exec >/dev/ttyS0 2>&1
/bin/busybox sh -e -x /job.sh
echo "IRONCLONE-RUNNER-DONE $name rc=\$?"
/bin/busybox sync
/bin/busybox poweroff -f
EOF
  chmod 755 "$d/init"
  (cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
  rm -rf "$d"
}

# m_grub_cfg OUT NAME BOOT_UUID: menu on serial, kernel and initrd found by fs UUID.
m_grub_cfg() {
  cat >"$1" <<EOF
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set default=0
menuentry 'ironclone test machine $2' {
  search --no-floppy --fs-uuid --set=root $3
  echo 'ironclone: loading kernel of $2'
  linux /boot/vmlinuz console=ttyS0,115200 quiet panic=-1
  initrd /boot/initrd.img
}
EOF
}

# m_early_cfg OUT BOOT_UUID: embedded in core.img / the EFI image, finds /boot/grub by UUID.
m_early_cfg() {
  cat >"$1" <<EOF
search --no-floppy --fs-uuid --set=root $2
set prefix=(\$root)/boot/grub
EOF
}

# m_boot_fs OUT SIZE_MIB UUID NAME [INITRD]: ext4 holding /boot/{vmlinuz,initrd.img,grub/grub.cfg}
# (the marker initramfs unless INITRD is given).
m_boot_fs() {
  local out=$1 size=$2 uuid=$3 name=$4 initrd=${5:-} d
  d=$(mktemp -d)
  mkdir -p "$d/boot/grub"
  cp "$M_KERNEL" "$d/boot/vmlinuz"
  if [[ -n $initrd ]]; then cp "$initrd" "$d/boot/initrd.img"; else m_initrd "$d/boot/initrd.img" "$name"; fi
  m_grub_cfg "$d/boot/grub/grub.cfg" "$name" "$uuid"
  echo "$name" >"$d/etc-machine-name"
  rm -f "$out"
  truncate -s "${size}M" "$out"
  # GRUB 2.06 predates metadata_csum_seed/orphan_file defaults of e2fsprogs 1.47.
  mkfs.ext4 -q -F -U "$uuid" -L "${name:0:16}" -O ^metadata_csum_seed,^orphan_file -d "$d" "$out" \
    || m_die "mkfs.ext4 failed for $out"
  rm -rf "$d"
}

# m_core_img OUT BOOT_UUID [MODULES]: GRUB i386-pc core.img with the early config embedded
# (MODULES: more than the common set, e.g. loadenv for grubenv).
m_core_img() {
  local out=$1 uuid=$2 extra=${3:-} cfg
  cfg=$(mktemp)
  m_early_cfg "$cfg" "$uuid"
  # shellcheck disable=SC2086
  grub-mkimage -O i386-pc -d "$M_GRUB_PC" -c "$cfg" -p /boot/grub -o "$out" biosdisk $M_GRUB_MODS_COMMON $extra \
    || m_die "grub-mkimage i386-pc failed"
  rm -f "$cfg"
}

# m_efi_img OUT BOOT_UUID: GRUB x86_64-efi loader with the early config embedded.
m_efi_img() {
  local out=$1 uuid=$2 cfg
  cfg=$(mktemp)
  m_early_cfg "$cfg" "$uuid"
  # shellcheck disable=SC2086
  grub-mkimage -O x86_64-efi -d "$M_GRUB_EFI" -c "$cfg" -p /boot/grub -o "$out" $M_GRUB_MODS_COMMON \
    || m_die "grub-mkimage x86_64-efi failed"
  rm -f "$cfg"
}

# m_put_u64 FILE BYTE_OFFSET VALUE / m_put_u16: little-endian patches in place.
m_put_u64() {
  local v=$3 i bytes=""
  for i in 0 1 2 3 4 5 6 7; do bytes+=$(printf '\\x%02x' $(((v >> (8 * i)) & 255))); done
  printf '%b' "$bytes" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
m_put_u16() {
  printf '%b' "$(printf '\\x%02x\\x%02x' $(($3 & 255)) $((($3 >> 8) & 255)))" \
    | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# m_install_bios_grub DISK CORE_IMG CORE_LBA MAX_SECTORS
# What grub-bios-setup does for an embedded core.img: boot.img into the MBR (the
# partition table area 0x1B8..0x1FF of DISK is kept), kernel_sector (0x5C) = CORE_LBA,
# the "drive check" jump at 0x66 turned into NOPs for hard disks, and core.img's first
# blocklist (at 0x1F4 of its first sector: start u64, len u16, segment u16) pointing at
# CORE_LBA+1 for the remaining sectors.
m_install_bios_grub() {
  local disk=$1 core=$2 lba=$3 max=$4 sectors tmpc
  sectors=$((($(stat -c %s "$core") + 511) / 512))
  ((sectors <= max)) || m_die "core.img is $sectors sectors, only $max fit at LBA $lba"
  dd if="$M_GRUB_PC/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
  m_put_u64 "$disk" $((0x5C)) "$lba"
  printf '\x90\x90' | dd of="$disk" bs=1 seek=$((0x66)) conv=notrunc status=none
  tmpc=$(mktemp)
  cp "$core" "$tmpc"
  truncate -s $((sectors * 512)) "$tmpc"
  m_put_u64 "$tmpc" $((0x1F4)) $((lba + 1))
  m_put_u16 "$tmpc" $((0x1FC)) $((sectors - 1))
  m_put_u16 "$tmpc" $((0x1FE)) $((0x820))
  dd if="$tmpc" of="$disk" bs=512 seek="$lba" conv=notrunc status=none
  rm -f "$tmpc"
}

# m_esp OUT SIZE_MIB START_LBA LOADER DEST...: FAT32 ESP (hidden sectors = START_LBA)
# holding LOADER at each DEST (mtools paths like ::/EFI/BOOT/BOOTX64.EFI).
m_esp() {
  local out=$1 size=$2 start=$3 loader=$4 dest dir
  shift 4
  rm -f "$out"
  mkfs.fat -F 32 -S 512 -s 1 -h "$start" -n ESP -i 1c0ec1a5 -C "$out" $((size * 1024)) >/dev/null \
    || m_die "mkfs.fat failed"
  for dest in "$@"; do
    dir=$(dirname "${dest#::}")
    local acc="" part
    IFS=/ read -ra parts <<<"${dir#/}"
    for part in "${parts[@]}"; do
      acc+="/$part"
      mmd -D s -i "$out" "::$acc" 2>/dev/null || true
    done
    mcopy -o -i "$out" "$loader" "$dest" || m_die "mcopy $loader -> $dest failed"
  done
}

# m_place DISK PART_IMG START_LBA: write a filesystem image into the disk at a sector.
m_place() {
  dd if="$2" of="$1" bs=1M oflag=seek_bytes seek=$(($3 * 512)) conv=notrunc,sparse status=none
}
