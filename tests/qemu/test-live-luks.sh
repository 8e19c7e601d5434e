#!/usr/bin/env bash
# LUKS inside the live system (kernel+initramfs, one boot; the host has no device-mapper).
# The job builds the source itself on a blank disk: GPT, p1 ext4 /boot, p2 LUKS2 holding ext4
# with files. It then checks, in order: a wrong $IRONCLONE_LUKS_PASSPHRASE is refused and
# stores nothing; the backup with the right one (--unlock) stores the header and the plaintext
# areas; `images --json` names the plaintext area; a restore without the key is refused and
# leaves the target untouched; restores with --key-file onto a 1.5x and a 0.6x disk; each
# target's LUKS opens with the same passphrase, keeps the UUID, its inner ext4 passes
# e2fsck -fn and fills the partition, and every file's sha256 matches. The LUKS partition
# alone (`backup /dev/vdX2 --unlock`: a table-less header + plaintext image) is restored onto
# a whole disk with the same checks, and into partition 2 of another disk (partition 1 must
# stay as it was).
# Then the "encrypted laptop" of issue 18: LUKS2 holding an LVM PV (ext4 root and swap LVs),
# backed up with the passphrase and restored onto 1.5x and 0.6x: the VG (same UUID) comes
# back inside the same LUKS volume, the root LV grown or shrunk, swap kept, files intact.
# The host then checks that no file of the repository holds the passphrase.
# Riding on the same boot: a qcow2 backed up and exported as VMDK inside the live system
# (qemu-img and qemu-storage-daemon's FUSE export work from the initramfs).
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
[[ -f "$ROOT/build/initramfs.img" ]] || fail "build/initramfs.img missing (make iso)"
tmp="$(mktemp -d)"
mnt=
cleanup() { [[ -n $mnt ]] && umount "$mnt" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

PASS="ironclone luks test $$ $RANDOM"
truncate -s 160M "$tmp/src.img"
truncate -s 240M "$tmp/big.img"
truncate -s 96M "$tmp/small.img"
truncate -s 200M "$tmp/lsrc.img"
truncate -s 300M "$tmp/lbig.img"
truncate -s 120M "$tmp/lsmall.img"

mkdir -p "$tmp/jobfs/ironclone"
printf '%s' "$PASS" >"$tmp/jobfs/ironclone/pass"
cat >"$tmp/jobfs/ironclone/job.sh" <<'JOB'
#!/bin/sh
# Runs in the live system; every check prints "check: ok WHAT" or "check: FAIL WHAT".
set -u
D="${IRONCLONE_JOB_DIR:?}"
REPO="$D/repo"
R="$D/results"
mkdir -p "$R" "$REPO"
# The key file lives in /tmp, off the job disk, so that the host's scan of the repository
# disk cannot find the passphrase there by accident.
cp "$D/ironclone/pass" /tmp/key && rm -f "$D/ironclone/pass"
PASS="$(cat /tmp/key)"
fails=0
ok() { echo "check: ok $*"; }
bad() { echo "check: FAIL $*"; fails=$((fails + 1)); }
by_serial() {
	ironclone disks --json </dev/null | awk -v s="$1" '
		/"path":/ { p = $2 }
		/"serial":/ { v = $2; gsub(/[",]/, "", v); if (v == s) { gsub(/[",]/, "", p); print p; exit } }'
}
src=$(by_serial SRC); big=$(by_serial BIG); small=$(by_serial SMALL)
echo "job: src=$src big=$big small=$small"
[ -n "$src" ] && [ -n "$big" ] && [ -n "$small" ] || { echo "job: disks not found"; exit 20; }

# --- the source: GPT, p1 ext4, p2 LUKS2 holding ext4 with files ---
printf 'label: gpt\n,64M,L\n,,CA7D7CCB-63ED-4C53-861C-1742536059CC\n' | sfdisk -q "$src" || exit 21
sleep 1
mkdir -p /tmp/boot /tmp/tree/sub
echo "boot files" >/tmp/boot/grub.cfg
mkfs.ext4 -q -F -L boot -d /tmp/boot "${src}1" || exit 22
i=0
# About 9 MiB of files: the inner ext4 (79 MiB) must shrink to fit the 0.6x disk.
while [ $i -lt 8 ]; do
	dd if=/dev/urandom of=/tmp/tree/sub/f$i bs=64k count=$((i * 3 + 1)) status=none
	i=$((i + 1))
done
dd if=/dev/urandom of=/tmp/tree/big.bin bs=1M count=3 status=none
echo "hello from inside LUKS" >/tmp/tree/hello.txt
(cd /tmp/tree && find . -type f | sort | xargs sha256sum) >"$R/sums.src"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--label vault --key-file /tmp/key "${src}2" || exit 23
cryptsetup open --key-file /tmp/key "${src}2" srcplain || exit 24
mkfs.ext4 -q -F -L root -d /tmp/tree /dev/mapper/srcplain || exit 25
cryptsetup close srcplain || exit 26
rm -rf /tmp/tree
uuid=$(cryptsetup luksUUID "${src}2")
sync

# --- a wrong passphrase: refused, nothing stored ---
if IRONCLONE_LUKS_PASSPHRASE="wrong $PASS" ironclone backup "$src" "$REPO" --name bad --unlock \
	>"$R/wrong.txt" 2>&1 </dev/null; then
	bad "wrong passphrase accepted"
elif grep -q "does not open the LUKS volume" "$R/wrong.txt" && [ ! -e "$REPO/images/bad.json" ]; then
	ok "wrong passphrase refused, no image stored"
else
	bad "wrong passphrase: $(cat "$R/wrong.txt")"
fi

# --- the backup with the passphrase ---
IRONCLONE_LUKS_PASSPHRASE="$PASS" ironclone backup "$src" "$REPO" --name enc --unlock \
	>"$R/backup.txt" 2>&1 </dev/null || { cat "$R/backup.txt"; exit 27; }
cat "$R/backup.txt"
grep -q "PLAINTEXT of LUKS2" "$R/backup.txt" && grep -q "holds the PLAINTEXT" "$R/backup.txt" &&
	ok "backup summary says plaintext" || bad "backup summary"
ironclone images "$REPO" --json >"$R/images.json" </dev/null
grep -q '"plaintext_of_encrypted"' "$R/images.json" && grep -q '"p2-plaintext"' "$R/images.json" &&
	ok "images --json names the plaintext area" || bad "images --json: $(cat "$R/images.json")"
ls /dev/mapper | grep -q ironclone && bad "a mapping was left open: $(ls /dev/mapper)" || ok "mappings closed"

# --- a restore without the key: refused before writing ---
if ironclone restore "$REPO" enc "$small" --yes >"$R/nokey.txt" 2>&1 </dev/null; then
	bad "restore without the key went through"
elif grep -q "needs the same key" "$R/nokey.txt" &&
	[ "$(dd if="$small" bs=1M count=1 status=none | tr -d '\000' | wc -c)" -eq 0 ]; then
	ok "restore without the key refused, target untouched"
else
	bad "restore without the key: $(cat "$R/nokey.txt")"
fi

# --- restores with the key file, then the checks ---
for t in big small; do
	eval dev=\$$t
	ironclone restore "$REPO" enc "$dev" --yes --key-file /tmp/key >"$R/restore-$t.txt" 2>&1 </dev/null ||
		{ cat "$R/restore-$t.txt"; bad "restore onto $t"; continue; }
	cat "$R/restore-$t.txt"
	# No udev here: the kernel learns the new table only when asked.
	blockdev --rereadpt "$dev" 2>/dev/null || partprobe "$dev"
	sleep 1
	e2fsck -fn "${dev}1" >/dev/null 2>&1 && ok "$t: p1 e2fsck" || bad "$t: p1 e2fsck"
	[ "$(cryptsetup luksUUID "${dev}2")" = "$uuid" ] && ok "$t: LUKS UUID kept" || bad "$t: UUID"
	if ! cryptsetup open --readonly --key-file /tmp/key "${dev}2" chk; then
		bad "$t: does not open with the passphrase"
		continue
	fi
	ok "$t: opens with the passphrase"
	e2fsck -fn /dev/mapper/chk >"$R/fsck-$t.txt" 2>&1 && ok "$t: inner e2fsck -fn clean" ||
		bad "$t: inner e2fsck: $(tail -5 "$R/fsck-$t.txt")"
	blocks=$(dumpe2fs -h /dev/mapper/chk 2>/dev/null | awk -F: '/^Block count/ {print $2+0}')
	bsize=$(dumpe2fs -h /dev/mapper/chk 2>/dev/null | awk -F: '/^Block size/ {print $2+0}')
	msize=$(blockdev --getsize64 /dev/mapper/chk)
	echo "job: $t inner fs $((blocks * bsize)) bytes, mapping $msize bytes"
	[ $((msize - blocks * bsize)) -lt $((bsize * 1024)) ] && ok "$t: inner fs fills the mapping" ||
		bad "$t: inner fs $((blocks * bsize)) of $msize"
	mkdir -p /tmp/chk
	mount -o ro /dev/mapper/chk /tmp/chk && (cd /tmp/chk && find . -type f ! -path './lost+found/*' | sort | xargs sha256sum) >"$R/sums.$t"
	umount /tmp/chk
	cmp -s "$R/sums.src" "$R/sums.$t" && ok "$t: every file's sha256 matches" || bad "$t: files differ"
	cryptsetup close chk
done

# --- the LUKS partition alone (a table-less image of its header and plaintext areas),
# restored onto a whole disk (the laptop's 1.5x target, before its own turn): a disk that
# is LUKS as a whole, as data disks often are; same checks ---
IRONCLONE_LUKS_PASSPHRASE="$PASS" ironclone backup "${src}2" "$REPO" --name alone --unlock \
	>"$R/alone.txt" 2>&1 </dev/null || { cat "$R/alone.txt"; bad "alone: backup of ${src}2 --unlock"; }
ironclone images "$REPO" --json >"$R/images2.json" </dev/null
grep -q '"disk-fs-plaintext"' "$R/images2.json" && ok "alone: header and plaintext areas stored" ||
	bad "alone: images --json: $(grep -o '"name":"[^"]*"' "$R/images2.json" | tr '\n' ' ')"
whole=$(by_serial LBIG)
if ironclone restore "$REPO" alone "$whole" --yes --key-file /tmp/key >"$R/alone-r.txt" 2>&1 </dev/null; then
	cat "$R/alone-r.txt"
	[ "$(cryptsetup luksUUID "$whole")" = "$uuid" ] && ok "alone: LUKS UUID kept" || bad "alone: UUID"
	if cryptsetup open --readonly --key-file /tmp/key "$whole" chk; then
		e2fsck -fn /dev/mapper/chk >"$R/fsck-alone.txt" 2>&1 && ok "alone: inner e2fsck -fn clean" ||
			bad "alone: inner e2fsck: $(tail -5 "$R/fsck-alone.txt")"
		blocks=$(dumpe2fs -h /dev/mapper/chk 2>/dev/null | awk -F: '/^Block count/ {print $2+0}')
		bsize=$(dumpe2fs -h /dev/mapper/chk 2>/dev/null | awk -F: '/^Block size/ {print $2+0}')
		msize=$(blockdev --getsize64 /dev/mapper/chk)
		[ $((msize - blocks * bsize)) -lt $((bsize * 1024)) ] && ok "alone: inner fs grown to fill the disk" ||
			bad "alone: inner fs $((blocks * bsize)) of $msize"
		mkdir -p /tmp/chk
		mount -o ro /dev/mapper/chk /tmp/chk && (cd /tmp/chk && find . -type f ! -path './lost+found/*' | sort | xargs sha256sum) >"$R/sums.alone"
		umount /tmp/chk
		cmp -s "$R/sums.src" "$R/sums.alone" && ok "alone: every file's sha256 matches" || bad "alone: files differ"
		cryptsetup close chk
	else
		bad "alone: does not open with the passphrase"
	fi
else
	cat "$R/alone-r.txt"
	bad "alone: restore onto $whole"
fi

# --- the same image INTO A PARTITION: partition 2 of the laptop's 0.6x target (before its
# own turn), partition 1 holding random bytes that must stay; a partition target takes an
# image without a table ---
pd=$(by_serial LSMALL)
printf 'label: gpt\n,8M,L\n,,L\n' | sfdisk -q "$pd" || bad "alone-part: sfdisk on $pd"
blockdev --rereadpt "$pd" 2>/dev/null
sleep 1
dd if=/dev/urandom of="${pd}1" bs=1M count=8 status=none
p1sum=$(sha256sum <"${pd}1")
if ironclone restore "$REPO" alone "${pd}2" --yes --key-file /tmp/key >"$R/alone-p.txt" 2>&1 </dev/null; then
	cat "$R/alone-p.txt"
	[ "$(cryptsetup luksUUID "${pd}2")" = "$uuid" ] && ok "alone-part: LUKS UUID kept in partition 2" || bad "alone-part: UUID"
	if cryptsetup open --readonly --key-file /tmp/key "${pd}2" chk; then
		e2fsck -fn /dev/mapper/chk >"$R/fsck-alonep.txt" 2>&1 && ok "alone-part: inner e2fsck -fn clean" ||
			bad "alone-part: inner e2fsck: $(tail -5 "$R/fsck-alonep.txt")"
		mkdir -p /tmp/chk
		mount -o ro /dev/mapper/chk /tmp/chk && (cd /tmp/chk && find . -type f ! -path './lost+found/*' | sort | xargs sha256sum) >"$R/sums.alonep"
		umount /tmp/chk
		cmp -s "$R/sums.src" "$R/sums.alonep" && ok "alone-part: every file's sha256 matches" || bad "alone-part: files differ"
		cryptsetup close chk
	else
		bad "alone-part: partition 2 does not open with the passphrase"
	fi
	[ "$(sha256sum <"${pd}1")" = "$p1sum" ] && ok "alone-part: partition 1 untouched" || bad "alone-part: partition 1 changed"
else
	cat "$R/alone-p.txt"
	bad "alone-part: restore into ${pd}2"
fi

# --- the "encrypted laptop": p1 ext4 /boot, p2 LUKS2 holding an LVM PV (VG laptop: ext4 root
# and swap LVs, free extents), restored onto 1.5x and 0.6x: the root LV takes the change ---
lsrc=$(by_serial LSRC); lbig=$(by_serial LBIG); lsmall=$(by_serial LSMALL)
printf 'label: gpt\n,32M,L\n,,CA7D7CCB-63ED-4C53-861C-1742536059CC\n' | sfdisk -q "$lsrc" || exit 30
sleep 1
mkfs.ext4 -q -F -L lboot -d /tmp/boot "${lsrc}1" || exit 31
mkdir -p /tmp/ltree/home
i=0
while [ $i -lt 6 ]; do
	dd if=/dev/urandom of=/tmp/ltree/home/f$i bs=64k count=$((i * 4 + 1)) status=none
	i=$((i + 1))
done
echo "a laptop's root" >/tmp/ltree/hello.txt
(cd /tmp/ltree && find . -type f | sort | xargs sha256sum) >"$R/lsums.src"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file /tmp/key "${lsrc}2" || exit 32
cryptsetup open --key-file /tmp/key "${lsrc}2" lapplain || exit 33
export LVM_SUPPRESS_FD_WARNINGS=1
lvm pvcreate -q /dev/mapper/lapplain >/dev/null || exit 34
lvm vgcreate -q -s 4m laptop /dev/mapper/lapplain >/dev/null || exit 35
lvm lvcreate -q -y -L 100m -n root laptop >/dev/null || exit 36
lvm lvcreate -q -y -L 16m -n swap laptop >/dev/null || exit 37
mkfs.ext4 -q -F -L lroot -d /tmp/ltree /dev/laptop/root || exit 38
mkswap -L lswap /dev/laptop/swap >/dev/null || exit 39
vg_uuid=$(lvm vgs --noheadings -o vg_uuid laptop | tr -d ' ')
lv_bytes() { lvm lvs --noheadings --units b --nosuffix -o lv_size "laptop/$1" | tr -d ' '; }
root0=$(lv_bytes root); swap0=$(lv_bytes swap)
lvm vgchange -q -an laptop >/dev/null || exit 40
cryptsetup close lapplain || exit 41
rm -rf /tmp/ltree
sync
IRONCLONE_LUKS_PASSPHRASE="$PASS" ironclone backup "$lsrc" "$REPO" --name laptop --unlock \
	>"$R/lbackup.txt" 2>&1 </dev/null || { cat "$R/lbackup.txt"; exit 42; }
cat "$R/lbackup.txt"
grep -q 'VG laptop\|lvm2' "$R/lbackup.txt" && ok "laptop: the LVM PV inside LUKS is mapped" ||
	bad "laptop: backup summary"
for t in lbig lsmall; do
	eval dev=\$$t
	ironclone restore "$REPO" laptop "$dev" --yes --key-file /tmp/key >"$R/restore-$t.txt" 2>&1 </dev/null ||
		{ cat "$R/restore-$t.txt"; bad "laptop: restore onto $t"; continue; }
	cat "$R/restore-$t.txt"
	blockdev --rereadpt "$dev" 2>/dev/null || partprobe "$dev"
	sleep 1
	if ! cryptsetup open --key-file /tmp/key "${dev}2" lchk; then
		bad "$t: does not open with the passphrase"
		continue
	fi
	ok "$t: opens with the passphrase"
	lvm vgchange -q -ay laptop >/dev/null 2>&1 && ok "$t: VG laptop activates" || bad "$t: vgchange -ay"
	[ "$(lvm vgs --noheadings -o vg_uuid laptop | tr -d ' ')" = "$vg_uuid" ] && ok "$t: VG UUID kept" ||
		bad "$t: VG UUID"
	root=$(lv_bytes root); swap=$(lv_bytes swap)
	echo "job: $t root LV $root0 -> $root, swap $swap0 -> $swap"
	[ "$swap" = "$swap0" ] && ok "$t: swap LV keeps its size" || bad "$t: swap $swap0 -> $swap"
	if [ $t = lbig ]; then [ "$root" -gt "$root0" ]; else [ "$root" -lt "$root0" ]; fi &&
		ok "$t: root LV resized" || bad "$t: root LV $root0 -> $root"
	e2fsck -fn /dev/laptop/root >"$R/lfsck-$t.txt" 2>&1 && ok "$t: root LV e2fsck -fn clean" ||
		bad "$t: root LV e2fsck: $(tail -5 "$R/lfsck-$t.txt")"
	mkdir -p /tmp/lchk
	mount -o ro /dev/laptop/root /tmp/lchk &&
		(cd /tmp/lchk && find . -type f ! -path './lost+found/*' | sort | xargs sha256sum) >"$R/lsums.$t"
	umount /tmp/lchk
	cmp -s "$R/lsums.src" "$R/lsums.$t" && ok "$t: every root file's sha256 matches" || bad "$t: root files differ"
	lvm vgchange -q -an laptop >/dev/null 2>&1
	cryptsetup close lchk
done

# --- VM disks in the live system (issue 21; rides on this boot): qemu-img and
# qemu-storage-daemon's FUSE export must work from the initramfs (libraries, /dev/fuse) ---
truncate -s 64M /tmp/vm.img
mkdir -p /tmp/vmtree && echo "a VM's file" >/tmp/vmtree/vm.txt
mkfs.ext4 -q -F -L vmfs -d /tmp/vmtree /tmp/vm.img || exit 50
qemu-img convert -O qcow2 /tmp/vm.img /tmp/vm.qcow2 && rm -f /tmp/vm.img || exit 51
if ironclone backup /tmp/vm.qcow2 "$REPO" --name vm >"$R/vm.txt" 2>&1 </dev/null &&
	grep -q 'qcow2 disk, read through qemu' "$R/vm.txt"; then
	ok "vm: backup of a qcow2 through qemu-storage-daemon"
else
	bad "vm: backup: $(cat "$R/vm.txt")"
fi
if ironclone export "$REPO" vm /tmp/out.vmdk --size 96M >"$R/vmx.txt" 2>&1 </dev/null &&
	qemu-img check -q /tmp/out.vmdk && qemu-img convert -O raw /tmp/out.vmdk /tmp/out.raw; then
	ok "vm: exported as VMDK, qemu-img check clean"
	e2fsck -fn /tmp/out.raw >/dev/null 2>&1 && [ "$(debugfs -R 'cat /vm.txt' /tmp/out.raw 2>/dev/null)" = "a VM's file" ] &&
		ok "vm: exported fs e2fsck clean, file intact" || bad "vm: exported fs"
else
	bad "vm: export: $(cat "$R/vmx.txt")"
fi
rm -f /tmp/vm.qcow2 /tmp/out.vmdk /tmp/out.raw
echo "job: $fails failed checks"
echo "job: plan done"
[ "$fails" -eq 0 ]
JOB
truncate -s 256M "$tmp/repo.img"
mkfs.ext4 -q -F -L IRONREPO -d "$tmp/jobfs" "$tmp/repo.img" || fail "mkfs.ext4 -d for the job disk"

run_check_job live-luks 44 "boot + build + backups + restores + checks" --timeout 300 \
	--append " ironclone.job=LABEL=IRONREPO:ironclone/job.sh ironclone.repo=LABEL=IRONREPO ironclone.net=0" \
	--disk "$tmp/repo.img,if=virtio,serial=REPO" \
	--disk "$tmp/src.img,if=virtio,serial=SRC" \
	--disk "$tmp/big.img,if=virtio,serial=BIG" \
	--disk "$tmp/small.img,if=virtio,serial=SMALL" \
	--disk "$tmp/lsrc.img,if=virtio,serial=LSRC" \
	--disk "$tmp/lbig.img,if=virtio,serial=LBIG" \
	--disk "$tmp/lsmall.img,if=virtio,serial=LSMALL"

# Nothing in the repository holds the passphrase (the job disk is mounted read-only here).
e2fsck -fn "$tmp/repo.img" >/dev/null 2>&1 || fail "repository fs not clean after the job"
mnt="$tmp/mnt"
mkdir -p "$mnt"
mount -o ro,loop "$tmp/repo.img" "$mnt" || fail "mounting the repository disk"
[[ -d $mnt/repo/images ]] || fail "no repository on the job disk"
if grep -rlaF -- "$PASS" "$mnt" >&2; then fail "the passphrase is stored on the repository disk"; fi
umount "$mnt"
mnt=
echo "PASS: LUKS2 backup with --unlock (wrong passphrase refused), restore to 1.5x and 0.6x: opens, same UUID, e2fsck clean, files match, passphrase stored nowhere; the encrypted laptop (LUKS2 > LVM > ext4) too; a qcow2 backed up and exported as VMDK in the live system"
