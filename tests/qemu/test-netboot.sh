#!/usr/bin/env bash
# The live system boots over the network with nothing on the client's disks (issue 22):
# image/build-netboot.sh (what `make netboot` runs) makes the boot root from the ISO's
# kernel and initramfs, QEMU's user network serves it by TFTP with the printed boot file,
# and the client boots with SeaBIOS (PXE through the NIC's iPXE ROM) and with OVMF (its
# own network stack). GRUB's menu, fetched over TFTP, sees the job disk and starts the
# unattended entry; the job records the firmware and that no boot medium was found, and
# the host reads it back. A site.cfg on the server adds a kernel argument the job must
# see, so the server's choice of mode reaches the clients.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
KERNEL="$ROOT/build/kernel/vmlinuz" INITRD="$ROOT/build/initramfs.img"
[[ -f $KERNEL && -f $INITRD ]] || fail "$KERNEL or $INITRD missing (make iso)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

out=$(bash "$ROOT/image/build-netboot.sh" "$KERNEL" "$INITRD" "$tmp/netboot") || fail "build-netboot: $out"
echo "$out"
bios=$(sed -n 's/^bios: //p' <<<"$out")
uefi=$(sed -n 's/^uefi: //p' <<<"$out")
[[ -n $bios && -n $uefi ]] || fail "build-netboot did not print the bios:/uefi: boot files"
echo 'set ic_extra="ironclone.site=lab42"' >"$tmp/netboot/boot/grub/site.cfg"

netboot_case() { # name firmware bootfile what-the-job-sees
	local name=$1 fw=$2 file=$3 seen=$4 log start
	make_job_disk "$tmp/$name.img" IRONCLONE-JOB ironclone/job.sh <<'JOB'
#!/bin/sh
set -e
{ cat /run/ironclone/boot-device 2>/dev/null || echo none; } >"$IRONCLONE_JOB_DIR/boot-device.txt"
if [ -d /sys/firmware/efi ]; then echo efi; else echo bios; fi >"$IRONCLONE_JOB_DIR/firmware.txt"
tr ' ' '\n' </proc/cmdline | grep '^ironclone.site=' >"$IRONCLONE_JOB_DIR/site.txt"
JOB
	log="$LOGDIR/netboot-$name.log"
	start=$(date +%s)
	"$RUNVM" --netboot "$tmp/netboot=$file" --firmware "$fw" --disk "$tmp/$name.img,if=virtio" \
		--timeout 200 --log "$log" || fail "$name: network boot/job failed (serial log: $log)"
	echo "$name: network boot+job took $(($(date +%s) - start)) s"
	grep -aq 'GNU GRUB' "$log" || fail "$name: GRUB menu not seen ($log)"
	grep -aq '^IRONCLONE-LIVE-READY ironclone' "$log" || fail "$name: no live marker ($log)"
	expect_in "$(disk_cat "$tmp/$name.img" firmware.txt)" "$seen" "$name: firmware"
	expect_in "$(disk_cat "$tmp/$name.img" boot-device.txt)" "none" "$name: boot device"
	expect_in "$(disk_cat "$tmp/$name.img" site.txt)" "ironclone.site=lab42" "$name: the server's site.cfg"
}

netboot_case bios bios "$bios" bios
netboot_case uefi uefi "$uefi" efi
echo "PASS: network boot (SeaBIOS PXE, OVMF), the server's site.cfg applied"
