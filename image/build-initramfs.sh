#!/usr/bin/env bash
# Builds the live initramfs (build/initramfs.img, zstd-compressed newc cpio) from what is installed
# on this Debian host, offline: busybox-static, the reference tools ironclone calls (with their
# shared libraries, found by ldd), GRUB's platform modules for boot repair, the storage and
# filesystem kernel modules from build/kernel (closure over modules.dep, re-depmod'ed so busybox
# modprobe can resolve them), the shared /init and its helpers, and the ironclone binary.
#
# usage: build-initramfs.sh BIN OUT [BUILD_ID]
#   BIN       the static ironclone binary
#   OUT       output path of the compressed cpio
#   BUILD_ID  identifies the boot medium (written to the ISO too); random when absent
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${1:?usage: build-initramfs.sh BIN OUT [BUILD_ID]}"
OUT="${2:?usage: build-initramfs.sh BIN OUT [BUILD_ID]}"
BUILD_ID="${3:-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}"
KDIR="${KERNEL_DIR:-$ROOT/build/kernel}"
KVER="$(cat "$KDIR/version")"
STAGE="${STAGE_DIR:-$ROOT/build/initramfs-root}"

die() { echo "build-initramfs: $*" >&2; exit 1; }
[[ -x "$BIN" ]] || die "ironclone binary $BIN missing (run make build)"
[[ -d "$KDIR/lib/modules/$KVER" ]] || die "kernel modules missing in $KDIR (run scripts/fetch-kernel.sh)"

rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,usr/lib,etc,proc,sys,dev,run,tmp,mnt,root}
chmod 1777 "$STAGE/tmp"

# --- ldd-based copier ---------------------------------------------------------------------------
copy_file() { # copy $1 to the same path in the stage, dereferencing symlinks
	local dst="$STAGE$1"
	[[ -e "$dst" ]] && return 0
	mkdir -p "$(dirname "$dst")"
	cp -L "$1" "$dst"
}
copy_with_libs() { # $1 = absolute path of an executable
	local exe="$1" lib
	[[ -x "$exe" ]] || die "tool $exe is missing (run scripts/setup.sh)"
	copy_file "$exe"
	# ldd prints "name => /path (addr)" or "/lib64/ld-linux... (addr)"; statically linked
	# binaries print "not a dynamic executable" and need nothing.
	while read -r lib; do
		[[ -n "$lib" ]] && copy_file "$lib"
	done < <(ldd "$exe" 2>/dev/null | awk '/=> \//{print $3} /^[ \t]*\/[^ ]+ \(/{print $1}')
}

TOOLS=(
	resize2fs e2fsck mke2fs dumpe2fs debugfs tune2fs e2label
	ntfsresize ntfs-3g ntfsfix ntfsinfo ntfscat ntfscp ntfslabel mkntfs hivexsh
	sfdisk sgdisk partx blkid lsblk wipefs blockdev
	mkfs.fat fsck.fat fatlabel mtools
	mkfs.exfat fsck.exfat
	mkfs.xfs xfs_growfs xfs_repair xfs_db xfsdump xfsrestore
	btrfs mkfs.btrfs lvm cryptsetup
	# thin_check: lvm2 runs it before it activates a thin pool; thin_delta: changed blocks.
	dmsetup thin_delta thin_check thin_dump thin_repair thin_restore cache_check
	grub-install grub-mkimage grub-probe grub-editenv efibootmgr
	mount umount losetup findmnt
	# mkswap: a Clonezilla image's swap LV gets its saved UUID back (busybox's has no -U).
	mkswap
	dnsmasq
	udp-sender udp-receiver
	qemu-img qemu-storage-daemon
	# Clonezilla images compressed with -z3, -z6 or -z7 (src/foreign/tool_decode.rs).
	lzop lzip lrzip
	# sftp:// repositories: opendal's SFTP drives the ssh client; the TUI checks host keys
	# with ssh-keyscan and ssh-keygen.
	ssh ssh-keyscan ssh-keygen
)
for t in "${TOOLS[@]}"; do
	p="$(command -v "$t" || true)"
	[[ -n "$p" ]] || die "tool $t not found on the host (run scripts/setup.sh)"
	copy_with_libs "$(readlink -f "$p")"
	# Keep the name the restore calls even when the host file is a symlink (mkfs.fat etc).
	real="$(readlink -f "$p")"
	if [[ "$(basename "$real")" != "$t" ]]; then
		ln -sf "$(basename "$real")" "$STAGE$(dirname "$real")/$t"
	fi
done
for m in mcopy mdir mmd mtype mdel mlabel mattrib mformat mrd mren; do
	ln -sf mtools "$STAGE/usr/bin/$m"
done
# mtools converts FAT short names through glibc's iconv (code page 850 by default); without
# its gconv modules every mdir/mcopy fails with "Error converting to codepage 850", and with
# it the ESP repair of a restore. The cache names the modules, only the code pages are needed.
GCONV=/usr/lib/x86_64-linux-gnu/gconv
for f in gconv-modules gconv-modules.cache IBM850.so IBM437.so; do
	[[ -f "$GCONV/$f" ]] || die "$GCONV/$f missing (glibc's gconv modules, package libc6)"
	copy_file "$GCONV/$f"
done
for f in "$GCONV"/gconv-modules.d/*.conf; do copy_file "$f"; done
# CA certificates: opendal's HTTP client (built for S3, and for SFTP too) panics with "No CA
# certificates were loaded from the system" without them (package ca-certificates).
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || die "/etc/ssl/certs/ca-certificates.crt missing (package ca-certificates)"
copy_file /etc/ssl/certs/ca-certificates.crt
# mkfs.ext4 and friends are mke2fs under another name; fsck.vfat likewise.
for n in mkfs.ext2 mkfs.ext3 mkfs.ext4; do ln -sf mke2fs "$STAGE/usr/sbin/$n"; done
for n in fsck.ext2 fsck.ext3 fsck.ext4; do ln -sf e2fsck "$STAGE/usr/sbin/$n"; done
ln -sf fsck.fat "$STAGE/usr/sbin/fsck.vfat"
ln -sf mkfs.fat "$STAGE/usr/sbin/mkfs.vfat"
ln -sf ../bin/ntfs-3g "$STAGE/usr/sbin/mount.ntfs-3g"
# lvm2's commands are one binary answering to its name (for the rescuer's shell).
for n in pvs vgs lvs pvdisplay vgdisplay lvdisplay pvscan vgscan lvscan pvck pvcreate pvresize \
	vgcreate vgchange vgcfgbackup vgcfgrestore vgextend lvcreate lvextend lvresize lvreduce; do
	ln -sf lvm "$STAGE/usr/sbin/$n"
done

# GRUB platform files for boot repair (grub-install reads /usr/lib/grub/<platform>).
for plat in i386-pc x86_64-efi; do
	mkdir -p "$STAGE/usr/lib/grub/$plat"
	find "/usr/lib/grub/$plat" -maxdepth 1 -type f -exec cp {} "$STAGE/usr/lib/grub/$plat/" \;
done
mkdir -p "$STAGE/usr/share/grub" "$STAGE/boot/grub"
cp /usr/share/grub/*.pf2 "$STAGE/usr/share/grub/" 2>/dev/null || true

# glibc without ld.so.cache still searches the multiarch dirs, but a cache makes it explicit.
printf '%s\n' /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 >"$STAGE/etc/ld.so.conf"
ldconfig -r "$STAGE" 2>/dev/null || true

# --- busybox (applets only where no real tool was copied) -------------------------------------
cp /bin/busybox "$STAGE/bin/busybox"
file -L "$STAGE/bin/busybox" | grep -Eq 'statically linked|static-pie' || die "/bin/busybox is not static (install busybox-static)"
while read -r applet; do
	case "$applet" in */linuxrc | */busybox) continue ;; esac
	name="$(basename "$applet")"
	found=""
	for d in bin sbin usr/bin usr/sbin; do
		[[ -e "$STAGE/$d/$name" || -L "$STAGE/$d/$name" ]] && found=1
	done
	[[ -n "$found" ]] && continue
	mkdir -p "$STAGE/$(dirname "$applet")"
	ln -s /bin/busybox "$STAGE/$applet"
done < <("$STAGE/bin/busybox" --list-full)

# --- kernel modules -----------------------------------------------------------------------------
# The storage/filesystem/network set: whole driver families for disks a rescuer meets (SATA/PATA, USB
# storage, NVMe, MMC, common RAID/virtual HBAs) plus the named modules /init loads; dm-snapshot
# and dm-thin-pool (lvm2 loads them itself) for LVM snapshots (scheduled backups, issue 23).
KSRC="$KDIR/lib/modules/$KVER"
KDST="$STAGE/lib/modules/$KVER"
mkdir -p "$KDST"
want_paths() {
	awk -F: '{print $1}' "$KSRC/modules.dep" | grep -E \
		'^kernel/drivers/(ata|nvme/host|usb/storage|usb/host|mmc/(core|host)|block/virtio_blk|scsi/(sd_mod|sr_mod|virtio_scsi|vmw_pvscsi|hv_storvsc|mpt3sas|megaraid|hpsa|smartpqi|aacraid|mptspi|mptsas|mptbase|mptscsih|scsi_transport_sas|scsi_transport_spi|raid_class)|virtio/|hid/(hid|hid-generic|usbhid/usbhid)\.ko|input/(serio|keyboard/atkbd)|cdrom|hv/|xen/|block/xen-blkfront|nvdimm|md/dm-mod|block/loop)' || true
	awk -F: '{print $1}' "$KSRC/modules.dep" | grep -E \
		'^kernel/(fs/(ext4|jbd2|mbcache|fat|exfat|fuse|isofs|nls|efivarfs|ntfs3|xfs|btrfs)|drivers/md/(dm-crypt|dm-snapshot|dm-thin-pool)|crypto/(crc32c|xts|essiv|af_alg|algif_skcipher|algif_hash)|arch/x86/crypto/crc32c|lib/(crc|libcrc32c))' || true
	# Network shares: wired NICs a rescuer meets (virtual, Intel, Realtek, Broadcom), the SMB
	# client and NFS, and the crypto cifs names as softdeps (busybox modprobe ignores softdeps,
	# /init loads them by name).
	awk -F: '{print $1}' "$KSRC/modules.dep" | grep -E \
		'^kernel/(drivers/net/(virtio_net|ethernet/intel/(e1000/e1000|e1000e/e1000e|igb/igb)|ethernet/realtek/r8169|ethernet/broadcom/tg3)\.ko|fs/smb/|fs/nfs/(nfs|nfsv4)\.ko|crypto/(ecb|cmac|ccm|gcm|ctr|seqiv|ghash-generic|gf128mul|sha512_generic|des_generic)\.ko|arch/x86/crypto/(aesni-intel|ghash-clmulni-intel|sha512-ssse3)\.ko)' || true
}
declare -A seen=()
add_module() { # $1 = path relative to KSRC, with its dependencies from modules.dep
	local rel="$1" dep
	[[ -n "${seen[$rel]:-}" ]] && return 0
	seen[$rel]=1
	mkdir -p "$KDST/$(dirname "$rel")"
	cp "$KSRC/$rel" "$KDST/$rel"
	# shellcheck disable=SC2013 # modules.dep lists paths without blanks, split on purpose
	for dep in $(grep -E "^${rel//./\\.}:" "$KSRC/modules.dep" | cut -d: -f2-); do
		add_module "$dep"
	done
}
while read -r rel; do add_module "$rel"; done < <(want_paths | sort -u)
cp "$KSRC"/modules.{order,builtin,builtin.modinfo} "$KDST/" 2>/dev/null || true
depmod -b "$STAGE" "$KVER"

# --- /init, helpers, identity -------------------------------------------------------------------
install -m 0755 "$ROOT/initramfs/init" "$STAGE/init"
install -m 0755 "$ROOT"/initramfs/sbin/* "$STAGE/usr/sbin/"
install -m 0755 "$BIN" "$STAGE/usr/bin/ironclone"
# Debug symbols are for the developer's copy; the medium stays small.
strip "$STAGE/usr/bin/ironclone" 2>/dev/null || true
"$BIN" --version | head -n1 >"$STAGE/etc/ironclone-version"
echo "$BUILD_ID" >"$STAGE/etc/ironclone-build-id"
echo 'root:x:0:0:root:/root:/bin/sh' >"$STAGE/etc/passwd"
echo 'root:x:0:' >"$STAGE/etc/group"
ln -sf /proc/mounts "$STAGE/etc/mtab"
echo ironclone >"$STAGE/etc/hostname"
# No udev here (see initramfs/init): lvm2 must make its /dev nodes itself and not wait
# for udev to confirm them, or every LV it activates is "not found" (a restore of an
# LVM machine, and a rescuer's `vgchange -ay` in the shell).
mkdir -p "$STAGE/etc/lvm"
cat >"$STAGE/etc/lvm/lvm.conf" <<'LVMCONF'
devices {
	obtain_device_list_from_udev = 0
}
activation {
	udev_sync = 0
	udev_rules = 0
}
LVMCONF
# The kernel opens /dev/console for PID 1 before devtmpfs is mounted.
mknod -m 600 "$STAGE/dev/console" c 5 1
mknod -m 666 "$STAGE/dev/null" c 1 3

mkdir -p "$(dirname "$OUT")"
(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet --reproducible) |
	zstd -q -T0 -12 -f -o "$OUT"
echo "build-initramfs: $OUT ($(du -h "$OUT" | cut -f1), $(du -sh "$STAGE" | cut -f1) unpacked, build id $BUILD_ID)"
