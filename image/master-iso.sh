#!/usr/bin/env bash
# Masters the USB-hybrid BIOS+UEFI ISO with xorriso, from an ISO tree that already holds
# /boot/vmlinuz, /boot/initrd.img, /boot/grub/grub.cfg and /ironclone/build-id.
# Shared by image/build-iso.sh (Debian GRUB) and the Buildroot post-image.sh (GRUB built by
# Buildroot), so both products have the same layout:
#   - BIOS CD: El Torito no-emulation image = GRUB i386-pc-eltorito core;
#   - BIOS USB: GRUB's boot_hybrid.img as MBR boot code, which chains the same core;
#   - UEFI CD: El Torito EFI entry pointing at a FAT image holding EFI/BOOT/BOOTX64.EFI;
#   - UEFI USB: the same FAT image appended as a GPT EFI system partition.
# (Buildroot's own iso9660 hybrid option is BIOS-only.)
#
# usage: master-iso.sh ISO_TREE OUT GRUB_PC_DIR GRUB_EFI_DIR [GRUB_MKIMAGE]
set -euo pipefail
TREE="${1:?usage: master-iso.sh ISO_TREE OUT GRUB_PC_DIR GRUB_EFI_DIR [GRUB_MKIMAGE]}"
OUT="${2:?}"
PC="${3:?}"
EFI="${4:?}"
MKIMAGE="${5:-grub-mkimage}"
for t in xorriso mkfs.vfat mmd mcopy "$MKIMAGE"; do
	command -v "$t" >/dev/null || { echo "master-iso: $t missing" >&2; exit 1; }
done
[[ -f "$PC/boot_hybrid.img" && -f "$PC/cdboot.img" ]] || { echo "master-iso: $PC lacks boot_hybrid.img/cdboot.img" >&2; exit 1; }
[[ -f "$EFI/kernel.img" ]] || { echo "master-iso: $EFI is not a GRUB x86_64-efi module dir" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The embedded config finds the medium by its build id, whichever disk it is, then reads the
# real menu from it.
id="$(cat "$TREE/ironclone/build-id")"
cat >"$tmp/embed.cfg" <<CFG
search --no-floppy --file --set=root /ironclone/build-id
set prefix=(\$root)/boot/grub
if [ -f (\$root)/ironclone/build-id ]; then
	configfile (\$root)/boot/grub/grub.cfg
fi
echo "ironclone: boot medium with build id $id not found"
CFG
MODS="search search_fs_file configfile normal linux echo test iso9660 part_gpt part_msdos fat ext2 exfat ntfs serial terminal all_video gzio zstd xzio"

mkdir -p "$TREE/boot/grub/i386-pc" "$TREE/boot/grub/x86_64-efi"
# Modules on the medium, so the menu can insmod what it needs at run time.
cp "$PC"/*.mod "$PC"/*.lst "$TREE/boot/grub/i386-pc/"
cp "$EFI"/*.mod "$EFI"/*.lst "$TREE/boot/grub/x86_64-efi/"

# shellcheck disable=SC2086 # MODS is a list of module names, split on purpose
"$MKIMAGE" -d "$PC" -O i386-pc-eltorito -p /boot/grub -c "$tmp/embed.cfg" \
	-o "$TREE/boot/grub/i386-pc/eltorito.img" biosdisk $MODS
# shellcheck disable=SC2086 # as above
"$MKIMAGE" -d "$EFI" -O x86_64-efi -p /boot/grub -c "$tmp/embed.cfg" \
	-o "$tmp/BOOTX64.EFI" $MODS

# FAT image sized to the EFI binary plus slack (El Torito caps it at 32 MiB).
kb=$(($(stat -c %s "$tmp/BOOTX64.EFI") / 1024 + 512))
truncate -s "${kb}K" "$tmp/efi.img"
mkfs.vfat -n IRONCLONE "$tmp/efi.img" >/dev/null
mmd -i "$tmp/efi.img" ::/EFI ::/EFI/BOOT
mcopy -i "$tmp/efi.img" "$tmp/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI

xorriso -as mkisofs -o "$OUT" -V IRONCLONE -R -J -quiet \
	--grub2-mbr "$PC/boot_hybrid.img" -partition_offset 16 \
	-b boot/grub/i386-pc/eltorito.img -no-emul-boot -boot-load-size 4 -boot-info-table --grub2-boot-info \
	-c boot/boot.cat \
	-append_partition 2 0xef "$tmp/efi.img" -appended_part_as_gpt \
	-eltorito-alt-boot -e --interval:appended_partition_2:all:: -no-emul-boot \
	"$TREE" 2>"$tmp/xorriso.log" || { cat "$tmp/xorriso.log" >&2; exit 1; }
