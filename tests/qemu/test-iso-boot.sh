#!/usr/bin/env bash
# The hybrid ISO boots, with no keyboard, in the three ways a rescuer uses it:
#   SeaBIOS from CD, SeaBIOS from a USB disk (the ISO dd'd), OVMF (UEFI) from a USB disk.
# GRUB sees the partition labelled IRONCLONE-JOB (on SATA, virtio, NVMe in turn) and picks the
# unattended entry; the job records, on that disk, `ironclone --version` run in the VM, the boot
# device /init detected (the medium must be recognised so it is never offered as a target) and
# whether the firmware was UEFI. The host reads it back with debugfs.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
ISO="${IRONCLONE_ISO:-$ROOT/build/ironclone.iso}"
[[ -f "$ISO" ]] || fail "$ISO missing (make iso)"
size=$(stat -c %s "$ISO")
((size < 64 * 1024 * 1024)) || fail "ISO is $size bytes, over 64 MiB"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

boot_case() { # name boot firmware job-disk-bus expected-boot-device-prefix expected-efi
	local name="$1" boot="$2" fw="$3" bus="$4" want_dev="$5" want_efi="$6" log start info
	make_job_disk "$tmp/$name.img" IRONCLONE-JOB ironclone/job.sh <<'JOB'
#!/bin/sh
set -e
ironclone --version >"$IRONCLONE_JOB_DIR/version.txt"
cat /run/ironclone/boot-device >"$IRONCLONE_JOB_DIR/boot-device.txt"
if [ -d /sys/firmware/efi ]; then echo efi; else echo bios; fi >"$IRONCLONE_JOB_DIR/firmware.txt"
# The tools a restore of XFS, btrfs, LVM and LUKS calls, with their kernel modules: each
# made, mounted, written and checked on a sparse file in RAM. A missing library or
# module fails here, not in a rescuer's restore.
t=/tmp/fs-tools
mkdir -p $t/m
modprobe xfs
modprobe btrfs
modprobe dm-crypt
truncate -s 320M $t/x.img
mkfs.xfs -q $t/x.img
mount -o loop $t/x.img $t/m
echo xfs >$t/m/f
xfs_growfs -n $t/m >/dev/null
xfsdump -J -L t -M t -l 0 - $t/m 2>/dev/null | xfsrestore -J -t - >/dev/null 2>&1
umount $t/m
xfs_repair -n $t/x.img >/dev/null 2>&1
rm $t/x.img
truncate -s 256M $t/b.img
mkfs.btrfs -q $t/b.img
mount -o loop $t/b.img $t/m
echo btrfs >$t/m/f
btrfs filesystem resize max $t/m >/dev/null
umount $t/m
btrfs check --readonly $t/b.img >/dev/null 2>&1
rm $t/b.img
lvm version >/dev/null
cryptsetup --version >/dev/null
# serve-boot's server and the address it reads (busybox ip).
dnsmasq --version >/dev/null
ip -o -4 addr show dev lo | grep -q 'inet 127.0.0.1/8'
echo ok >"$IRONCLONE_JOB_DIR/fs-tools.txt"
JOB
	log="$LOGDIR/iso-$name.log"
	start=$(date +%s)
	"$RUNVM" --iso "$ISO" --boot "$boot" --firmware "$fw" --disk "$tmp/$name.img,if=$bus" \
		--timeout 200 --log "$log" || fail "$name: ISO boot/job failed (serial log: $log)"
	echo "$name: boot+job took $(($(date +%s) - start)) s"
	grep -aq 'GNU GRUB' "$log" || fail "$name: GRUB menu not seen on the serial console ($log)"
	grep -aq '^IRONCLONE-LIVE-READY ironclone' "$log" || fail "$name: no live marker ($log)"
	expect_in "$(disk_cat "$tmp/$name.img" version.txt)" "ironclone " "$name: version"
	info="$(disk_cat "$tmp/$name.img" boot-device.txt)"
	[[ "$info" == "$want_dev"* ]] || fail "$name: boot device '$info', want $want_dev*"
	expect_in "$(disk_cat "$tmp/$name.img" firmware.txt)" "$want_efi" "$name: firmware"
	expect_in "$(disk_cat "$tmp/$name.img" fs-tools.txt)" "ok" "$name: XFS, btrfs, LVM and LUKS tools"
	rm -f "$tmp/$name.img"
}

boot_case bios-cd cd bios sata /dev/sr bios
boot_case bios-usb usb bios virtio /dev/sd bios
boot_case uefi-usb usb uefi nvme /dev/sd efi
echo "PASS: ISO boots (SeaBIOS CD, SeaBIOS USB, OVMF USB), $((size / 1024 / 1024)) MiB"
