#!/bin/sh
# Buildroot post-build: installs THE SAME /init and helpers as the Debian-built ISO, straight
# from the checkout's initramfs/ (nothing is committed twice), and stamps the build id that ties
# this initramfs to the medium post-image.sh masters.
# Buildroot calls it with TARGET_DIR as $1 and exports BR2_EXTERNAL_IRONCLONE_PATH, BINARIES_DIR.
set -eu
TARGET_DIR="$1"
SHARED="$BR2_EXTERNAL_IRONCLONE_PATH/../initramfs"
[ -f "$SHARED/init" ] || { echo "post-build: $SHARED/init missing" >&2; exit 1; }
install -m 0755 "$SHARED/init" "$TARGET_DIR/init"
mkdir -p "$TARGET_DIR/usr/sbin"
for f in "$SHARED"/sbin/*; do
	install -m 0755 "$f" "$TARGET_DIR/usr/sbin/"
done
mkdir -p "$TARGET_DIR/mnt" "$TARGET_DIR/root" "$TARGET_DIR/run"
"$TARGET_DIR/usr/bin/ironclone" --version 2>/dev/null | head -n1 >"$TARGET_DIR/etc/ironclone-version" ||
	echo "ironclone (buildroot)" >"$TARGET_DIR/etc/ironclone-version"
id="$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
echo "$id" >"$TARGET_DIR/etc/ironclone-build-id"
mkdir -p "$BINARIES_DIR"
echo "$id" >"$BINARIES_DIR/ironclone-build-id"
