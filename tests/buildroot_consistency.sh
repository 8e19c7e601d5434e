#!/usr/bin/env bash
# Checks the BR2_EXTERNAL tree (buildroot-config/), which cannot be built here (no internet):
#   1. every BR2_ symbol in the defconfig and Config.in files is spelled as Buildroot spells it
#      (KNOWN below was checked against buildroot/buildroot's Config.in files at commit
#      e991fa071605a78c17adba2ed26e07c3b8c95583, 2026-08; BR2_TOOLCHAIN_BUILDROOT_GLIBC and
#      BR2_PACKAGE_LVM2_STANDARD_INSTALL against toolchain/toolchain-buildroot/Config.in and
#      package/lvm2/Config.in, 2026-12), or is defined by this tree;
#   2. every file the defconfig, .mk and scripts reference exists;
#   3. the rootfs /init is the shared initramfs/init (installed by post-build.sh), not a copy;
#   4. the cargo package uses the cargo infrastructure and Cargo.lock is committed.
# usage: tests/buildroot_consistency.sh [TREE]   (TREE defaults to buildroot-config/)
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TREE="${1:-$ROOT/buildroot-config}"
TOP="$TREE/.."
errors=0
err() { echo "buildroot-consistency: $*" >&2; errors=$((errors + 1)); }

KNOWN="
BR2_x86_64 BR2_TOOLCHAIN_BUILDROOT BR2_TOOLCHAIN_BUILDROOT_MUSL BR2_TOOLCHAIN_BUILDROOT_GLIBC
BR2_TOOLCHAIN_BUILDROOT_CXX BR2_PACKAGE_LVM2_STANDARD_INSTALL
BR2_TARGET_GENERIC_HOSTNAME BR2_TARGET_GENERIC_ISSUE BR2_TARGET_GENERIC_GETTY BR2_INIT_BUSYBOX
BR2_ROOTFS_DEVICE_CREATION_DYNAMIC_DEVTMPFS BR2_ROOTFS_OVERLAY BR2_ROOTFS_POST_BUILD_SCRIPT
BR2_ROOTFS_POST_IMAGE_SCRIPT
BR2_LINUX_KERNEL BR2_LINUX_KERNEL_LATEST_VERSION BR2_LINUX_KERNEL_USE_DEFCONFIG
BR2_LINUX_KERNEL_DEFCONFIG BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES BR2_LINUX_KERNEL_BZIMAGE
BR2_LINUX_KERNEL_NEEDS_HOST_LIBELF
BR2_PACKAGE_HOST_RUSTC BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS
BR2_PACKAGE_E2FSPROGS BR2_PACKAGE_E2FSPROGS_RESIZE2FS BR2_PACKAGE_E2FSPROGS_DEBUGFS
BR2_PACKAGE_E2FSPROGS_FSCK BR2_PACKAGE_E2FSPROGS_E2IMAGE BR2_PACKAGE_E2FSPROGS_FUSE2FS
BR2_PACKAGE_NTFS_3G BR2_PACKAGE_NTFS_3G_NTFSPROGS BR2_PACKAGE_NTFS_3G_ENCRYPTED
BR2_PACKAGE_XFSPROGS BR2_PACKAGE_BTRFS_PROGS BR2_PACKAGE_LVM2 BR2_PACKAGE_CRYPTSETUP BR2_PACKAGE_DNSMASQ
BR2_PACKAGE_DNSMASQ_TFTP BR2_PACKAGE_DNSMASQ_DHCP BR2_PACKAGE_QEMU BR2_PACKAGE_QEMU_TOOLS BR2_PACKAGE_LIBFUSE3
BR2_PACKAGE_UTIL_LINUX BR2_PACKAGE_UTIL_LINUX_BINARIES BR2_PACKAGE_UTIL_LINUX_LIBBLKID
BR2_PACKAGE_UTIL_LINUX_LIBFDISK BR2_PACKAGE_UTIL_LINUX_LIBMOUNT BR2_PACKAGE_UTIL_LINUX_LIBUUID
BR2_PACKAGE_UTIL_LINUX_LOSETUP BR2_PACKAGE_UTIL_LINUX_MOUNT BR2_PACKAGE_UTIL_LINUX_PARTX
BR2_PACKAGE_UTIL_LINUX_WIPEFS BR2_PACKAGE_UTIL_LINUX_FSCK
BR2_PACKAGE_GPTFDISK BR2_PACKAGE_GPTFDISK_SGDISK BR2_PACKAGE_GPTFDISK_GDISK
BR2_PACKAGE_DOSFSTOOLS BR2_PACKAGE_DOSFSTOOLS_FATLABEL BR2_PACKAGE_DOSFSTOOLS_FSCK_FAT
BR2_PACKAGE_DOSFSTOOLS_MKFS_FAT BR2_PACKAGE_MTOOLS BR2_PACKAGE_EXFATPROGS BR2_PACKAGE_EFIBOOTMGR
BR2_PACKAGE_UDPCAST BR2_PACKAGE_UDPCAST_SENDER BR2_PACKAGE_UDPCAST_RECEIVER
BR2_PACKAGE_LZOP BR2_PACKAGE_LZIP BR2_PACKAGE_LRZIP
BR2_TARGET_ROOTFS_CPIO BR2_TARGET_ROOTFS_CPIO_ZSTD BR2_TARGET_ROOTFS_CPIO_GZIP BR2_TARGET_ROOTFS_TAR
BR2_TARGET_GRUB2 BR2_TARGET_GRUB2_I386_PC BR2_TARGET_GRUB2_X86_64_EFI BR2_TARGET_GRUB2_INSTALL_TOOLS
BR2_TARGET_GRUB2_BUILTIN_MODULES_PC BR2_TARGET_GRUB2_BUILTIN_MODULES_EFI
BR2_PACKAGE_HOST_XORRISO BR2_PACKAGE_HOST_MTOOLS BR2_PACKAGE_HOST_DOSFSTOOLS BR2_PACKAGE_LIBXML2
BR2_PACKAGE_OPENSSH BR2_PACKAGE_OPENSSH_CLIENT BR2_PACKAGE_OPENSSH_KEY_UTILS BR2_PACKAGE_OPENSSH_SERVER BR2_PACKAGE_CA_CERTIFICATES
"

for f in external.desc Config.in external.mk configs/ironclone_x86_64_defconfig \
	package/ironclone/Config.in package/ironclone/ironclone.mk \
	board/ironclone/post-build.sh board/ironclone/post-image.sh board/ironclone/linux.fragment; do
	[[ -f "$TREE/$f" ]] || err "missing $f"
done
name="$(sed -n 's/^name: *//p' "$TREE/external.desc" 2>/dev/null)"
[[ "$name" == IRONCLONE ]] || err "external.desc name is '$name', want IRONCLONE (BR2_EXTERNAL_IRONCLONE_PATH)"

# Symbols defined by this tree.
own="$(grep -rhoE '^\s*(menu)?config BR2_[A-Za-z0-9_]+' "$TREE" --include='Config.in*' | awk '{print $2}')"
# 1. spelling. Defconfig: assignments and "# X is not set"; Config.in: select/depends/default.
used="$( (grep -hoE '^BR2_[A-Za-z0-9_]+=' "$TREE"/configs/*_defconfig | tr -d =
	grep -hoE '^# BR2_[A-Za-z0-9_]+ is not set' "$TREE"/configs/*_defconfig | awk '{print $2}'
	grep -rhE '^\s*(select|depends on|default|imply|if)\b' "$TREE" --include='Config.in*' | grep -oE 'BR2_[A-Za-z0-9_]+') | sort -u)"
for s in $used; do
	grep -qxF "$s" <<<"$own" && continue
	grep -qw -- "$s" <<<"$KNOWN" || err "symbol $s is not a Buildroot symbol known to this test (misspelled?)"
done
[[ -n "$used" ]] || err "no BR2_ symbols found in the defconfig"
# Every package of the tree is sourced from the top Config.in and defines its symbol.
for d in "$TREE"/package/*/; do
	p="$(basename "$d")"
	grep -q "package/$p/Config.in" "$TREE/Config.in" || err "package/$p/Config.in not sourced by Config.in"
done

# 2. referenced files: $(BR2_EXTERNAL_IRONCLONE_PATH)/... in the defconfig and .mk files.
# shellcheck disable=SC2016 # a literal $(BR2_EXTERNAL_IRONCLONE_PATH), as the defconfig has it
while read -r ref; do
	[[ -e "$TREE/$ref" ]] || err "defconfig references missing \$(BR2_EXTERNAL_IRONCLONE_PATH)/$ref"
done < <(grep -hoE '\$\(BR2_EXTERNAL_IRONCLONE_PATH\)/[^" ]+' "$TREE"/configs/*_defconfig | sed 's|^$(BR2_EXTERNAL_IRONCLONE_PATH)/||')
# Files the board scripts take from the checkout.
for rel in initramfs/init image/grub.cfg image/master-iso.sh Cargo.toml Cargo.lock; do
	[[ -f "$TOP/$rel" ]] || err "$rel missing at the top of the checkout"
done
grep -q 'image/master-iso.sh' "$TREE/board/ironclone/post-image.sh" || err "post-image.sh does not use the shared image/master-iso.sh"
grep -q 'image/grub.cfg' "$TREE/board/ironclone/post-image.sh" || err "post-image.sh does not use the shared image/grub.cfg"
for s in "$TREE"/board/ironclone/*.sh "$TOP/image/master-iso.sh"; do
	bash -n "$s" || err "shell syntax error in $s"
done

# 3. the shared init.
# shellcheck disable=SC2016 # literal shell text searched for in post-build.sh
if ! grep -qF '/../initramfs"' "$TREE/board/ironclone/post-build.sh" ||
	! grep -qF '"$SHARED/init" "$TARGET_DIR/init"' "$TREE/board/ironclone/post-build.sh"; then
	err "post-build.sh does not install the shared initramfs/init"
fi
if [[ -e "$TREE/board/ironclone/rootfs-overlay/init" ]]; then
	ovl="$TREE/board/ironclone/rootfs-overlay/init"
	[[ -L "$ovl" && "$(readlink -f "$ovl")" == "$(readlink -f "$TOP/initramfs/init")" ]] ||
		err "rootfs-overlay/init is a copy, not the shared initramfs/init"
fi
while IFS= read -r -d '' f; do
	cmp -s "$f" "$TOP/initramfs/init" && [[ ! -L "$f" ]] && err "$f duplicates initramfs/init (share it instead)"
done < <(find "$TREE" -type f -print0)

# 4. cargo package.
# shellcheck disable=SC2016 # a literal make expression searched for in ironclone.mk
grep -qF '$(eval $(cargo-package))' "$TREE/package/ironclone/ironclone.mk" || err "ironclone.mk does not use \$(eval \$(cargo-package))"
grep -q '^IRONCLONE_SITE' "$TREE/package/ironclone/ironclone.mk" || err "ironclone.mk sets no IRONCLONE_SITE"
git -C "$TOP" ls-files --error-unmatch Cargo.lock >/dev/null 2>&1 || err "Cargo.lock is not committed (Buildroot builds --locked)"

if ((errors)); then
	echo "buildroot-consistency: $errors problem(s) in $TREE" >&2
	exit 1
fi
echo "buildroot-consistency: ok ($(wc -w <<<"$used") symbols checked)"
