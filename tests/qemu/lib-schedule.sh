# shellcheck shell=bash
# shellcheck disable=SC2154 # BIN, tmp, out, fails, OVMF_CODE: set by the sourcing test
# Shared by the scheduled-backup QEMU tests (test-schedule-rescue*.sh,
# test-schedule-systemd.sh): the machine under test is $tmp/os.img with the repository
# disk $tmp/repo.img, its serial console in $log (read into $out after the boots);
# checks count into $fails. Source after lib-live.sh, with BIN and tmp set.

# sched_repo_disk SIZE UUID NAME: the repository disk (empty ext4 with that UUID) and the
# console log build/qemu-logs/NAME.log, emptied.
sched_repo_disk() {
	truncate -s "$1" "$tmp/repo.img"
	mkfs.ext4 -q -F -U "$2" -L repo "$tmp/repo.img"
	log="$LOGDIR/$3.log"
	: >"$log"
}

# check WHAT NEEDLE [COUNT]: NEEDLE is in the console output (COUNT times, if given).
check() {
	local n
	n=$(grep -cF -- "$2" <<<"$out" || true)
	if [[ -n ${3:-} && $n == "$3" ]] || [[ -z ${3:-} && $n -gt 0 ]]; then echo "PASS: $1"; else
		echo "FAIL: $1 ($n times '$2' in $log${3:+, want $3})"; fails=$((fails + 1)); fi
}

# sched_boot_uefi SECONDS MEM_MIB: one QEMU process under OVMF (its variable store
# $tmp/vars.fd persists across the machine's reboots) until it powers off.
sched_boot_uefi() {
	# No bootindex: with one, OVMF rewrites BootOrder from QEMU's list and may drop entries.
	timeout "$1" qemu-system-x86_64 -accel tcg -machine q35 -cpu max -m "$2" -display none -nodefaults \
		-serial "file:$log" -net none \
		-drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" \
		-drive "if=pflash,format=raw,unit=1,file=$tmp/vars.fd" \
		-drive "file=$tmp/os.img,format=raw,if=none,id=d0,cache=unsafe" -device ide-hd,drive=d0,bus=ide.0 \
		-drive "file=$tmp/repo.img,format=raw,if=none,id=d1,cache=unsafe" -device ide-hd,drive=d1,bus=ide.1 \
		>"$tmp/qemu.out" 2>&1 || echo "qemu exited with $? (124 = timeout)"
}

# sched_boot_bios SECONDS MEM_MIB [virtio]: the same under SeaBIOS, which boots the machine's
# disk (bootindex 0); the repository disk is the second IDE disk, or virtio (/dev/vda) with
# `virtio`, for a machine without udev whose schedule names the disk /dev/sda: two AHCI
# disks are named in probe order, which may differ between boots. Each boot is a QEMU process of
# its own (-no-reboot ends it at the guest's reset; the loop starts the next one while the
# boot's last kernel line is "reboot: Restarting system"), its console appended to $log.
# Why not one process across reboots, as under OVMF: TCG keeps the code it translated for
# the previous boot, keyed by guest physical page. The installed system's page cache of its
# programs and shared libraries (ld.so, libc, bash, systemctl at 0x37b8xxxx-0x37bdxxxx of
# this 1536 MiB machine, found by a memory dump at the reboot) holds code many processes
# ran at different addresses, a translation each; the rescue kernel's decompressor writing
# its image over those pages went at 0.5-6 KB/s there (5 MB/s elsewhere): its first line
# came 1-3 min after GRUB's at a load of 10, none at all in earlier runs at a load of 20.
# A fresh process printed it 11-22 s after GRUB's.
# A BIOS machine keeps nothing across a reset that a new process loses: grubenv is on disk.
sched_boot_bios() {
	local deadline=$((SECONDS + $1)) boots=0 left from last
	local repo=(-drive "file=$tmp/repo.img,format=raw,if=none,id=d1,cache=unsafe" -device "ide-hd,drive=d1,bus=ide.1")
	[[ ${3:-} == virtio ]] && repo=(-drive "file=$tmp/repo.img,format=raw,if=virtio,cache=unsafe")
	: >"$tmp/qemu.out"
	while ((boots < 8)); do
		left=$((deadline - SECONDS))
		((left > 0)) || { echo "qemu: out of time after $boots boots"; return 0; }
		boots=$((boots + 1))
		from=$(($(stat -c %s "$log") + 1))
		timeout "$left" qemu-system-x86_64 -accel tcg -machine q35 -cpu max -m "$2" -display none -nodefaults \
			-chardev "file,id=con,path=$log,append=on" -serial chardev:con -net none -no-reboot \
			-drive "file=$tmp/os.img,format=raw,if=none,id=d0,cache=unsafe" -device ide-hd,drive=d0,bus=ide.0,bootindex=0 \
			"${repo[@]}" >>"$tmp/qemu.out" 2>&1 || { echo "qemu exited with $? (124 = timeout) in boot $boots"; return 0; }
		# This boot's part of the console only: a boot that ends without the line (a panic,
		# a hang) ends the loop.
		last=$(tail -c "+$from" "$log" | tr -d '\r' | grep -E 'reboot: (Restarting system|Power down)' | tail -n1 || true)
		[[ $last == *"Restarting system"* ]] || break
	done
	echo "qemu: $boots boots"
}

# sched_restored_root REPO IMAGE PART OUT: restores IMAGE onto a disk file the size of
# the machine's disk and cuts partition PART out into OUT (for e2fsck and debugfs).
sched_restored_root() {
	local start size
	truncate -s 0 "$tmp/restored.img"
	truncate -s "$(stat -c %s "$tmp/os.img")" "$tmp/restored.img"
	"$BIN" restore "$1" "$2" "$tmp/restored.img" --yes --no-repair >"$tmp/restore.out" 2>&1 ||
		{ sed 's/^/  | /' "$tmp/restore.out"; return 1; }
	start=$(sfdisk -d "$tmp/restored.img" | awk -F'[=,]' -v p="restored.img$3 :" 'index($0, p) {gsub(/ /,"",$2); print $2}')
	size=$(sfdisk -d "$tmp/restored.img" | awk -F'[=,]' -v p="restored.img$3 :" 'index($0, p) {gsub(/ /,"",$4); print $4}')
	[[ -n $start && -n $size ]] || { echo "  | no partition $3 in the restored disk"; return 1; }
	dd if="$tmp/restored.img" of="$4" bs=512 skip="$start" count="$size" status=none
}

# sched_check_root ROOTFS WHAT PATH EXPECTED: e2fsck -fn of ROOTFS, and its file PATH
# equal to the host file EXPECTED.
sched_check_root() {
	if e2fsck -fn "$1" >"$tmp/fsck.out" 2>&1; then echo "PASS: $2: e2fsck -fn clean"; else
		sed 's/^/  | /' "$tmp/fsck.out"; echo "FAIL: $2: e2fsck -fn"; fails=$((fails + 1)); fi
	if debugfs -R "cat $3" "$1" 2>/dev/null | cmp -s - "$4"; then echo "PASS: $2 holds $3 intact"; else
		echo "FAIL: $2: $3 differs"; fails=$((fails + 1)); fi
}
