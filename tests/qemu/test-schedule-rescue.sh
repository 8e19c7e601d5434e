#!/usr/bin/env bash
# Scheduled backup through the rescue entry (issue 23), on a UEFI machine built by
# qemu/machines/mk-rescue-os.sh whose root is a plain ext4 partition mounted read-write,
# with a second disk for the repository. One QEMU process (reboots allowed, the OVMF
# variable store persists across them):
#  1. the installed system's first boot: `schedule init` to the second disk (by UUID),
#     `rescue install` (live kernel+initramfs onto the ESP, a Boot#### through efivarfs),
#     `schedule run` finds the root mounted read-write, sets BootNext, records the pending
#     rescue run; the OS reboots;
#  2. OVMF boots the rescue entry (the kernel's EFI stub with the command line from the load
#     option), whose unattended run images the disk to the repository, records the outcome on
#     the installed root and reboots;
#  3. BootNext was one-time: the installed system boots again and prints its schedule status.
# Then on the host: the repository verifies, and the image restored to a file passes
# e2fsck -fn on its root partition with the OS's marker file intact.
# RESCUE_BREAK=uuid installs the entry with a root UUID that does not exist (a negative
# control: the rescue run cannot find the system, reboots, and the OS's status reports the
# request as never answered, rc=1; the test must then FAIL).
# IRONCLONE_BUILD names the directory holding kernel/ and initramfs.img (default build/);
# the initramfs must be built from this tree (make iso): it carries the binary under test.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
source "$(dirname "$0")/lib-schedule.sh"
BUILD="${IRONCLONE_BUILD:-$ROOT/build}"
BIN="${IRONCLONE_BIN:-$ROOT/target/x86_64-unknown-linux-musl/release/ironclone}"
KERNEL="$BUILD/kernel/vmlinuz"
INITRD="$BUILD/initramfs.img"
[[ -f "$INITRD" && -f "$KERNEL" ]] || fail "$INITRD or $KERNEL missing (make iso)"
[[ -x "$BIN" ]] || fail "$BIN missing (make build)"
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
[[ -f $OVMF_CODE && -f $OVMF_VARS ]] || fail "OVMF missing (scripts/setup.sh)"
ROOT_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e000a
REPO_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e000b
# Normally the entry takes the UUID of the root it is installed from (read by ironclone).
UUID_ARG=""
[[ "${RESCUE_BREAK:-}" == uuid ]] && UUID_ARG="--root-uuid 6b1e0d2a-4c1f-4f6e-9a51-00000000dead"
tmp="$(mktemp -d)"
mnt=""
cleanup() {
	[[ -n $mnt ]] && umount "$mnt" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
t0=$SECONDS

# The installed system's init (runs as the live system's job, root mounted rw at $D).
cat >"$tmp/init.sh" <<INIT
#!/bin/sh
set -u
D="\${IRONCLONE_JOB_DIR:?}"
cd /
if [ ! -e "\$D/var/lib/ironclone/schedule-state.json" ]; then
	echo "IRONCLONE-OS: first boot"
	# No udev here and /dev/sdX follows probe order: find the disks by their IDs.
	rootdev=\$(blkid -c /dev/null -o device -t UUID=$ROOT_UUID)
	disk=/dev/\$(basename "\$(dirname "\$(readlink -f /sys/class/block/\${rootdev#/dev/})")")
	esp=\$(blkid -c /dev/null -o device -t PARTUUID=1c0ec1a5-000a-4000-8000-000000000001)
	echo "IRONCLONE-OS: root \$rootdev on \$disk, ESP \$esp"
	mount -t vfat "\$esp" "\$D/boot/efi" || echo "IRONCLONE-OS: cannot mount the ESP"
	ironclone schedule init --root "\$D" --repo uuid=$REPO_UUID:/repo --disks "\$disk" --budget 90% --calendar hourly
	ironclone rescue install --root "\$D" --esp "\$D/boot/efi" --kernel "\$D/boot/vmlinuz" \
		--initramfs "\$D/boot/initrd.img" $UUID_ARG --append console=ttyS0,115200 --append ironclone.net=0 --yes
	ironclone rescue status --root "\$D"
	ironclone schedule run --root "\$D" --no-reboot
	echo "IRONCLONE-OS: schedule run rc=\$?"
	ironclone schedule status --root "\$D"
	ironclone bootfix efi-list
	umount "\$D/boot/efi"
	sync
	mount -o remount,ro "\$D"
	echo "IRONCLONE-OS: rebooting"
	reboot -f
	sleep 30
fi
echo "IRONCLONE-OS: booted again"
ironclone schedule status --root "\$D" --json >/tmp/status.json
rc=\$?
cat /tmp/status.json
ironclone schedule status --root "\$D"
ironclone bootfix efi-list
echo "IRONCLONE-OS-STATUS rc=\$rc pending=\$(grep -c '"pending_rescue": {' /tmp/status.json) rescue=\$(grep -c '"rescue": true' /tmp/status.json)"
INIT

bash "$ROOT/qemu/machines/mk-rescue-os.sh" "$tmp/os.img" "$KERNEL" "$INITRD" "$tmp/init.sh" "$ROOT_UUID" >/dev/null
sched_repo_disk 384M "$REPO_UUID" schedule-rescue
cp "$OVMF_VARS" "$tmp/vars.fd"
echo "machine built in $((SECONDS - t0)) s; booting (log: $log)"

sched_boot_uefi 420 1024
echo "QEMU ran $((SECONDS - t0)) s"
out="$(tr -d '\r' <"$log")"

fails=0
check "first boot asked for the rescue entry with BootNext" "rescue run requested (BootNext=Boot"
check "the OS rebooted" "IRONCLONE-OS: rebooting"
check "the firmware booted the rescue entry, which ran the backup" "unattended: ironclone schedule run --rescue $ROOT_UUID"
check "the rescue run imaged the disk" "(rescue): read"
# The first boot reboots from its job (no result line); the rescue run and the last boot end ok.
check "the rescue run and the last boot succeeded" "IRONCLONE-RESULT: ok rc=0" 2
check "the installed system booted again" "IRONCLONE-OS: booted again"
check "its state records the rescue run as ok, nothing pending" "IRONCLONE-OS-STATUS rc=0 pending=0 rescue=1"
check "one first boot (no boot loop)" "IRONCLONE-OS: first boot" 1

# The repository on the host: verify, restore, e2fsck.
mnt="$tmp/repo-mnt"
mkdir -p "$mnt"
if mount -o ro,loop "$tmp/repo.img" "$mnt" 2>/dev/null && [[ -d $mnt/repo ]]; then
	img=$("$BIN" images "$mnt/repo" --json | sed -n 's/.*"name": *"\(rescue-os-sd[a-z]-[0-9-]*\)".*/\1/p' | head -n1)
	if [[ -n $img ]]; then
		echo "PASS: the repository holds $img"
		if "$BIN" verify "$mnt/repo" >"$tmp/verify.out" 2>&1; then echo "PASS: ironclone verify"; else
			sed 's/^/  | /' "$tmp/verify.out"; echo "FAIL: ironclone verify"; fails=$((fails + 1)); fi
		if sched_restored_root "$mnt/repo" "$img" 2 "$tmp/rootfs.img"; then
			sched_check_root "$tmp/rootfs.img" "the restored root" /os/init.sh "$tmp/init.sh"
		else
			echo "FAIL: ironclone restore"; fails=$((fails + 1))
		fi
	else
		echo "FAIL: no rescue-os-sdX-* image in the repository"; fails=$((fails + 1))
	fi
	umount "$mnt"
else
	echo "FAIL: no repository on the repository disk"; fails=$((fails + 1))
fi
mnt=""
echo "total $((SECONDS - t0)) s"
if ((fails > 0)); then
	tail -n 60 "$log" | sed 's/^/  | /'
	echo "FAIL: test-schedule-rescue ($fails checks failed)"
	exit 1
fi
echo "PASS: test-schedule-rescue"
