#!/bin/sh
# Buildroot post-image: lays out the ISO tree (kernel, cpio initramfs, the same GRUB menu as
# image/) and masters the USB-hybrid BIOS+UEFI image with the shared image/master-iso.sh,
# using the GRUB modules Buildroot built and its host grub-mkimage and xorriso.
# Result: $BINARIES_DIR/ironclone.iso (dd it to a stick, or burn it).
set -eu
TOP="$BR2_EXTERNAL_IRONCLONE_PATH/.."
TREE="$BUILD_DIR/ironclone-iso-root"
rm -rf "$TREE"
mkdir -p "$TREE/boot/grub" "$TREE/ironclone"
cp "$BINARIES_DIR/bzImage" "$TREE/boot/vmlinuz"
cp "$BINARIES_DIR/rootfs.cpio.zst" "$TREE/boot/initrd.img"
cp "$TOP/image/grub.cfg" "$TREE/boot/grub/grub.cfg"
cp "$BINARIES_DIR/ironclone-build-id" "$TREE/ironclone/build-id"
cp "$TARGET_DIR/etc/ironclone-version" "$TREE/ironclone/version"
PATH="$HOST_DIR/bin:$HOST_DIR/sbin:$PATH" \
	bash "$TOP/image/master-iso.sh" "$TREE" "$BINARIES_DIR/ironclone.iso" \
	"$TARGET_DIR/usr/lib/grub/i386-pc" "$TARGET_DIR/usr/lib/grub/x86_64-efi" \
	"$HOST_DIR/bin/grub-mkimage"
echo "post-image: $BINARIES_DIR/ironclone.iso"
