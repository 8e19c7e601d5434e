#!/usr/bin/env bash
# Scheduled backup through the rescue entry of a machine whose ROOT is on plain LUKS (issue
# 23; the Fedora/Arch guided layout: ESP, plain /boot, LUKS root without LVM). The machine
# is built by qemu/machines/mk-rescue-os.sh --luks: its "installed system" is the live
# kernel booted by GRUB with a job on the plain /boot partition, which opens the LUKS root
# with a test passphrase (the host has no device-mapper: the first boot creates the LUKS
# volume in the guest) and runs ironclone with --root on the opened mapping. One QEMU
# process under OVMF (its variable store persists across the reboots):
#  1. first boot: luksFormat + open + mkfs the root, `schedule init` to the second disk (by
#     UUID), `rescue install` (root on device-mapper: the entry names the ESP by its UUID,
#     `--rescue-boot`, and the schedule is mirrored to EFI/ironclone/), `schedule run` finds
#     partitions mounted read-write, writes the request to the mirror, sets BootNext; the
#     root is closed and the OS reboots;
#  2. OVMF boots the rescue entry: it mounts the ESP, reads the mirrored schedule and
#     request, images the disk (the LUKS partition raw, encrypted and whole) to the
#     repository disk, writes outcome.json on the ESP and reboots;
#  3. the installed system boots again: it prints the LUKS partition's sha256 before
#     opening it (what the rescue run read), opens it, e2fsck -fn, and `schedule status`
#     merges the outcome from the ESP into the state on the LUKS root.
# Then on the host: the repository verifies, the image restored to a file has the LUKS
# partition byte-identical (sha256) to the source at imaging time, and its /boot passes
# e2fsck -fn with the job script intact.
# RESCUE_BREAK=mirror removes the mirrored schedule.json after the request (a negative
# control: the rescue run records "no schedule configured" on the ESP, the installed
# system's status merges that failure, rc=1, no image; the test must then FAIL).
# RESCUE_BREAK=restored flips the first byte of the restored LUKS partition before it is
# compared (the byte-identity and LUKS-header checks must then FAIL; with ROOT_KIND=lvm,
# a byte of the restored LV's ext4 magic: its e2fsck and marker checks must FAIL).
# ROOT_KIND=lvm makes the root an LV on a plain PV in partition 3 instead (an LVM root
# without LUKS: the same mirror); the host then checks the LV's filesystem in the
# restored PV (e2fsck -fn, the marker file) instead of the byte identity.
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
BOOT_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e001a
OSROOT_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e001c
REPO_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e001b
# mk-rescue-os.sh's ESP: FAT volume id 1c0ec1a5.
ESP_UUID=1C0E-C1A5
BREAK=""
KIND="${ROOT_KIND:-luks}"
[[ $KIND == luks || $KIND == lvm ]] || fail "ROOT_KIND is luks or lvm"
# shellcheck disable=SC2016 # expanded in the guest's job, not here
[[ "${RESCUE_BREAK:-}" == mirror ]] && BREAK='rm -f "$R/boot/efi/EFI/ironclone/schedule.json"; echo "IRONCLONE-OS: BROKEN mirror"'
tmp="$(mktemp -d)"
mnt=""
cleanup() {
	[[ -n $mnt ]] && umount "$mnt" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
t0=$SECONDS

# The installed system's init: a job on the plain /boot ($D); its root is the LUKS volume,
# opened at $R with the test passphrase (a real OS's initramfs asks for it).
cat >"$tmp/init.sh" <<INIT
#!/bin/sh
set -u
D="\${IRONCLONE_JOB_DIR:?}"
R=/run/osroot
cd /
bootdev=\$(blkid -c /dev/null -o device -t UUID=$BOOT_UUID)
disk=/dev/\$(basename "\$(dirname "\$(readlink -f /sys/class/block/\${bootdev#/dev/})")")
esp=\$(blkid -c /dev/null -o device -t PARTUUID=1c0ec1a5-000a-4000-8000-000000000001)
luks=\${disk}3
echo "IRONCLONE-OS: /boot \$bootdev on \$disk, ESP \$esp, LUKS root \$luks"
modprobe dm-crypt 2>/dev/null
export LVM_SUPPRESS_FD_WARNINGS=1
KIND=$KIND
# The root's device opened (LUKS, with the passphrase) or activated (LVM): ROOTDEV.
dev_up() {
	if [ "\$KIND" = lvm ]; then
		lvm vgchange -q -ay vgos >/dev/null && ROOTDEV=/dev/mapper/vgos-root
	else
		printf 'test passphrase' | cryptsetup open --key-file - "\$luks" osroot && ROOTDEV=/dev/mapper/osroot
	fi
}
dev_down() {
	if [ "\$KIND" = lvm ]; then lvm vgchange -q -an vgos >/dev/null; else cryptsetup close osroot; fi
}
mount_root() {
	mkdir -p "\$R" && mount "\$ROOTDEV" "\$R" && mkdir -p "\$R/boot/efi" &&
		mount -t vfat "\$esp" "\$R/boot/efi"
}
close_root() {
	umount "\$R/boot/efi"
	umount "\$R"
	dev_down || echo "IRONCLONE-OS: the root's device not closed"
}
if [ -z "\$(blkid -c /dev/null -o value -s TYPE "\$luks")" ]; then
	echo "IRONCLONE-OS: first boot"
	if [ "\$KIND" = lvm ]; then
		lvm pvcreate -q -y "\$luks" >/dev/null && lvm vgcreate -q vgos "\$luks" >/dev/null &&
			lvm lvcreate -q -y -l 100%FREE -n root vgos >/dev/null || echo "IRONCLONE-OS: lvm failed"
		ROOTDEV=/dev/mapper/vgos-root
	else
		# PBKDF2 with few iterations: argon2's memory and time are not what is tested here.
		printf 'test passphrase' | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 \
			--pbkdf-force-iterations 1000 --key-file - "\$luks" || echo "IRONCLONE-OS: luksFormat failed"
		dev_up || echo "IRONCLONE-OS: open failed"
	fi
	mkfs.ext4 -q -F -U $OSROOT_UUID -L osroot "\$ROOTDEV" || echo "IRONCLONE-OS: mkfs failed"
	mount_root || echo "IRONCLONE-OS: cannot mount the root"
	mkdir -p "\$R/etc"
	echo rescue-os >"\$R/etc/hostname"
	dd if=/dev/urandom of="\$R/marker" bs=64k count=16 status=none
	echo "IRONCLONE-OS: marker \$(sha256sum "\$R/marker" | cut -d' ' -f1)"
	ironclone schedule init --root "\$R" --repo uuid=$REPO_UUID:/repo --disks "\$disk" --budget 90% --calendar hourly
	ironclone rescue install --root "\$R" --esp "\$R/boot/efi" --kernel "\$D/boot/vmlinuz" \
		--initramfs "\$D/boot/initrd.img" --append console=ttyS0,115200 --append ironclone.net=0 --yes
	ironclone rescue status --root "\$R"
	ironclone schedule run --root "\$R" --no-reboot
	echo "IRONCLONE-OS: schedule run rc=\$?"
	$BREAK
	ls "\$R/boot/efi/EFI/ironclone"
	ironclone schedule status --root "\$R"
	ironclone bootfix efi-list
	close_root
	sync
	mount -o remount,ro "\$D"
	echo "IRONCLONE-OS: rebooting"
	reboot -f
	sleep 30
fi
echo "IRONCLONE-OS: booted again"
# What the rescue run read: nothing has opened the volume since.
echo "IRONCLONE-OS: luks sha256 \$(sha256sum "\$luks" | cut -d' ' -f1)"
dev_up || echo "IRONCLONE-OS: cannot open the root's device"
e2fsck -fn "\$ROOTDEV" >/dev/null 2>&1 && echo "IRONCLONE-OS: the LUKS root is clean"
echo "IRONCLONE-OS: outcome on the ESP before status: \$(mount -o ro -t vfat "\$esp" /mnt 2>/dev/null && ls /mnt/EFI/ironclone | grep -c outcome; umount /mnt 2>/dev/null)"
mount_root || echo "IRONCLONE-OS: cannot mount the root"
ironclone schedule status --root "\$R" --json >/tmp/status.json
rc=\$?
cat /tmp/status.json
ironclone schedule status --root "\$R"
echo "IRONCLONE-OS: marker \$(sha256sum "\$R/marker" | cut -d' ' -f1)"
echo "IRONCLONE-OS: outcome left on the ESP: \$(ls "\$R/boot/efi/EFI/ironclone" | grep -c outcome)"
echo "IRONCLONE-OS-STATUS rc=\$rc pending=\$(grep -c '"pending_rescue": {' /tmp/status.json) rescue=\$(grep -c '"rescue": true' /tmp/status.json)"
close_root
INIT

bash "$ROOT/qemu/machines/mk-rescue-os.sh" --luks 40 "$tmp/os.img" "$KERNEL" "$INITRD" "$tmp/init.sh" "$BOOT_UUID" >/dev/null
sched_repo_disk 384M "$REPO_UUID" "schedule-rescue-$KIND"
cp "$OVMF_VARS" "$tmp/vars.fd"
echo "machine built in $((SECONDS - t0)) s; booting (log: $log)"

sched_boot_uefi 420 1024
echo "QEMU ran $((SECONDS - t0)) s"
out="$(tr -d '\r' <"$log")"

fails=0
check "first boot asked for the rescue entry with BootNext" "rescue run requested (BootNext=Boot"
check "the entry names the ESP (root on device-mapper)" "ironclone.run=schedule+run+--rescue-boot+$ESP_UUID"
check "the OS rebooted" "IRONCLONE-OS: rebooting"
check "the firmware booted the rescue entry, which ran the backup" "unattended: ironclone schedule run --rescue-boot $ESP_UUID"
check "the rescue run imaged the disk" "(rescue): read"
# The first boot reboots from its job (no result line); the rescue run and the last boot end ok.
check "the rescue run and the last boot succeeded" "IRONCLONE-RESULT: ok rc=0" 2
check "the installed system booted again" "IRONCLONE-OS: booted again"
check "the $KIND root opens and is clean after the rescue run" "IRONCLONE-OS: the LUKS root is clean"
check "the rescue run left its outcome on the ESP" "IRONCLONE-OS: outcome on the ESP before status: 1"
check "status merged it into the state on the $KIND root, nothing pending" "IRONCLONE-OS-STATUS rc=0 pending=0 rescue=1"
check "the merged outcome was removed from the ESP" "IRONCLONE-OS: outcome left on the ESP: 0"
check "one first boot (no boot loop)" "IRONCLONE-OS: first boot" 1
mapfile -t marks < <(sed -n 's/^IRONCLONE-OS: marker \([0-9a-f]\{64\}\)$/\1/p' <<<"$out")
if [[ ${#marks[@]} == 2 && ${marks[0]} == "${marks[1]}" ]]; then echo "PASS: the root's marker file is intact"; else
	echo "FAIL: marker hashes: ${marks[*]:-none}"; fails=$((fails + 1)); fi
luks_sum=$(sed -n 's/^IRONCLONE-OS: luks sha256 \([0-9a-f]\{64\}\)$/\1/p' <<<"$out" | tail -n1)

# cut_part DISK N OUT: partition N of DISK (an image file) into OUT.
cut_part() {
	local start size
	start=$(sfdisk -d "$1" | awk -F'[=,]' -v p="$(basename "$1")$2 :" 'index($0, p) {gsub(/ /,"",$2); print $2}')
	size=$(sfdisk -d "$1" | awk -F'[=,]' -v p="$(basename "$1")$2 :" 'index($0, p) {gsub(/ /,"",$4); print $4}')
	[[ -n $start && -n $size ]] || { echo "  | no partition $2 in $1"; return 1; }
	dd if="$1" of="$3" bs=512 skip="$start" count="$size" status=none
}

# The repository on the host: verify, restore, compare.
mnt="$tmp/repo-mnt"
mkdir -p "$mnt"
if mount -o ro,loop "$tmp/repo.img" "$mnt" 2>/dev/null && [[ -d $mnt/repo ]]; then
	img=$("$BIN" images "$mnt/repo" --json | sed -n 's/.*"name": *"\(rescue-os-sd[a-z]-[0-9-]*\)".*/\1/p' | head -n1)
	if [[ -n $img ]]; then
		echo "PASS: the repository holds $img"
		if "$BIN" verify "$mnt/repo" >"$tmp/verify.out" 2>&1; then echo "PASS: ironclone verify"; else
			sed 's/^/  | /' "$tmp/verify.out"; echo "FAIL: ironclone verify"; fails=$((fails + 1)); fi
		if sched_restored_root "$mnt/repo" "$img" 2 "$tmp/boot.img"; then
			sched_check_root "$tmp/boot.img" "the restored /boot" /os/init.sh "$tmp/init.sh"
			cut_part "$tmp/restored.img" 3 "$tmp/luks.img" || true
			[[ "${RESCUE_BREAK:-}" == restored ]] &&
				printf '\x00' | dd of="$tmp/luks.img" bs=1 count=1 conv=notrunc status=none
			if [[ $KIND == lvm ]]; then
				# The one LV fills the PV from its first extent (pe_start 1 MiB).
				dd if="$tmp/luks.img" of="$tmp/lv.img" bs=1M skip=1 status=none
				# The negative control here: the ext4 magic (offset 1080) broken.
				[[ "${RESCUE_BREAK:-}" == restored ]] &&
					printf '\x00' | dd of="$tmp/lv.img" bs=1 seek=1080 count=1 conv=notrunc status=none
				if e2fsck -fn "$tmp/lv.img" >"$tmp/fsck.out" 2>&1; then echo "PASS: the restored LV: e2fsck -fn clean"; else
					sed 's/^/  | /' "$tmp/fsck.out"; echo "FAIL: the restored LV: e2fsck -fn"; fails=$((fails + 1)); fi
				got=$(debugfs -R "cat /marker" "$tmp/lv.img" 2>/dev/null | sha256sum | cut -d' ' -f1)
				if [[ ${#marks[@]} -gt 0 && $got == "${marks[0]}" ]]; then echo "PASS: the restored LV holds the marker intact"; else
					echo "FAIL: the restored LV's marker sha256 $got, want ${marks[0]:-unknown}"; fails=$((fails + 1)); fi
			else
				got=$(sha256sum "$tmp/luks.img" 2>/dev/null | cut -d' ' -f1)
				if [[ -n $luks_sum && $got == "$luks_sum" ]]; then
					echo "PASS: the restored LUKS partition is byte-identical to the source at imaging time"
				else
					echo "FAIL: restored LUKS partition sha256 ${got:-none}, source ${luks_sum:-unknown}"; fails=$((fails + 1))
				fi
				if [[ $(head -c 6 "$tmp/luks.img" 2>/dev/null | od -An -tx1 | tr -d ' \n') == 4c554b53babe ]]; then
					echo "PASS: the restored partition 3 starts with a LUKS header"
				else
					echo "FAIL: the restored partition 3 has no LUKS header"; fails=$((fails + 1))
				fi
			fi
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
	echo "FAIL: test-schedule-rescue-luks ($KIND root; $fails checks failed)"
	exit 1
fi
echo "PASS: test-schedule-rescue-luks ($KIND root)"
