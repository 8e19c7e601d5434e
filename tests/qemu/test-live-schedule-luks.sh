#!/usr/bin/env bash
# Scheduled backup of the common "encrypted LVM" install (issue 23): a GPT disk with an
# ESP (FAT), a plain /boot (ext4) and a LUKS2 partition holding an LVM PV with a root LV
# (ext4, mounted read-write and written during the run) and a swap LV (in use), built in
# the live system (the host has no device-mapper). The installed system has the LUKS
# volume open and the VG active: no key, no reboot (docs/SCHEDULE.md, "Encrypted disks").
#  1. The whole disk in the schedule, while a writer keeps writing to the root LV:
#     imaged online as one image (mode encrypted-lvm): the root LV from a snapshot, the
#     PV's metadata as it was before the snapshot, /boot frozen and the ESP remounted
#     read-only for the run. Afterwards no snapshot is left, /boot and the ESP are
#     writable again (the ESP mounted rw), `verify` is clean. A run stopped with SIGTERM
#     while the ESP is read-only undoes that and the freeze before it ends (exit 143);
#     after a SIGKILL the ESP stays read-only until the next run undoes it, says so and
#     removes the left snapshot. The source is closed and
#     the image restored with `--unlock` onto a spare disk: the ESP passes fsck.vfat -n,
#     /boot e2fsck -fn, both with their files intact; the LUKS volume opens with the
#     passphrase, its VG has root and swap and no snapshot LV, the root LV passes
#     e2fsck -fn with the files written before the run intact.
#  2. The LV in the schedule, while a writer keeps writing: imaged from a snapshot
#     (mode lvm-snapshot), no snapshot left, `verify` clean; its image restored onto a
#     spare disk passes e2fsck -fn with the files written before the run intact.
# No key is given to ironclone's backups (the passphrase is cryptsetup's and the
# restore's). One boot, about 75 s under TCG: `make test` runs it, as the only test of the
# encrypted-LVM disk mode's metadata capture and freeze/remount path. IRONCLONE_BUILD names the
# directory holding kernel/ and initramfs.img (default build/); IRONCLONE_BIN the binary
# under test, which comes on the job disk.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
live_job_setup

truncate -s 192M "$tmp/src.img"
truncate -s 192M "$tmp/spare.img"
cat >"$tmp/jobfs/ironclone/job.sh" <<'JOB'
#!/bin/sh
# Runs in the live system; every check prints "check: ok WHAT" or "check: FAIL WHAT".
set -u
D="${IRONCLONE_JOB_DIR:?}"
R="$D/results"
IC="$D/ironclone/bin/ironclone"
mkdir -p "$R"
chmod +x "$IC"
. "$D/ironclone/guest-lib.sh"
snaps() { lvm lvs --noheadings -o lv_name vgc 2>/dev/null | grep -c ironclone-snap; }
modprobe dm-mod 2>/dev/null
modprobe dm-crypt || exit 20
modprobe dm-snapshot || exit 20
src=$(by_serial LUKSSRC); spare=$(by_serial SPARE)
echo "job: src=$src spare=$spare"
[ -n "$src" ] && [ -n "$spare" ] || exit 21
export LVM_SUPPRESS_FD_WARNINGS=1
# The installer's layout: p1 the ESP (FAT), p2 /boot (ext4), p3 LUKS2 → PV → vgc/root, vgc/swap.
printf 'label: gpt\nstart=2048, size=32768, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=34816, size=32768, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\nstart=67584, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' |
	sfdisk -q "$src" || exit 22
partprobe "$src" 2>/dev/null; sleep 1
p1=$(part "$src" 1); p2=$(part "$src" 2); p3=$(part "$src" 3)
mkfs.vfat -n ESP "$p1" >/dev/null || exit 23
mkfs.ext4 -q -F -L boot "$p2" || exit 23
# PBKDF2 with few iterations: argon2's memory and time are not what is tested here.
printf 'test passphrase' | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file - "$p3" || exit 24
printf 'test passphrase' | cryptsetup open --key-file - "$p3" cryptroot || exit 25
lvm pvcreate -q /dev/mapper/cryptroot >/dev/null || exit 26
lvm vgcreate -q -s 4m vgc /dev/mapper/cryptroot >/dev/null || exit 27
lvm lvcreate -q -y -L 96m -n root vgc >/dev/null || exit 28
lvm lvcreate -q -y -L 16m -n swap vgc >/dev/null || exit 28
mkfs.ext4 -q -F -L croot /dev/vgc/root || exit 29
mkswap -L cswap /dev/vgc/swap >/dev/null || exit 29
swapon /dev/vgc/swap || echo "job: swapon failed (the swap LV is imaged either way)"
mkdir -p /mnt/root /mnt/boot /mnt/esp
mount /dev/vgc/root /mnt/root || exit 30
mount "$p2" /mnt/boot || exit 30
mount "$p1" /mnt/esp || exit 30
mkdir -p /mnt/root/keep /mnt/esp/EFI/BOOT
i=0
while [ $i -lt 5 ]; do
	dd if=/dev/urandom of=/mnt/root/keep/f$i bs=64k count=$((i * 8 + 4)) status=none
	i=$((i + 1))
done
dd if=/dev/urandom of=/mnt/boot/vmlinuz-test bs=64k count=40 status=none
dd if=/dev/urandom of=/mnt/esp/EFI/BOOT/BOOTX64.EFI bs=64k count=20 status=none
(cd /mnt/root/keep && sha256sum f*) >"$R/sums.src"
(cd /mnt/boot && sha256sum vmlinuz-test) >"$R/boot.src"
(cd /mnt/esp && sha256sum EFI/BOOT/BOOTX64.EFI) >"$R/esp.src"
sync

# 1. The whole disk, with a writer writing to its root LV.
"$IC" schedule init --root /tmp/sdisk --repo "$D/repo-disk" --disks "$src" --budget 1G \
	>"$R/init-disk.txt" 2>&1 </dev/null && ok "schedule init (whole disk)" ||
	bad "schedule init (disk): $(cat "$R/init-disk.txt")"
cat "$R/init-disk.txt"
grep -q "LUKS volume cryptroot, read without the key" "$R/init-disk.txt" &&
	grep -q "vgc/root from snapshots" "$R/init-disk.txt" && grep -q "DECRYPTED" "$R/init-disk.txt" &&
	ok "init says the LV comes from a snapshot and the image holds plaintext" || bad "init's warning"
writer /mnt/root
"$IC" schedule run --root /tmp/sdisk >"$R/run-disk.txt" 2>&1 </dev/null && ok "run over the whole disk with a writer" ||
	bad "run (disk): $(cat "$R/run-disk.txt")"
writer_stop
cat "$R/run-disk.txt"
grep -q "(encrypted-lvm)" "$R/run-disk.txt" && ok "imaged online as an encrypted-LVM disk" || bad "mode (disk)"
[ "$(snaps)" = 0 ] && ok "no snapshot left after the whole-disk run" || bad "snapshot left: $(lvm lvs vgc)"
# Checked without writing first: a write to a frozen /boot would hang the job. What a
# broken run left is undone here, so the checks after it still mean something.
grep -E " /mnt/esp " /proc/mounts | grep -q " rw," && timeout 10 touch /mnt/esp/after &&
	ok "the ESP is mounted read-write again" ||
	{ bad "ESP not writable: $(grep /mnt/esp /proc/mounts)"; mount -o remount,rw /mnt/esp; }
thawed() { if fsfreeze --unfreeze /mnt/boot 2>/dev/null; then return 1; fi; timeout 10 touch "/mnt/boot/$1"; }
thawed after && ok "/boot is thawed" || bad "/boot was left frozen"
[ ! -e /run/ironclone/quiesced.json ] && ok "no record of frozen filesystems left" || bad "record left"
name=$(grep -o 'image [^ ]*' "$R/run-disk.txt" | head -1 | cut -d' ' -f2)
[ -n "$name" ] && "$IC" verify "$D/repo-disk" >"$R/verify-disk.txt" 2>&1 && ok "verify (disk)" ||
	bad "verify (disk): $(tail -3 "$R/verify-disk.txt")"
# A run stopped while /boot is frozen and the ESP read-only: SIGTERM undoes both before
# the run ends; after a SIGKILL the next run undoes them (and removes the snapshot).
esp_ro() { grep -E " /mnt/esp " /proc/mounts | grep -q " ro,"; }
stop_run() {
	"$IC" schedule run --root /tmp/sdisk >"$R/run-$1.txt" 2>&1 </dev/null &
	pid=$!
	i=0
	while ! esp_ro && [ $i -lt 600 ]; do usleep 50000; i=$((i + 1)); done
	esp_ro && echo "job: the ESP went read-only after $i polls; SIG$1" || echo "job: the ESP never went read-only"
	kill -"$1" "$pid"
	wait "$pid"
	rc=$?
}
stop_run TERM
[ "$rc" = 143 ] && ! esp_ro && thawed after-term && [ ! -e /run/ironclone/quiesced.json ] &&
	ok "SIGTERM during the run: /boot thawed, the ESP read-write, exit 143" ||
	{ bad "after SIGTERM: rc $rc, $(grep /mnt/esp /proc/mounts), $(cat "$R/run-TERM.txt")"; mount -o remount,rw /mnt/esp; rm -f /run/ironclone/quiesced.json; }
stop_run KILL
esp_ro && [ -e /run/ironclone/quiesced.json ] && ok "SIGKILL leaves the ESP read-only and its record" ||
	bad "after SIGKILL: rc $rc, $(grep /mnt/esp /proc/mounts)"
"$IC" schedule run --root /tmp/sdisk >"$R/run-after.txt" 2>&1 </dev/null || bad "run after SIGKILL: $(cat "$R/run-after.txt")"
cat "$R/run-after.txt"
grep -q "/mnt/esp was left remounted read-only by a previous run; undone" "$R/run-after.txt" && ! esp_ro &&
	thawed after-kill && [ "$(snaps)" = 0 ] &&
	ok "the next run undid what the killed run left (ESP read-write, /boot thawed, no snapshot)" ||
	{ bad "after the next run: $(grep /mnt/esp /proc/mounts), snapshots $(snaps)"; mount -o remount,rw /mnt/esp; }
# The source closed: the restored PV has its ids, and LVM must not see both.
swapoff /dev/vgc/swap 2>/dev/null
umount /mnt/esp /mnt/boot /mnt/root
lvm vgchange -q -an vgc >/dev/null 2>&1
cryptsetup close cryptroot || echo "job: cryptroot not closed"
IRONCLONE_LUKS_PASSPHRASE='test passphrase' "$IC" restore "$D/repo-disk" "$name" "$spare" --unlock --yes \
	>"$R/restore-disk.txt" 2>&1 </dev/null && ok "restore --unlock of the whole disk" ||
	bad "restore (disk): $(tail -5 "$R/restore-disk.txt")"
partprobe "$spare" 2>/dev/null; sleep 1
s1=$(part "$spare" 1); s2=$(part "$spare" 2); s3=$(part "$spare" 3)
fsck.vfat -n "$s1" >"$R/fsck-esp.txt" 2>&1 && ok "the restored ESP passes fsck.vfat -n" ||
	bad "fsck.vfat: $(tail -5 "$R/fsck-esp.txt")"
e2fsck -fn "$s2" >"$R/fsck-boot.txt" 2>&1 && ok "the restored /boot passes e2fsck -fn" ||
	bad "e2fsck /boot: $(tail -5 "$R/fsck-boot.txt")"
mkdir -p /tmp/chk
mount -o ro "$s1" /tmp/chk && (cd /tmp/chk && sha256sum EFI/BOOT/BOOTX64.EFI) >"$R/esp.img"; umount /tmp/chk
mount -o ro "$s2" /tmp/chk && (cd /tmp/chk && sha256sum vmlinuz-test) >"$R/boot.img"; umount /tmp/chk
cmp -s "$R/esp.src" "$R/esp.img" && cmp -s "$R/boot.src" "$R/boot.img" &&
	ok "the ESP's and /boot's files intact" || bad "ESP or /boot files differ"
printf 'test passphrase' | cryptsetup open --key-file - "$s3" restored && ok "the restored LUKS volume opens" ||
	bad "cryptsetup open of the restored volume"
lvm pvscan --cache >/dev/null 2>&1
lvm vgchange -q -ay vgc >/dev/null 2>&1
lvs=$(lvm lvs --noheadings -o lv_name vgc 2>/dev/null | tr -d ' ' | sort | tr '\n' ' ')
echo "job: restored LVs: $lvs"
[ "$lvs" = "root swap " ] && ok "the restored VG has root and swap and no snapshot LV" || bad "restored LVs: $lvs"
e2fsck -fn /dev/vgc/root >"$R/fsck-root.txt" 2>&1 && ok "the restored root LV passes e2fsck -fn" ||
	bad "e2fsck root: $(tail -8 "$R/fsck-root.txt")"
mount -o ro /dev/vgc/root /tmp/chk && (cd /tmp/chk/keep && sha256sum f*) >"$R/sums.disk"
umount /tmp/chk
cmp -s "$R/sums.src" "$R/sums.disk" && ok "the root LV's files written before the run intact" || bad "root files differ"
lvm vgchange -q -an vgc >/dev/null 2>&1
cryptsetup close restored
# Back to the source for part 2.
printf 'test passphrase' | cryptsetup open --key-file - "$p3" cryptroot || exit 25
lvm pvscan --cache >/dev/null 2>&1
lvm vgchange -q -ay vgc >/dev/null 2>&1
mount /dev/vgc/root /mnt/root || exit 30

# 2. The LV, with a writer writing.
"$IC" schedule init --root /tmp/slv --repo "$D/repo" --disks /dev/vgc/root --budget 1G \
	>"$R/init.txt" 2>&1 </dev/null && ok "schedule init (LV)" || bad "schedule init: $(cat "$R/init.txt")"
writer /mnt/root
"$IC" schedule run --root /tmp/slv >"$R/run.txt" 2>&1 </dev/null && ok "run with a writer" ||
	bad "run: $(cat "$R/run.txt")"
writer_stop
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

run_check_job live-schedule-luks 27 "boot + LUKS + LVM + 2 scheduled runs + 2 restores" --timeout 600 --kernel "$BUILD/kernel/vmlinuz" --initrd "$BUILD/initramfs.img" \
	--append " ironclone.job=LABEL=IRONREPO:ironclone/job.sh ironclone.repo=LABEL=IRONREPO ironclone.net=0" \
	--disk "$tmp/repo.img,if=virtio,serial=REPO" \
	--disk "$tmp/src.img,if=virtio,serial=LUKSSRC" \
	--disk "$tmp/spare.img,if=virtio,serial=SPARE"
echo "PASS: an encrypted-LVM disk: the whole disk imaged online without the key (root LV from a snapshot, /boot frozen, the ESP read-only for the run, both undone) and restored with --unlock (fsck clean, files intact, no snapshot LV); the LV imaged online from a snapshot (e2fsck clean, files intact, no snapshot left)"
