#!/usr/bin/env bash
# suite: all
# Scheduled backup of the common "encrypted LVM" install (issue 23): a disk with a plain
# /boot partition and a LUKS2 partition holding an LVM PV whose root LV is mounted
# read-write, built in the live system (the host has no device-mapper). The installed
# system has the LUKS volume open and the VG active, so the LV can be snapshotted like
# any LV: no key, no reboot (docs/SCHEDULE.md, "Which mode each filesystem gets").
#  1. The whole disk in the schedule: the run refuses before touching the repository,
#     naming the LV, the LUKS volume under it and what to list instead. The LV sits two
#     levels above the partition (partition → dm-crypt → LV); a run that followed only
#     the partition's direct holders imaged the disk directly while its root was written.
#  2. The LV in the schedule, while a writer keeps writing: imaged from a snapshot
#     (mode lvm-snapshot), no snapshot left, `verify` clean; its image restored onto a
#     spare disk passes e2fsck -fn with the files written before the run intact.
# No key is given to ironclone at any point (the passphrase is only cryptsetup's here).
# One boot (`suite: all`: over a minute under TCG). IRONCLONE_BUILD names the directory holding
# kernel/ and initramfs.img (default build/); IRONCLONE_BIN the binary under test, which
# comes on the job disk.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
live_job_setup

truncate -s 160M "$tmp/src.img"
truncate -s 128M "$tmp/spare.img"
cat >"$tmp/jobfs/ironclone/job.sh" <<'JOB'
#!/bin/sh
# Runs in the live system; every check prints "check: ok WHAT" or "check: FAIL WHAT".
set -u
D="${IRONCLONE_JOB_DIR:?}"
R="$D/results"
IC="$D/ironclone/bin/ironclone"
mkdir -p "$R"
chmod +x "$IC"
fails=0
ok() { echo "check: ok $*"; }
bad() { echo "check: FAIL $*"; fails=$((fails + 1)); }
by_serial() {
	"$IC" disks --json </dev/null | awk -v s="$1" '
		/"path":/ { p = $2 }
		/"serial":/ { v = $2; gsub(/[",]/, "", v); if (v == s) { gsub(/[",]/, "", p); print p; exit } }'
}
snaps() { lvm lvs --noheadings -o lv_name vgc 2>/dev/null | grep -c ironclone-snap; }
modprobe dm-mod 2>/dev/null
modprobe dm-crypt || exit 20
modprobe dm-snapshot || exit 20
src=$(by_serial LUKSSRC); spare=$(by_serial SPARE)
echo "job: src=$src spare=$spare"
[ -n "$src" ] && [ -n "$spare" ] || exit 21
export LVM_SUPPRESS_FD_WARNINGS=1
# The installer's layout: p1 /boot (plain ext4), p2 LUKS2 → PV → vgc/root.
printf 'label: dos\nstart=2048, size=32768, type=83\nstart=34816, type=83\n' | sfdisk -q "$src" || exit 22
partprobe "$src" 2>/dev/null; sleep 1
p1=${src}1; p2=${src}2
[ -b "$p2" ] || { p1=${src}p1; p2=${src}p2; }
mkfs.ext4 -q -F -L boot "$p1" || exit 23
# PBKDF2 with few iterations: argon2's memory and time are not what is tested here.
printf 'test passphrase' | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file - "$p2" || exit 24
printf 'test passphrase' | cryptsetup open --key-file - "$p2" cryptroot || exit 25
lvm pvcreate -q /dev/mapper/cryptroot >/dev/null || exit 26
lvm vgcreate -q -s 4m vgc /dev/mapper/cryptroot >/dev/null || exit 27
lvm lvcreate -q -y -L 72m -n root vgc >/dev/null || exit 28
mkfs.ext4 -q -F -L croot /dev/vgc/root || exit 29
mkdir -p /mnt/root
mount /dev/vgc/root /mnt/root || exit 30
mkdir -p /mnt/root/keep
i=0
while [ $i -lt 5 ]; do
	dd if=/dev/urandom of=/mnt/root/keep/f$i bs=64k count=$((i * 8 + 4)) status=none
	i=$((i + 1))
done
(cd /mnt/root/keep && sha256sum f*) >"$R/sums.src"
sync

# 1. The whole disk: refused, before the repository is touched.
"$IC" schedule init --root /tmp/sdisk --repo "$D/repo-disk" --disks "$src" --budget 1G \
	>"$R/init-disk.txt" 2>&1 </dev/null || bad "schedule init (disk): $(cat "$R/init-disk.txt")"
if "$IC" schedule run --root /tmp/sdisk >"$R/run-disk.txt" 2>&1 </dev/null; then
	bad "the whole disk was imaged while its encrypted root LV is mounted read-write"
else
	ok "a run over the whole disk fails"
fi
cat "$R/run-disk.txt"
grep -q "holds the LVM volume vgc-root on the LUKS volume cryptroot mounted read-write at /mnt/root" "$R/run-disk.txt" &&
	ok "it names the LV and the LUKS volume under it" || bad "no LV/LUKS named"
grep -q "/dev/<vg>/<lv>" "$R/run-disk.txt" && ok "it says what to list instead" || bad "no advice"
[ ! -e "$D/repo-disk/config" ] && ok "the repository was not touched" || bad "a repository was created"

# 2. The LV, with a writer writing.
"$IC" schedule init --root /tmp/slv --repo "$D/repo" --disks /dev/vgc/root --budget 1G \
	>"$R/init.txt" 2>&1 </dev/null && ok "schedule init (LV)" || bad "schedule init: $(cat "$R/init.txt")"
rm -f /tmp/stop
(
	n=0
	while [ ! -f /tmp/stop ]; do
		dd if=/dev/urandom of=/mnt/root/w$((n % 4)) bs=64k count=16 conv=fsync status=none
		n=$((n + 1))
	done
	echo "job: writer wrote $n files"
) &
writer=$!
sleep 1
"$IC" schedule run --root /tmp/slv >"$R/run.txt" 2>&1 </dev/null && ok "run with a writer" ||
	bad "run: $(cat "$R/run.txt")"
touch /tmp/stop
wait $writer
cat "$R/run.txt"
grep -q "(lvm-snapshot)" "$R/run.txt" && ok "imaged from a snapshot, without the key" || bad "mode"
[ "$(snaps)" = 0 ] && ok "no snapshot left after the run" || bad "snapshot left: $(lvm lvs vgc)"
"$IC" verify "$D/repo" >"$R/verify.txt" 2>&1 && ok "verify" || bad "verify: $(tail -3 "$R/verify.txt")"
name=$(grep -o 'image [^ ]*' "$R/run.txt" | head -1 | cut -d' ' -f2)
"$IC" restore "$D/repo" "$name" "$spare" --yes >"$R/restore.txt" 2>&1 </dev/null ||
	bad "restore: $(tail -5 "$R/restore.txt")"
e2fsck -fn "$spare" >"$R/fsck.txt" 2>&1 && ok "the image's ext4 passes e2fsck -fn" ||
	bad "e2fsck: $(tail -8 "$R/fsck.txt")"
mkdir -p /tmp/chk
mount -o ro "$spare" /tmp/chk && (cd /tmp/chk/keep && sha256sum f*) >"$R/sums.img"
umount /tmp/chk
cmp -s "$R/sums.src" "$R/sums.img" && ok "files written before the run intact" || bad "files differ"
umount /mnt/root
lvm vgchange -q -an vgc >/dev/null 2>&1
cryptsetup close cryptroot
echo "job: $fails failed checks"
echo "job: plan done"
[ "$fails" -eq 0 ]
JOB
truncate -s 512M "$tmp/repo.img"
mkfs.ext4 -q -F -L IRONREPO -d "$tmp/jobfs" "$tmp/repo.img" || fail "mkfs.ext4 -d for the job disk"

run_check_job live-schedule-luks 11 "boot + LUKS + LVM + 2 scheduled runs + restore" --timeout 600 --kernel "$BUILD/kernel/vmlinuz" --initrd "$BUILD/initramfs.img" \
	--append " ironclone.job=LABEL=IRONREPO:ironclone/job.sh ironclone.repo=LABEL=IRONREPO ironclone.net=0" \
	--disk "$tmp/repo.img,if=virtio,serial=REPO" \
	--disk "$tmp/src.img,if=virtio,serial=LUKSSRC" \
	--disk "$tmp/spare.img,if=virtio,serial=SPARE"
echo "PASS: an encrypted-LVM disk: the whole disk refused naming the LV on LUKS; the LV imaged online from a snapshot without the key (e2fsck clean, files intact, no snapshot left)"
