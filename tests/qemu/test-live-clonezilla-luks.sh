#!/usr/bin/env bash
# A Clonezilla 3.x image of a LUKS2 partition restored by ironclone in the live system (issue
# 21; the host has no device-mapper). On the host: a 160 MiB GPT disk, p1 ext4 and p2 LUKS2
# (cryptsetup luksFormat on a file), saved as ocs-sr saves an opened volume: luks-dev.list,
# sda2-luksHeader.bin (luksHeaderBackup), the decrypted ext4 as ocs_luks_Ab1.ext4-ptcl-img.zst
# (partclone), sda1's image, the table and GPT files. In the live system (one boot): a restore
# without the key is refused and writes nothing; `ironclone restore DIR img TARGET --key-file`
# onto a 1.5x disk; then p1 passes e2fsck -fn, p2 keeps the saved LUKS UUID, opens with the
# passphrase, its ext4 passes e2fsck -fn, has grown to fill the mapping, and every file's
# sha256 matches. Then the encrypted laptop: an LVM PV (VG with one linear ext4 LV, made by
# lvm2 on a loop device on the host) inside LUKS2, saved as ocs-sr saves it (the PV as
# /dev/mapper/<name> in lvm_vg_dev.list and lvm_<vg>.conf, the LV's partclone image):
# restored with the key onto 1.5x, the LUKS UUID and the VG UUID are the saved ones, the VG
# activates, the root LV has grown, passes e2fsck -fn and holds every file. Then the first
# folder made saveparts (no disk, no table files): `restore DIR parts --part sda2=PART
# --key-file` onto a larger partition of a third disk, checked as the first. Last, the first
# image once more through the TUI on the serial console, typed and read by tui-drive.py on
# the host as a person would (pick the folder, a wrong passphrase refused, the right one,
# the target by serial, the typed confirmation), with the same checks; and in the same TUI
# session the saveparts folder's LUKS partition (its own row, the passphrase tested on its
# header, partition 1 of an NVMe disk picked, the LUKS plan, the disk's serial typed), its
# partition checked as the first. Needs root on
# the host (losetup, lvm2). IRONCLONE_BUILD names the directory holding kernel/ and
# initramfs.img (default build/); IRONCLONE_BIN the (static) binary under test, which comes
# on the job disk.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
live_job_setup
for t in sgdisk sfdisk cryptsetup partclone.ext4 zstd mkfs.ext4 lvm losetup; do
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
truncate -s 32M "$tmp/p1.fs"
mkfs.ext4 -q -F -L boot -d "$tmp/files/boot" "$tmp/p1.fs"
printf '%s' "$PASS" >"$tmp/key"
cp "$tmp/key" "$tmp/jobfs/ironclone/pass"

# folder DIR MAPPER: a Clonezilla folder of the source disk with sda2 LUKS2 saved opened as
# MAPPER (what is inside is the caller's): table files, sda1's image, luks-dev.list and
# sda2-luksHeader.bin of a fresh LUKS2 volume. Sets uuid and inner (the plaintext's bytes).
folder() {
	local img="$1" mapper="$2" sectors=$((160 * 2048))
	mkdir -p "$img"
	rm -f "$tmp/p2.luks"
	truncate -s "$p2_bytes" "$tmp/p2.luks"
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file "$tmp/key" "$tmp/p2.luks" || fail "cryptsetup luksFormat on a file"
	uuid=$(cryptsetup luksUUID "$tmp/p2.luks")
	cryptsetup luksHeaderBackup "$tmp/p2.luks" --header-backup-file "$img/sda2-luksHeader.bin"
	inner=$((p2_bytes - $(stat -c %s "$img/sda2-luksHeader.bin")))
	pclone "$tmp/p1.fs" "$img/sda1.ext4-ptcl-img"
	sfdisk -d "$tmp/src.img" | sed "s|$tmp/src.img|/dev/sda|g" >"$img/sda-pt.sf"
	dd if="$tmp/src.img" of="$img/sda-mbr" bs=512 count=1 status=none
	dd if="$tmp/src.img" of="$img/sda-gpt-1st" bs=512 count=34 status=none
	dd if="$tmp/src.img" of="$img/sda-gpt-2nd" bs=512 skip=$((sectors - 33)) count=33 status=none
	printf 'Disk /dev/sda: %ss\nPartition Table: gpt\n' "$sectors" >"$img/sda-pt.parted"
	echo sda >"$img/disk"
	echo "sda1 sda2" >"$img/parts"
	printf '# <Block device> <UUID> <Device mapped name>\n/dev/sda2 %s %s\n' "$uuid" "$mapper" >"$img/luks-dev.list"
}
pclone() { # pclone FS OUT: partclone.ext4 -c of FS, zstd-compressed as OUT.zst
	partclone.ext4 -q -c -s "$1" -O "$2" -L "$tmp/pc.log" >/dev/null 2>&1 || fail "partclone.ext4 -c of $1"
	zstd -q -f --rm "$2"
}

# 1. ext4 inside LUKS2
MAPPER=ocs_luks_Ab1
img="$tmp/jobfs/partimag/img"
folder "$img" "$MAPPER"
iuuid=$uuid iinner=$inner
truncate -s "$inner" "$tmp/inner.fs"
mkfs.ext4 -q -F -L root -d "$tmp/files/root" "$tmp/inner.fs"
pclone "$tmp/inner.fs" "$img/$MAPPER.ext4-ptcl-img"
printf '# <Device name>   <File system>   <Size>\n/dev/sda1 ext4 32M\n/dev/sda2 crypto_LUKS\n/dev/mapper/%s ext4\n' \
	"$MAPPER" >"$img/dev-fs.list"
truncate -s 240M "$tmp/target.img" "$tmp/ttarget.img"

# 3. (restored last) the same LUKS partition in a saveparts folder: no disk, no table or
# boot-area files; its target is partition 1 (200 MiB) of a third disk
pimg="$tmp/jobfs/partimag/parts"
mkdir -p "$pimg"
for f in "$img"/*; do
	case "${f##*/}" in disk | sda-*) ;; *) cp "$f" "$pimg/" ;; esac
done
truncate -s 240M "$tmp/ptarget.img" "$tmp/qtarget.img"
sgdisk -Z -n 1:2048:+200M -t 1:8309 "$tmp/ptarget.img" >/dev/null
sgdisk -Z -n 1:2048:+200M -t 1:8309 "$tmp/qtarget.img" >/dev/null

# 2. the encrypted laptop: an LVM PV inside LUKS2 (the whole plaintext), one linear LV
# "root" of 64 MiB from extent 0, made by lvm2 on a loop device (pvcreate, vgcreate, the
# LV added by vgcfgrestore: lvcreate would need device-mapper) with the ext4 laid on it
LMAPPER=luks-laptop
limg="$tmp/jobfs/partimag/laptop"
folder "$limg" "$LMAPPER"
luuid=$uuid
VG=czlk$$
export LVM_SUPPRESS_FD_WARNINGS=1
on() { # on DEV CMD ARGS...: lvm2 seeing DEV only, no backup or archive under /etc/lvm
	local dev="$1" cmd="$2"
	shift 2
	lvm "$cmd" --config "devices { filter = [ \"a|^$dev\$|\", \"r|.*|\" ] } backup { backup = 0 archive = 0 }" "$@"
}
r=$(head -c 4000 /dev/urandom | tr -dc 'A-Za-z0-9')
pv_id="${r:0:6}-${r:6:4}-${r:10:4}-${r:14:4}-${r:18:4}-${r:22:4}-${r:26:6}"
lv_id="${r:32:6}-${r:38:4}-${r:42:4}-${r:46:4}-${r:50:4}-${r:54:4}-${r:58:6}"
truncate -s "$inner" "$tmp/pv.img"
lo=$(losetup -f --show "$tmp/pv.img")
trap 'losetup -d "$lo" 2>/dev/null || true; rm -rf "$tmp"' EXIT
on "$lo" pvcreate -q -ff -y --uuid "$pv_id" --norestorefile "$lo" >/dev/null 2>"$tmp/lvm.log" || { cat "$tmp/lvm.log" >&2; fail "lvm pvcreate"; }
on "$lo" vgcreate -q -s 4m "$VG" "$lo" >/dev/null 2>"$tmp/lvm.log" || { cat "$tmp/lvm.log" >&2; fail "lvm vgcreate"; }
on "$lo" vgcfgbackup -q -f "$tmp/vg.txt" "$VG" >/dev/null 2>"$tmp/lvm.log" || { cat "$tmp/lvm.log" >&2; fail "lvm vgcfgbackup"; }
{
	head -n "$(($(grep -n '^}' "$tmp/vg.txt" | tail -1 | cut -d: -f1) - 1))" "$tmp/vg.txt"
	printf 'logical_volumes {\nroot {\nid = "%s"\nstatus = ["READ", "WRITE", "VISIBLE"]\nflags = []\nsegment_count = 1\n' "$lv_id"
	printf 'segment1 {\nstart_extent = 0\nextent_count = 16\ntype = "striped"\nstripe_count = 1\nstripes = ["pv0", 0]\n}\n}\n}\n}\n'
} >"$tmp/vg-lvs.txt"
on "$lo" vgcfgrestore -q -f "$tmp/vg-lvs.txt" "$VG" >/dev/null 2>"$tmp/lvm.log" || { cat "$tmp/lvm.log" >&2; fail "lvm vgcfgrestore"; }
on "$lo" vgcfgbackup -q -f "$limg/lvm_$VG.conf" "$VG" >/dev/null 2>"$tmp/lvm.log" || { cat "$tmp/lvm.log" >&2; fail "lvm vgcfgbackup"; }
losetup -d "$lo"
trap 'rm -rf "$tmp"' EXIT
pe_start=$(awk '/pe_start = / {print $3; exit}' "$limg/lvm_$VG.conf")
vg_uuid=$(awk '/^\tid = / {gsub(/"/, "", $3); print $3; exit}' "$limg/lvm_$VG.conf")
sed -i -E "s|^(\s*device = )\"[^\"]*\"|\1\"/dev/mapper/$LMAPPER\"|" "$limg/lvm_$VG.conf"
truncate -s 64M "$tmp/root.fs"
mkfs.ext4 -q -F -L lroot -d "$tmp/files/root" "$tmp/root.fs"
dd if="$tmp/root.fs" of="$tmp/pv.img" bs=1M oflag=seek_bytes seek=$((pe_start * 512)) conv=notrunc status=none
echo "$VG /dev/mapper/$LMAPPER $pv_id" >"$limg/lvm_vg_dev.list"
printf '/dev/%s/root  Linux rev 1.0 ext4 filesystem data\n' "$VG" >"$limg/lvm_logv.list"
pclone "$tmp/root.fs" "$limg/$VG-root.ext4-ptcl-img"
truncate -s 240M "$tmp/ltarget.img"

cat >"$tmp/jobfs/ironclone/job.sh" <<JOB
#!/bin/sh
# Runs in the live system; every check prints "check: ok WHAT" or "check: FAIL WHAT".
set -u
UUID=$iuuid
INNER=$iinner
LUUID=$luuid
VG=$VG
VG_UUID=$vg_uuid
JOB
cat >>"$tmp/jobfs/ironclone/job.sh" <<'JOB'
D="${IRONCLONE_JOB_DIR:?}"
IC="$D/ironclone/bin/ironclone"
. "$D/ironclone/guest-lib.sh"
R=/tmp/results
mkdir -p "$R"
cp "$D/ironclone/pass" /tmp/key
# inner DEV WHAT PREFIX: the LUKS partition DEV keeps the saved UUID, opens with the
# passphrase, and its ext4 passes e2fsck -fn, has grown to fill the mapping and holds every
# file; PREFIX starts each check's name
inner() {
	dev="$1" what="$2" pre="$3"
	got=$(cryptsetup luksUUID "$dev" 2>&1)
	[ "$got" = "$UUID" ] && ok "${pre}$what keeps the saved LUKS UUID" || bad "${pre}$what LUKS UUID $got, saved $UUID"
	if cryptsetup open --readonly --key-file /tmp/key "$dev" chk; then
		ok "${pre}$what opens with the passphrase"
		e2fsck -fn /dev/mapper/chk >"$R/fsck.txt" 2>&1 && ok "${pre}inner ext4 e2fsck -fn clean" ||
			bad "${pre}inner e2fsck: $(tail -5 "$R/fsck.txt")"
		blocks=$(dumpe2fs -h /dev/mapper/chk 2>/dev/null | awk -F: '/^Block count/ {print $2+0}')
		bsize=$(dumpe2fs -h /dev/mapper/chk 2>/dev/null | awk -F: '/^Block size/ {print $2+0}')
		msize=$(blockdev --getsize64 /dev/mapper/chk)
		fs=$((blocks * bsize))
		echo "job: ${pre}inner ext4 $INNER -> $fs bytes, mapping $msize bytes"
		[ "$fs" -gt "$INNER" ] && [ $((msize - fs)) -lt $((bsize * 1024)) ] &&
			ok "${pre}inner ext4 grown to fill the mapping" || bad "${pre}inner ext4 $fs of $msize (saved $INNER)"
		mkdir -p /tmp/chk
		mount -o ro /dev/mapper/chk /tmp/chk &&
			(cd /tmp/chk && sha256sum -c "$D/ironclone/sums") >"$R/sums.txt" 2>&1 &&
			ok "${pre}every file's sha256 matches" || bad "${pre}files: $(grep -v ': OK' "$R/sums.txt" | head -5)"
		umount /tmp/chk 2>/dev/null
		cryptsetup close chk
	else
		bad "${pre}$what does not open with the passphrase"
	fi
}

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
inner "$p2" "p2" ""

# the encrypted laptop: LVM inside LUKS
lt=$(by_serial LTARGET)
"$IC" restore "$D/partimag" laptop "$lt" --yes --no-nvram --key-file /tmp/key >"$R/lrestore.txt" 2>&1 </dev/null ||
	bad "laptop: restore with --key-file"
cat "$R/lrestore.txt"
blockdev --rereadpt "$lt" 2>/dev/null || partprobe "$lt"
sleep 1
lp2=$(part "$lt" 2)
got=$(cryptsetup luksUUID "$lp2" 2>&1)
[ "$got" = "$LUUID" ] && ok "laptop: p2 keeps the saved LUKS UUID" || bad "laptop: LUKS UUID $got, saved $LUUID"
if cryptsetup open --key-file /tmp/key "$lp2" lchk; then
	export LVM_SUPPRESS_FD_WARNINGS=1
	modprobe dm-mod 2>/dev/null
	lvm vgchange -q -ay "$VG" >/dev/null 2>&1 && ok "laptop: VG $VG activates" || bad "laptop: vgchange -ay $VG"
	got=$(lvm vgs --noheadings -o vg_uuid "$VG" | tr -d ' ')
	[ "$got" = "$VG_UUID" ] && ok "laptop: VG UUID kept" || bad "laptop: VG UUID $got, saved $VG_UUID"
	size=$(lvm lvs --noheadings --units b --nosuffix -o lv_size "$VG/root" | tr -d ' ')
	echo "job: laptop root LV 67108864 -> $size bytes"
	[ "${size:-0}" -gt 67108864 ] && ok "laptop: root LV grown" || bad "laptop: root LV $size"
	e2fsck -fn "/dev/$VG/root" >"$R/lfsck.txt" 2>&1 && ok "laptop: root LV e2fsck -fn clean" ||
		bad "laptop: e2fsck: $(tail -5 "$R/lfsck.txt")"
	mkdir -p /tmp/lchk
	mount -o ro "/dev/$VG/root" /tmp/lchk &&
		(cd /tmp/lchk && sha256sum -c "$D/ironclone/sums") >"$R/lsums.txt" 2>&1 &&
		ok "laptop: every file's sha256 matches" || bad "laptop: files: $(grep -v ': OK' "$R/lsums.txt" | head -5)"
	umount /tmp/lchk 2>/dev/null
	lvm vgchange -q -an "$VG" >/dev/null 2>&1
	cryptsetup close lchk
else
	bad "laptop: p2 does not open with the passphrase"
fi
# the saveparts folder: --part sda2 onto partition 1 of the third disk
pp1=$(part "$(by_serial PTARGET)" 1)
start=$(date +%s)
"$IC" restore "$D/partimag" parts --part "sda2=$pp1" --yes --key-file /tmp/key >"$R/prestore.txt" 2>&1 </dev/null ||
	bad "saveparts: restore --part with --key-file"
cat "$R/prestore.txt"
echo "job: saveparts restore took $(($(date +%s) - start)) s"
inner "$pp1" "the partition" "saveparts: "

# The TUI, driven from the host through the serial port (tui-drive.py types and reads the
# screens): the image picked from a typed path, a wrong passphrase refused, the right one
# taken, the target picked and confirmed by its serial, restored; then quit.
tt=$(by_serial TTARGET)
dmesg -n 1 2>/dev/null
stty rows 25 cols 80 </dev/ttyS0 2>/dev/null
echo "job: TUI on ttyS0 for $tt"
TERM=linux HOME=/root "$IC" </dev/ttyS0 >/dev/ttyS0 2>"$R/tui.err"
rc=$?
echo
echo "job: TUI exited rc=$rc"
[ "$rc" -eq 0 ] && ok "TUI: quit cleanly" || bad "TUI: rc=$rc $(tail -3 "$R/tui.err")"
blockdev --rereadpt "$tt" 2>/dev/null || partprobe "$tt"
sleep 1
e2fsck -fn "$(part "$tt" 1)" >/dev/null 2>&1 && ok "TUI: p1 e2fsck -fn clean" || bad "TUI: p1 e2fsck"
inner "$(part "$tt" 2)" "p2" "TUI: "
qt=$(by_serial QTARGET)
blockdev --rereadpt "$qt" 2>/dev/null || partprobe "$qt"
inner "$(part "$qt" 1)" "the partition" "TUI saveparts: "

echo "job: $fails failed checks"
echo "job: plan done"
[ "$fails" -eq 0 ]
JOB
size=$(du -sm "$tmp/jobfs" | cut -f1)
truncate -s $((size + 64))M "$tmp/job.img"
mkfs.ext4 -q -F -L IRONJOB -d "$tmp/jobfs" "$tmp/job.img" || fail "mkfs.ext4 -d for the job disk"

# The TUI's steps, typed on the guest's serial console while the job runs (see job.sh's end);
# if the driver fails, the VM is stopped at once rather than left at a screen until the timeout.
sock="$tmp/serial.sock"
trap 'cat "$tmp/drive.out" 2>/dev/null; rm -rf "$tmp"' EXIT
tui_drive_bg "$tmp/drive.out" "$tmp/qemu.pid" --timeout 240 --fail-on "Something went wrong" "$sock" \
	'wait What do you want to do?' 'keys r' \
	'wait Which repository holds the image?' 'keys /' 'wait Path:' \
	'keys /mnt/repo/partimag{Enter}' \
	'wait Restore: which image? && laptop' 'select ^\s*img\s {Down}' 'keys {Enter}' \
	"wait The image's LUKS passphrase" 'keys not the passphrase{Enter}' \
	'wait Wrong passphrase' "keys $PASS{Enter}" \
	'wait Restore: which disk to OVERWRITE?' 'select TTARGET {Down}' 'keys {Enter}' \
	'wait The new layout (nothing written yet) && grow' 'keys {Enter}' \
	'wait ERASE A DISK? && TTARGET' 'keys TTARGET{Enter}' \
	'wait restored onto' 'keys {Enter}' \
	'wait What do you want to do?' 'keys r' \
	'wait Which repository holds the image?' 'keys /' 'wait Path:' \
	'keys /mnt/repo/partimag{Enter}' \
	'wait Restore: which image? && parts/sda2' 'select parts/sda2 {Down}' 'keys {Enter}' \
	"wait The image's LUKS passphrase" "keys $PASS{Enter}" \
	'wait which PARTITION to OVERWRITE?' 'select nvme0n1\s+1\s {Down}' 'keys {Enter}' \
	'wait The new layout (nothing written yet) && grow && is LUKS' 'keys {Enter}' \
	'wait ERASE A PARTITION? && QTARGET' 'keys QTARGET{Enter}' \
	'wait LUKS partition sda2 of && no table was written' 'keys {Enter}'

run_check_job live-clonezilla-luks 30 "boot + restores of three Clonezilla LUKS images (CLI, and two through the TUI) + checks" --timeout 420 \
	--kernel "$BUILD/kernel/vmlinuz" --initrd "$BUILD/initramfs.img" \
	--append " ironclone.job=LABEL=IRONJOB:ironclone/job.sh ironclone.repo=LABEL=IRONJOB ironclone.net=0 no_timer_check" \
	--serial-sock "$sock" --pidfile "$tmp/qemu.pid" \
	--disk "$tmp/job.img,if=virtio,serial=JOB" \
	--disk "$tmp/target.img,if=virtio,serial=TARGET" \
	--disk "$tmp/ltarget.img,if=virtio,serial=LTARGET" \
	--disk "$tmp/ptarget.img,if=virtio,serial=PTARGET" \
	--disk "$tmp/ttarget.img,if=virtio,serial=TTARGET" \
	--disk "$tmp/qtarget.img,if=nvme,serial=QTARGET"
wait "$TUI_DRIVE"
[[ ! -e "$tmp/drive.out.failed" ]] || fail "the TUI was not driven to its end (tui-drive.py's output above)"
echo "PASS: Clonezilla images of a LUKS2 partition restored with the key in the live system: ext4 inside (same LUKS UUID, opens, e2fsck clean, grown, files intact; without the key refused, nothing written), LVM inside (same LUKS and VG UUIDs, VG activates, root LV grown, e2fsck clean, files intact), a saveparts folder's LUKS partition onto a larger partition (same checks as the first), and through the TUI driven on the serial console the first image again (wrong passphrase refused, right one taken, the same checks) and the saveparts LUKS partition onto an NVMe disk's partition (the same checks)"
