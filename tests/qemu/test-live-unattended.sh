#!/usr/bin/env bash
# The live initramfs booted directly (-kernel/-initrd, SeaBIOS) in unattended mode:
# - ironclone.run runs the binary (URL-encoded args), ironclone.job runs a script from a
#   partition found by LABEL, ironclone.repo mounts it read-write; the job's file lands on the
#   disk (checked on the host with debugfs) and IRONCLONE-RESULT: ok is the exit status;
# - disks on virtio, SATA, NVMe and USB are all discovered (drivers load from modules.dep);
# - every tool the restore calls runs in the VM as it does on the host (same exit code and
#   first line for --version: its shared libraries and data were copied);
# - repositories on NTFS (ntfs-3g) and FAT mount read-write by label and are cleanly unmounted
#   (files read back on the host with ntfscat and mtype);
# - a failing job yields `IRONCLONE-RESULT: fail rc=N` and the harness exits with N.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
[[ -f "$ROOT/build/initramfs.img" ]] || fail "build/initramfs.img missing (make iso)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The tools the restore calls. Each runs with --version in the VM and on the host (the live
# system copies the host's binaries), and the two must agree on exit code and first line:
# a missing library (rc 127), a missing data file or a busybox stand-in shows as a difference,
# and a tool that has no --version still has to reject it the way it does here.
TOOLS=(resize2fs e2fsck mke2fs dumpe2fs debugfs ntfsresize ntfs-3g ntfsfix ntfsinfo ntfscat
	sfdisk sgdisk partx blkid mkfs.fat fsck.fat mcopy grub-install grub-mkimage efibootmgr
	mount umount losetup)
# tool_versions TOOL...: "name rc=N first-non-empty-line" for each; the job runs the same.
# Tools are run by their path with the directory cut from the output (some print argv[0]).
tool_versions() {
	local t p v rc
	for t in "$@"; do
		p=$(command -v "$t") || p=$t
		rc=0
		v=$("$p" --version </dev/null 2>&1) || rc=$?
		echo "$t rc=$rc $(printf '%s\n' "$v" | grep -m1 . | sed "s|^${p%/*}/||" || true)"
	done
}
sed "s|@TOOLS@|${TOOLS[*]}|" <<'JOB' | make_job_disk "$tmp/repo.img" ICREPO jobs/check.sh
#!/bin/sh
out="$IRONCLONE_JOB_DIR/out"
mkdir -p "$out"
ironclone --version >"$out/version.txt" 2>&1
ls /sys/class/block >"$out/disks.txt"
echo "repo=$IRONCLONE_REPO" >"$out/env.txt"
: >"$out/versions.txt"
for t in @TOOLS@; do
	# By path: busybox sh would run its own applet of the same name, not what ironclone runs.
	p=$(which "$t") || p=$t
	v=$("$p" --version </dev/null 2>&1)
	rc=$?
	echo "$t rc=$rc $(printf '%s\n' "$v" | grep -m1 . | sed "s|^${p%/*}/||")" >>"$out/versions.txt"
done
for m in /usr/lib/grub/i386-pc/normal.mod /usr/lib/grub/x86_64-efi/normal.mod; do
	[ -s "$m" ] && echo "present $m" >>"$out/tools.txt" || echo "MISSING $m" >>"$out/tools.txt"
done
# Repositories on other filesystems: NTFS through ntfs-3g (FUSE), FAT through the kernel.
for spec in LABEL=ICNTFS LABEL=ICFAT; do
	m="/mnt/${spec#LABEL=}"
	if ironclone-mount "$spec" "$m" rw >>"$out/mounts.txt" 2>&1; then
		echo "written by the live system" >"$m/from-live.txt" && echo "wrote $spec" >>"$out/mounts.txt"
	else
		echo "FAILED $spec" >>"$out/mounts.txt"
	fi
done
echo done >"$out/done"
JOB
truncate -s 32M "$tmp/sata.img" "$tmp/nvme.img" "$tmp/usb.img"
for t in mkntfs ntfscat mkfs.fat mtype; do command -v "$t" >/dev/null || fail "$t missing (run scripts/setup.sh)"; done
mkntfs -F -q -f -L ICNTFS "$tmp/sata.img" >/dev/null 2>&1 || fail "mkntfs on $tmp/sata.img"
mkfs.fat -n ICFAT "$tmp/usb.img" >/dev/null || fail "mkfs.fat on $tmp/usb.img"

log="$LOGDIR/live-unattended-ok.log"
start=$(date +%s)
"$RUNVM" --timeout 180 --log "$log" \
	--append " ironclone.run=%2D%2Dversion ironclone.job=LABEL=ICREPO:jobs/check.sh ironclone.repo=LABEL=ICREPO" \
	--disk "$tmp/repo.img,if=virtio" --disk "$tmp/sata.img,if=sata" \
	--disk "$tmp/nvme.img,if=nvme,serial=NV1" --disk "$tmp/usb.img,if=usb" ||
	fail "unattended job did not succeed (serial log: $log)"
echo "boot+job took $(($(date +%s) - start)) s"

grep -aq '^IRONCLONE-LIVE-READY ironclone' "$log" || fail "no IRONCLONE-LIVE-READY marker in $log"
grep -aq '^ironclone [0-9]' "$log" || fail "ironclone --version output missing from $log"
[[ "$(disk_cat "$tmp/repo.img" out/done)" == "done" ]] || fail "job did not finish writing (serial log: $log)"
expect_in "$(disk_cat "$tmp/repo.img" out/version.txt)" "ironclone " "version inside the VM"
disks="$(disk_cat "$tmp/repo.img" out/disks.txt)"
for d in vda sda sdb nvme0n1; do expect_in "$disks" "$d" "disk discovery"; done
expect_in "$(disk_cat "$tmp/repo.img" out/env.txt)" "repo=/mnt/repo" "repository mount"
want="$(tool_versions "${TOOLS[@]}")"
got="$(disk_cat "$tmp/repo.img" out/versions.txt)"
[[ "$got" == "$want" ]] ||
	fail "tools behave differently in the live system than on the host:
$(diff <(echo "$want") <(echo "$got") | sed 's/^/  | /')"
tools="$(disk_cat "$tmp/repo.img" out/tools.txt)"
expect_in "$tools" "present /usr/lib/grub/i386-pc/normal.mod" "GRUB BIOS modules"
expect_in "$tools" "present /usr/lib/grub/x86_64-efi/normal.mod" "GRUB EFI modules"
# The log is left next to the job too, for fleet operators.
expect_in "$(disk_cat "$tmp/repo.img" ironclone-unattended.log)" "unattended: job exited rc=0" "job log on disk"
e2fsck -fn "$tmp/repo.img" >/dev/null 2>&1 || fail "repository fs not clean after unmount+poweroff"
mounts="$(disk_cat "$tmp/repo.img" out/mounts.txt)"
expect_in "$mounts" "wrote LABEL=ICNTFS" "NTFS mount via ntfs-3g"
expect_in "$mounts" "wrote LABEL=ICFAT" "FAT mount"
[[ "$(ntfscat "$tmp/sata.img" from-live.txt 2>/dev/null)" == "written by the live system" ]] ||
	fail "file written on NTFS in the VM not readable on the host with ntfscat"
[[ "$(mtype -i "$tmp/usb.img" ::/from-live.txt 2>/dev/null | tr -d '\r')" == "written by the live system" ]] ||
	fail "file written on FAT in the VM not readable on the host with mtype"

# Failure path: the job's exit code comes back through IRONCLONE-RESULT and run-vm.
make_job_disk "$tmp/fail.img" ICFAIL job.sh <<'JOB'
echo "about to fail"
exit 7
JOB
log="$LOGDIR/live-unattended-fail.log"
set +e
"$RUNVM" --timeout 180 --log "$log" --append " ironclone.job=LABEL=ICFAIL:job.sh" --disk "$tmp/fail.img,if=virtio"
rc=$?
set -e
[[ $rc -eq 7 ]] || fail "failing job: run-vm returned $rc, want 7 (serial log: $log)"
grep -aq 'IRONCLONE-RESULT: fail rc=7' "$log" || fail "no 'IRONCLONE-RESULT: fail rc=7' in $log"
echo "PASS: live unattended (kernel+initramfs): run, job, repo, 4 buses, tools, failure rc"
