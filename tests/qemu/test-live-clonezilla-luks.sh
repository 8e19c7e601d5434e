#!/usr/bin/env bash
# A Clonezilla 3.x image of a LUKS2 partition restored by ironclone in the live system (issue
# 21; the host has no device-mapper). On the host: a 160 MiB GPT disk, p1 ext4 and p2 LUKS2
# (cryptsetup luksFormat on a file), saved as ocs-sr saves an opened volume: luks-dev.list,
# sda2-luksHeader.bin (luksHeaderBackup), the decrypted ext4 as ocs_luks_Ab1.ext4-ptcl-img.zst
# (partclone), sda1's image, the table and GPT files. In the live system (one boot): a restore
# without the key is refused and writes nothing; `ironclone restore DIR img TARGET --key-file`
# onto a 1.5x disk; then p1 passes e2fsck -fn, p2 keeps the saved LUKS UUID, opens with the
# passphrase, its ext4 passes e2fsck -fn, has grown to fill the mapping, and every file's
# sha256 matches. IRONCLONE_BUILD names the directory holding kernel/ and initramfs.img
# (default build/); IRONCLONE_BIN the (static) binary under test, which comes on the job disk.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
live_job_setup
for t in sgdisk sfdisk cryptsetup partclone.ext4 zstd mkfs.ext4; do
	command -v "$t" >/dev/null || fail "$t missing (run scripts/setup.sh)"
done
PASS="ironclone clonezilla luks $$ $RANDOM"
MAPPER=ocs_luks_Ab1

# the source disk's layout: p1 32 MiB, p2 the rest
truncate -s 160M "$tmp/src.img"
sgdisk -Z -n 1:2048:+32M -t 1:8300 -n 2:0:0 -t 2:8309 "$tmp/src.img" >/dev/null
p2_bytes=$(($(sfdisk -J "$tmp/src.img" | tr -d ' \n' | sed -E 's/.*"start":[0-9]+,"size":([0-9]+).*/\1/') * 512))

# the filesystems' files
mkdir -p "$tmp/files/boot" "$tmp/files/root/sub"
echo "boot files" >"$tmp/files/boot/grub.cfg"
for i in 0 1 2 3 4 5; do
	head -c $((i * 200000 + 4096)) /dev/urandom >"$tmp/files/root/sub/f$i"
done
echo "hello from inside LUKS" >"$tmp/files/root/hello.txt"
(cd "$tmp/files/root" && find . -type f | sort | xargs sha256sum) >"$tmp/jobfs/ironclone/sums"

# the Clonezilla folder
img="$tmp/jobfs/partimag/img"
mkdir -p "$img"
truncate -s 32M "$tmp/p1.fs"
mkfs.ext4 -q -F -L boot -d "$tmp/files/boot" "$tmp/p1.fs"
printf '%s' "$PASS" >"$tmp/key"
truncate -s "$p2_bytes" "$tmp/p2.luks"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$tmp/key" "$tmp/p2.luks" || fail "cryptsetup luksFormat on a file"
uuid=$(cryptsetup luksUUID "$tmp/p2.luks")
cryptsetup luksHeaderBackup "$tmp/p2.luks" --header-backup-file "$img/sda2-luksHeader.bin"
hdr=$(stat -c %s "$img/sda2-luksHeader.bin")
inner=$((p2_bytes - hdr))
truncate -s "$inner" "$tmp/inner.fs"
mkfs.ext4 -q -F -L root -d "$tmp/files/root" "$tmp/inner.fs"
for f in "p1.fs:sda1" "inner.fs:$MAPPER"; do
	partclone.ext4 -q -c -s "$tmp/${f%%:*}" -O "$img/${f#*:}.ext4-ptcl-img" -L "$tmp/pc.log" >/dev/null 2>&1 ||
		fail "partclone.ext4 -c of ${f%%:*}"
	zstd -q -f --rm "$img/${f#*:}.ext4-ptcl-img"
done
sfdisk -d "$tmp/src.img" | sed "s|$tmp/src.img|/dev/sda|g" >"$img/sda-pt.sf"
sectors=$((160 * 2048))
dd if="$tmp/src.img" of="$img/sda-mbr" bs=512 count=1 status=none
dd if="$tmp/src.img" of="$img/sda-gpt-1st" bs=512 count=34 status=none
dd if="$tmp/src.img" of="$img/sda-gpt-2nd" bs=512 skip=$((sectors - 33)) count=33 status=none
printf 'Disk /dev/sda: %ss\nPartition Table: gpt\n' "$sectors" >"$img/sda-pt.parted"
echo sda >"$img/disk"
echo "sda1 sda2" >"$img/parts"
printf '# <Block device> <UUID> <Device mapped name>\n/dev/sda2 %s %s\n' "$uuid" "$MAPPER" >"$img/luks-dev.list"
printf '# <Device name>   <File system>   <Size>\n/dev/sda1 ext4 32M\n/dev/sda2 crypto_LUKS\n/dev/mapper/%s ext4\n' \
	"$MAPPER" >"$img/dev-fs.list"
cp "$tmp/key" "$tmp/jobfs/ironclone/pass"
truncate -s 240M "$tmp/target.img"

cat >"$tmp/jobfs/ironclone/job.sh" <<JOB
#!/bin/sh
# Runs in the live system; every check prints "check: ok WHAT" or "check: FAIL WHAT".
set -u
UUID=$uuid
INNER=$inner
JOB
cat >>"$tmp/jobfs/ironclone/job.sh" <<'JOB'
D="${IRONCLONE_JOB_DIR:?}"
IC="$D/ironclone/bin/ironclone"
. "$D/ironclone/guest-lib.sh"
R=/tmp/results
mkdir -p "$R"
cp "$D/ironclone/pass" /tmp/key
t=$(by_serial TARGET)
echo "job: target=$t"
[ -n "$t" ] || { echo "job: target not found"; exit 20; }

# without the key: refused, nothing written
if "$IC" restore "$D/partimag" img "$t" --yes --no-nvram >"$R/nokey.txt" 2>&1 </dev/null; then
	bad "restore without the key went through"
elif grep -q "sda2 is LUKS" "$R/nokey.txt" && grep -q -- "--key-file" "$R/nokey.txt" &&
	[ "$(dd if="$t" bs=1M count=2 status=none | tr -d '\000' | wc -c)" -eq 0 ]; then
	ok "restore without the key refused naming sda2 and the options, target untouched"
else
	bad "restore without the key: $(cat "$R/nokey.txt")"
fi

start=$(date +%s)
"$IC" restore "$D/partimag" img "$t" --yes --no-nvram --key-file /tmp/key >"$R/restore.txt" 2>&1 </dev/null ||
	{ cat "$R/restore.txt"; bad "restore with --key-file"; }
cat "$R/restore.txt"
echo "job: restore took $(($(date +%s) - start)) s"
blockdev --rereadpt "$t" 2>/dev/null || partprobe "$t"
sleep 1
p1=$(part "$t" 1)
p2=$(part "$t" 2)
e2fsck -fn "$p1" >/dev/null 2>&1 && ok "p1 e2fsck -fn clean" || bad "p1 e2fsck"
got=$(cryptsetup luksUUID "$p2" 2>&1)
[ "$got" = "$UUID" ] && ok "p2 keeps the saved LUKS UUID" || bad "p2 LUKS UUID $got, saved $UUID"
if cryptsetup open --readonly --key-file /tmp/key "$p2" chk; then
	ok "p2 opens with the passphrase"
	e2fsck -fn /dev/mapper/chk >"$R/fsck.txt" 2>&1 && ok "inner ext4 e2fsck -fn clean" ||
		bad "inner e2fsck: $(tail -5 "$R/fsck.txt")"
	blocks=$(dumpe2fs -h /dev/mapper/chk 2>/dev/null | awk -F: '/^Block count/ {print $2+0}')
	bsize=$(dumpe2fs -h /dev/mapper/chk 2>/dev/null | awk -F: '/^Block size/ {print $2+0}')
	msize=$(blockdev --getsize64 /dev/mapper/chk)
	fs=$((blocks * bsize))
	echo "job: inner ext4 $INNER -> $fs bytes, mapping $msize bytes"
	[ "$fs" -gt "$INNER" ] && [ $((msize - fs)) -lt $((bsize * 1024)) ] &&
		ok "inner ext4 grown to fill the mapping" || bad "inner ext4 $fs of $msize (saved $INNER)"
	mkdir -p /tmp/chk
	mount -o ro /dev/mapper/chk /tmp/chk &&
		(cd /tmp/chk && sha256sum -c "$D/ironclone/sums") >"$R/sums.txt" 2>&1 &&
		ok "every file's sha256 matches" || bad "files: $(grep -v ': OK' "$R/sums.txt" | head -5)"
	umount /tmp/chk 2>/dev/null
	cryptsetup close chk
else
	bad "p2 does not open with the passphrase"
fi
echo "job: $fails failed checks"
echo "job: plan done"
[ "$fails" -eq 0 ]
JOB
size=$(du -sm "$tmp/jobfs" | cut -f1)
truncate -s $((size + 64))M "$tmp/job.img"
mkfs.ext4 -q -F -L IRONJOB -d "$tmp/jobfs" "$tmp/job.img" || fail "mkfs.ext4 -d for the job disk"

run_check_job live-clonezilla-luks 7 "boot + restore of a Clonezilla LUKS image + checks" --timeout 300 \
	--kernel "$BUILD/kernel/vmlinuz" --initrd "$BUILD/initramfs.img" \
	--append " ironclone.job=LABEL=IRONJOB:ironclone/job.sh ironclone.repo=LABEL=IRONJOB ironclone.net=0 no_timer_check" \
	--disk "$tmp/job.img,if=virtio,serial=JOB" \
	--disk "$tmp/target.img,if=virtio,serial=TARGET"
echo "PASS: a Clonezilla image of a LUKS2 partition restored with its key in the live system: same LUKS UUID, opens with the passphrase, inner ext4 clean, grown, every file intact; without the key refused, nothing written"
