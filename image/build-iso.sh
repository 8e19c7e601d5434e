#!/usr/bin/env bash
# Builds build/ironclone.iso offline from Debian packages: the Debian kernel (build/kernel), the
# live initramfs (image/build-initramfs.sh), and GRUB for BIOS (El Torito + hybrid MBR boot code)
# and UEFI (an EFI system image, both as an El Torito EFI entry and as a GPT partition so a dd'd
# USB stick boots), mastered by image/master-iso.sh — shared with the Buildroot tree.
#
# usage: build-iso.sh BIN OUT
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${1:?usage: build-iso.sh BIN OUT}"
OUT="${2:?usage: build-iso.sh BIN OUT}"
start=$(date +%s)

bash "$ROOT/scripts/fetch-kernel.sh"
for t in grub-mkimage xorriso mkfs.vfat mcopy; do
	command -v "$t" >/dev/null || { echo "build-iso: $t missing (run scripts/setup.sh)" >&2; exit 1; }
done
for plat in i386-pc x86_64-efi; do
	[[ -d /usr/lib/grub/$plat ]] || { echo "build-iso: /usr/lib/grub/$plat missing (grub-pc-bin / grub-efi-amd64-bin)" >&2; exit 1; }
done

# One id ties this initramfs to this medium (see /init, boot-device detection).
BUILD_ID="$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
ISODIR="$ROOT/build/iso-root"
rm -rf "$ISODIR"
mkdir -p "$ISODIR/boot/grub" "$ISODIR/ironclone"
bash "$ROOT/image/build-initramfs.sh" "$BIN" "$ISODIR/boot/initrd.img" "$BUILD_ID"
cp "$ROOT/build/kernel/vmlinuz" "$ISODIR/boot/vmlinuz"
cp "$ROOT/image/grub.cfg" "$ISODIR/boot/grub/grub.cfg"
echo "$BUILD_ID" >"$ISODIR/ironclone/build-id"
"$BIN" --version | head -n1 >"$ISODIR/ironclone/version"
# A copy of the initramfs next to the ISO lets the QEMU harness boot kernel+initramfs directly.
cp "$ISODIR/boot/initrd.img" "$ROOT/build/initramfs.img"

mkdir -p "$(dirname "$OUT")"
# The same mastering script the Buildroot post-image.sh uses, so this build exercises it.
bash "$ROOT/image/master-iso.sh" "$ISODIR" "$OUT" /usr/lib/grub/i386-pc /usr/lib/grub/x86_64-efi grub-mkimage
size=$(stat -c %s "$OUT")
echo "build-iso: $OUT $((size / 1024 / 1024)) MiB in $(($(date +%s) - start)) s"
if ((size >= 64 * 1024 * 1024)); then
	echo "build-iso: $OUT is $size bytes, over the 64 MiB budget" >&2
	exit 1
fi
