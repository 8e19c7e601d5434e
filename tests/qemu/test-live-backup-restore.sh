#!/usr/bin/env bash
# Backup and restore INSIDE the live system (kernel+initramfs, SeaBIOS, one boot):
# the mbr-bios machine (MBR, GRUB in the post-MBR gap, ext4 /boot, NTFS data, logical ext4)
# is attached read-only on virtio. First a person at the TUI (on the serial console, typed
# and read from the host by tests/qemu/tui-drive.py) backs it up into a repository on an
# ext4 disk (LABEL=IRONREPO, mounted by ironclone.repo=) and restores it onto a 0.6x virtio
# disk (shrink staged in <repo>/tmp); then an unattended job (qemu/jobs/steps.sh, disks chosen
# by serial from `ironclone disks --json`) verifies the repository and restores the same
# image onto a 1.5x NVMe disk with the CLI.
# The host then judges with independent tools: sfdisk, e2fsck -fn, ntfsfix -n, debugfs and
# ntfscat checksums against the source, the source unchanged, and the shrunk disk boots.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
[[ -f "$ROOT/build/initramfs.img" ]] || fail "build/initramfs.img missing (make iso)"
for t in sfdisk e2fsck ntfsfix ntfscat mkntfs sha256sum; do
	command -v "$t" >/dev/null || fail "$t missing (run scripts/setup.sh)"
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

bash "$ROOT/qemu/machines/mk-mbr-bios.sh" "$tmp/src.img" >/dev/null || fail "mk-mbr-bios.sh"
src_sum="$(sha256sum <"$tmp/src.img")"
src_size=$(stat -c %s "$tmp/src.img")
truncate -s $((src_size * 3 / 2 / 1048576 * 1048576)) "$tmp/big.img"
truncate -s $((src_size * 6 / 10 / 1048576 * 1048576)) "$tmp/small.img"

make_steps_disk "$tmp/jobfs" "$tmp/repo.img" 256M IRONREPO <<'PLAN'
tui backup SOURCE1 as dead, restore onto TARGET2
verify
restore dead TARGET1
images
PLAN

# What the person at the TUI does (the job's `tui` line; the repository is new, and left
# unencrypted so that the job's CLI steps open it without a passphrase; the backup
# screen's default image name is erased with Backspace). If the driver fails, the VM is stopped at once
# rather than left at a screen until the timeout.
sock="$tmp/serial.sock"
trap 'cat "$tmp/drive.out" 2>/dev/null; rm -rf "$tmp"' EXIT
erase=$(printf '{Backspace}%.0s' $(seq 60))
tui_drive_bg "$tmp/drive.out" "$tmp/qemu.pid" --timeout 120 --fail-on "Something went wrong" "$sock" \
	'wait What do you want to do?' 'keys b' \
	'wait which disk to back up?' 'select SOURCE1 {Down}' 'keys {Enter}' \
	'wait where to store the image?' 'keys /' 'wait Path:' 'keys /mnt/repo/repo{Enter}' \
	'wait a new repository && Encrypt it?' 'select Do not encrypt {Down}' 'keys {Enter}' \
	'wait name the image' "keys ${erase}dead{Enter}" \
	'wait check and start && SOURCE1 && Name:   dead' 'keys {Enter}' \
	'wait Image "dead" stored in && every chunk read back' 'keys {Enter}' \
	'wait What do you want to do?' 'keys r' \
	'wait Which repository holds the image?' 'keys /' 'wait Path:' 'keys /mnt/repo/repo{Enter}' \
	'wait Restore: which image? && dead' 'keys {Enter}' \
	'wait which disk to OVERWRITE?' 'select TARGET2 {Down}' 'keys {Enter}' \
	'wait The new layout (nothing written yet) && shrink' 'keys {Enter}' \
	'wait ERASE A DISK? && TARGET2' 'keys TARGET2{Enter}' \
	'wait Image "dead" restored onto && read back' 'keys {Enter}'

log="$LOGDIR/live-backup-restore.log"
start=$(date +%s)
"$RUNVM" --timeout 300 --log "$log" --serial-sock "$sock" --pidfile "$tmp/qemu.pid" \
	--append " ironclone.job=LABEL=IRONREPO:ironclone/job.sh ironclone.repo=LABEL=IRONREPO" \
	--disk "$tmp/repo.img,if=virtio,serial=REPO" \
	--disk "$tmp/src.img,if=virtio,serial=SOURCE1,readonly" \
	--disk "$tmp/big.img,if=nvme,serial=TARGET1" \
	--disk "$tmp/small.img,if=virtio,serial=TARGET2" ||
	fail "backup+restore job failed (serial log: $log)"
echo "boot+backup+restore (TUI)+verify+restore (CLI) took $(($(date +%s) - start)) s"
wait "$TUI_DRIVE"
[[ ! -e "$tmp/drive.out.failed" ]] || fail "the TUI was not driven to its end (tui-drive.py's output above)"

grep -aq 'job: plan done' "$log" || fail "job did not reach its end (serial log: $log)"
e2fsck -fn "$tmp/repo.img" >/dev/null 2>&1 || fail "repository fs not clean after the job"
[[ "$(sha256sum <"$tmp/src.img")" == "$src_sum" ]] || fail "the source disk changed"
expect_in "$(disk_cat "$tmp/repo.img" results/restore-TARGET1.json)" '"bytes_verified"' "restore result TARGET1"

# part IMG N OUT: partition N of IMG into OUT (sparse), from sfdisk's own reading of the table.
part() {
	local start size
	read -r start size < <(sfdisk --json "$1" | python3 -c '
import json, sys
n = int(sys.argv[1])
for p in json.load(sys.stdin)["partitiontable"]["partitions"]:
    if p["node"].endswith(str(n)) and not p["node"][:-len(str(n))].endswith(tuple("0123456789")):
        print(p["start"], p["size"]); break' "$2")
	[[ -n "$start" ]] || fail "$1 has no partition $2"
	dd if="$1" of="$3" bs=512 skip="$start" count="$size" conv=sparse status=none
}
# sum_of WHAT CMD...: sha256 of CMD's output. CMD must succeed and print something, and its
# stderr is shown when not: two failed reads must never compare equal.
sum_of() {
	local what="$1"
	shift
	if ! "$@" >"$tmp/sum.out" 2>"$tmp/sum.err" || [[ ! -s "$tmp/sum.out" ]]; then
		sed 's/^/  | /' "$tmp/sum.err" >&2
		fail "$what: \`$*\` failed or printed nothing"
	fi
	sha256sum <"$tmp/sum.out" | cut -d' ' -f1
}
# ext_sum IMG PATH. debugfs exits 0 even for a missing file; it only says so on stderr, after
# its version banner, so anything else there is an error.
ext_sum() {
	sum_of "$1:$2" debugfs -R "cat $2" "$1" || return 1
	if grep -v '^debugfs [0-9]' "$tmp/sum.err" | grep -q .; then
		sed 's/^/  | /' "$tmp/sum.err" >&2
		fail "$1:$2: debugfs cat reported an error"
	fi
}
ntfs_sum() { sum_of "$1:$2" ntfscat "$1" "$2"; }
# same WHAT SUM1 SUM2: the checksums (taken as assignments, so a failed read stops the test).
same() { [[ "$2" == "$3" ]] || fail "$1 differs from the source"; }
part "$tmp/src.img" 1 "$tmp/s1"
part "$tmp/src.img" 2 "$tmp/s2"
part "$tmp/src.img" 5 "$tmp/s5"
for t in big small; do
	img="$tmp/$t.img"
	part "$img" 1 "$tmp/p1"
	part "$img" 2 "$tmp/p2"
	part "$img" 5 "$tmp/p5"
	e2fsck -fn "$tmp/p1" >/dev/null 2>&1 || fail "$t: e2fsck -fn on p1 (/boot) not clean"
	e2fsck -fn "$tmp/p5" >/dev/null 2>&1 || fail "$t: e2fsck -fn on p5 (logical) not clean"
	ntfsfix -n "$tmp/p2" >"$tmp/ntfsfix.out" 2>&1 || { cat "$tmp/ntfsfix.out" >&2; fail "$t: ntfsfix -n on p2"; }
	for f in /boot/vmlinuz /boot/initrd.img /boot/grub/grub.cfg; do
		got=$(ext_sum "$tmp/p1" "$f")
		want=$(ext_sum "$tmp/s1" "$f")
		same "$t: $f" "$got" "$want"
	done
	got=$(ext_sum "$tmp/p5" /hello.txt)
	want=$(ext_sum "$tmp/s5" /hello.txt)
	same "$t: p5 /hello.txt" "$got" "$want"
	for f in readme.txt blob.bin; do
		got=$(ntfs_sum "$tmp/p2" "$f")
		want=$(ntfs_sum "$tmp/s2" "$f")
		same "$t: NTFS $f" "$got" "$want"
	done
	echo "$t ($(numfmt --to=iec "$(stat -c %s "$img")")): e2fsck/ntfsfix clean, /boot, NTFS and logical files match"
done
# The shrunk disk is the hard case (filesystems moved and resized): it must still boot.
bash "$ROOT/qemu/boot-disk.sh" "$tmp/small.img" --firmware bios --marker "IRONCLONE-MACHINE-OK mbr-bios" \
	--timeout 90 --log "$LOGDIR/live-backup-restore-boot-small.log" || fail "the 0.6x disk restored in the VM does not boot"
echo "PASS: live backup and restore onto 0.6x virtio through the TUI, verify and restore onto 1.5x NVMe with the CLI, inside the VM; files match, fsck clean, shrunk disk boots"
