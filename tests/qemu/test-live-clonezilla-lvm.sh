#!/usr/bin/env bash
# suite: all
# A Clonezilla image of an LVM disk restored by ironclone activates and mounts in the live
# system (issue 21). On the host (no device-mapper): a PV made by lvm2 (pvcreate, vgcreate,
# its LVs added by vgcfgrestore) holding an ext4 LV "root" in two out-of-order segments, an
# XFS LV "data" and a swap LV, each filesystem built in a file and laid onto its extents;
# the Clonezilla folder made of it as ocs-sr writes one (partclone images, lvm_vg_dev.list,
# lvm_logv.list, lvm_<vg>.conf from vgcfgbackup, swappt-*.info, the GPT files); `ironclone
# restore` of that folder onto a disk image. In the live system (kernel+initramfs, one
# boot): `vgchange -ay` activates the VG, e2fsck -fn passes on the root LV, both LVs mount
# and hold every file (sha256), blkid sees the swap LV with its saved UUID. A second image
# holds a VG on the PVs of two disks (an LV spanning both); each disk is restored on its
# own (`--disk`), and in the live system the VG activates and its LV is e2fsck-clean,
# mounts and holds every file.
# IRONCLONE_BUILD names the directory holding kernel/ and initramfs.img (default build/);
# IRONCLONE_BIN the ironclone binary that restores on the host. CI (make test) covers the same
# ground on the host with tests/clonezilla_lvm.rs (restore and import judged by lvm2, e2fsck,
# xfs_repair).
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
BUILD="${IRONCLONE_BUILD:-$ROOT/build}"
BIN="${IRONCLONE_BIN:-$ROOT/target/x86_64-unknown-linux-musl/release/ironclone}"
[[ -f "$BUILD/initramfs.img" ]] || fail "$BUILD/initramfs.img missing (make iso)"
[[ -x "$BIN" ]] || fail "$BIN missing (make build)"
for t in lvm losetup sgdisk sfdisk partclone.ext4 partclone.xfs mkfs.xfs mkswap zstd blkid; do
	command -v "$t" >/dev/null || fail "$t missing (run scripts/setup.sh)"
done
tmp="$(mktemp -d)"
loops=()
cleanup() {
	for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
	umount "$tmp/mnt" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
MIB=$((1 << 20))
EXT=$((4 * MIB))
VG=czqvg$$
export LVM_SUPPRESS_FD_WARNINGS=1
lvmid() { # 32 random letters and digits as lvm2 prints ids (6-4-4-4-4-4-6)
	local r
	r=$(head -c 4000 /dev/urandom | tr -dc 'A-Za-z0-9')
	echo "${r:0:6}-${r:6:4}-${r:10:4}-${r:14:4}-${r:18:4}-${r:22:4}-${r:26:6}"
}
on() { # on DEV CMD ARGS...: lvm2 seeing DEV only, no backup or archive under /etc/lvm
	local dev="$1" cmd="$2"
	shift 2
	lvm "$cmd" --config "devices { filter = [ \"a|^$dev\$|\", \"r|.*|\" ] } backup { backup = 0 archive = 0 }" "$@"
}

# the LVs' filesystems, as files
mkdir -p "$tmp/files/root" "$tmp/files/data" "$tmp/mnt"
for i in 0 1 2 3 4 5; do
	head -c $((i * 150000 + 4096)) /dev/urandom >"$tmp/files/root/r$i"
	head -c $((i * 230000 + 777)) /dev/urandom >"$tmp/files/data/d$i"
done
(cd "$tmp/files" && sha256sum root/* data/*) >"$tmp/sums"
truncate -s $((6 * EXT)) "$tmp/root.fs"
mkfs.ext4 -q -F -L czroot -d "$tmp/files/root" "$tmp/root.fs"
truncate -s $((80 * EXT)) "$tmp/data.fs"
mkfs.xfs -q -f -L czdata "$tmp/data.fs"
mount -o loop "$tmp/data.fs" "$tmp/mnt"
cp "$tmp/files/data"/* "$tmp/mnt/"
umount "$tmp/mnt"
truncate -s $((2 * EXT)) "$tmp/swap.fs"
mkswap -q -L czswap "$tmp/swap.fs"
swap_uuid=$(blkid -p -o value -s UUID "$tmp/swap.fs")

# the PV (384 MiB: 95 extents of 4 MiB after 1 MiB): root at PV extents 10-13 then 1-2,
# data at 14-93, swap at 3-4
truncate -s 384M "$tmp/pv.img"
lo=$(losetup -f --show "$tmp/pv.img")
loops+=("$lo")
pv_id=$(lvmid)
on "$lo" pvcreate -q -ff -y --uuid "$pv_id" --norestorefile "$lo" >/dev/null
on "$lo" vgcreate -q -s 4m "$VG" "$lo" >/dev/null
on "$lo" vgcfgbackup -q -f "$tmp/vg.txt" "$VG" >/dev/null
seg() { # seg N FIRST COUNT PE
	printf 'segment%s {\nstart_extent = %s\nextent_count = %s\ntype = "striped"\nstripe_count = 1\nstripes = ["pv0", %s]\n}\n' "$@"
}
lv() { # lv NAME SEGMENT_COUNT
	printf '%s {\nid = "%s"\nstatus = ["READ", "WRITE", "VISIBLE"]\nflags = []\nsegment_count = %s\n' "$1" "$(lvmid)" "$2"
}
{ # the VG's text up to its closing brace, then the LVs
	head -n "$(($(grep -n '^}' "$tmp/vg.txt" | tail -1 | cut -d: -f1) - 1))" "$tmp/vg.txt"
	echo "logical_volumes {"
	lv root 2
	seg 1 0 4 10
	seg 2 4 2 1
	echo "}"
	lv data 1
	seg 1 0 80 14
	echo "}"
	lv swap 1
	seg 1 0 2 3
	echo "}"
	echo "}"
	echo "}"
} >"$tmp/vg-lvs.txt"
on "$lo" vgcfgrestore -q -f "$tmp/vg-lvs.txt" "$VG" >/dev/null
pe() { dd if="$1" of="$tmp/pv.img" bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc status=none \
	skip=$(($2 * EXT)) count=$(($3 * EXT)) seek=$((MIB + $4 * EXT)); }
pe "$tmp/root.fs" 0 4 10
pe "$tmp/root.fs" 4 2 1
pe "$tmp/data.fs" 0 80 14
pe "$tmp/swap.fs" 0 2 3

# the Clonezilla folder
img="$tmp/partimag/img"
mkdir -p "$img"
on "$lo" vgcfgbackup -q -f "$img/lvm_$VG.conf" "$VG" >/dev/null
sed -i -E 's|^(\s*device = )"[^"]*"|\1"/dev/sda1"|' "$img/lvm_$VG.conf"
losetup -d "$lo"
loops=()
echo "$VG /dev/sda1 $pv_id" >"$img/lvm_vg_dev.list"
printf '/dev/%s/root  Linux rev 1.0 ext4 filesystem data\n/dev/%s/data  SGI XFS filesystem data\n/dev/%s/swap  Linux swap file, UUID=%s\n' \
	"$VG" "$VG" "$VG" "$swap_uuid" >"$img/lvm_logv.list"
printf 'UUID="%s"\nLABEL="czswap"\n' "$swap_uuid" >"$img/swappt-$VG-swap.info"
for f in root:ext4 data:xfs; do
	n=${f%%:*} t=${f#*:}
	"partclone.$t" -q -c -s "$tmp/$n.fs" -O "$img/$VG-$n.$t-ptcl-img" -L "$tmp/pc.log" >/dev/null 2>&1 ||
		fail "partclone.$t -c of the $n LV"
	zstd -q -f --rm "$img/$VG-$n.$t-ptcl-img"
done
truncate -s 392M "$tmp/src.img"
sgdisk -Z -n 1:2048:+384M -t 1:8E00 "$tmp/src.img" >/dev/null
sfdisk -d "$tmp/src.img" | sed "s|$tmp/src.img|/dev/sda|g" >"$img/sda-pt.sf"
sectors=$((392 * 2048))
dd if="$tmp/src.img" of="$img/sda-mbr" bs=512 count=1 status=none
dd if="$tmp/src.img" of="$img/sda-gpt-1st" bs=512 count=34 status=none
dd if="$tmp/src.img" of="$img/sda-gpt-2nd" bs=512 skip=$((sectors - 33)) count=33 status=none
printf 'Disk /dev/sda: %ss\nPartition Table: gpt\n' "$sectors" >"$img/sda-pt.parted"
echo sda >"$img/disk"
echo sda1 >"$img/parts"

# restored on the host
truncate -s 392M "$tmp/target.img"
start=$(date +%s)
"$BIN" restore "$tmp/partimag" img "$tmp/target.img" --yes --no-nvram --scratch "$tmp" >"$tmp/restore.log" 2>&1 ||
	{ tail -20 "$tmp/restore.log" >&2; fail "ironclone restore of the Clonezilla LVM image"; }
echo "host restore took $(($(date +%s) - start)) s"

# A second image: VG2 on the PVs sda1 and sdb1 of an image of TWO disks, its LV "wide"
# (ext4) with extents 0-3 on sda1 and 4-5 on sdb1; each disk restored on its own
# (`--disk`), the VG whole once both are.
VG2=czqvw$$
mkdir -p "$tmp/files/wide"
for i in 0 1 2 3; do head -c $((i * 170000 + 999)) /dev/urandom >"$tmp/files/wide/w$i"; done
(cd "$tmp/files" && sha256sum wide/*) >"$tmp/sums2"
truncate -s $((6 * EXT)) "$tmp/wide.fs"
mkfs.ext4 -q -F -L czwide -d "$tmp/files/wide" "$tmp/wide.fs"
truncate -s 64M "$tmp/pva.img" "$tmp/pvb.img"
la=$(losetup -f --show "$tmp/pva.img")
loops+=("$la")
lb=$(losetup -f --show "$tmp/pvb.img")
loops+=("$lb")
on2() { # on2 CMD ARGS...: lvm2 seeing both PVs of VG2 only
	local cmd="$1"
	shift
	lvm "$cmd" --config "devices { filter = [ \"a|^$la\$|\", \"a|^$lb\$|\", \"r|.*|\" ] } backup { backup = 0 archive = 0 }" "$@"
}
pva=$(lvmid)
pvb=$(lvmid)
on2 pvcreate -q -ff -y --uuid "$pva" --norestorefile "$la" >/dev/null
on2 pvcreate -q -ff -y --uuid "$pvb" --norestorefile "$lb" >/dev/null
on2 vgcreate -q -s 4m "$VG2" "$la" "$lb" >/dev/null
on2 vgcfgbackup -q -f "$tmp/vg2.txt" "$VG2" >/dev/null
{
	head -n "$(($(grep -n '^}' "$tmp/vg2.txt" | tail -1 | cut -d: -f1) - 1))" "$tmp/vg2.txt"
	echo "logical_volumes {"
	lv wide 2
	seg 1 0 4 2
	seg 2 4 2 5 | sed 's/"pv0"/"pv1"/'
	echo "}"
	echo "}"
	echo "}"
} >"$tmp/vg2-lvs.txt"
on2 vgcfgrestore -q -f "$tmp/vg2-lvs.txt" "$VG2" >/dev/null
img2="$tmp/partimag/img2"
mkdir -p "$img2"
on2 vgcfgbackup -q -f "$img2/lvm_$VG2.conf" "$VG2" >/dev/null
losetup -d "$la" "$lb"
loops=()
put() { dd if="$tmp/wide.fs" of="$1" bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc status=none \
	skip=$(($2 * EXT)) count=$(($3 * EXT)) seek=$((MIB + $4 * EXT)); }
put "$tmp/pva.img" 0 4 2
put "$tmp/pvb.img" 4 2 5
printf '%s /dev/sda1 %s\n%s /dev/sdb1 %s\n' "$VG2" "$pva" "$VG2" "$pvb" >"$img2/lvm_vg_dev.list"
printf '/dev/%s/wide  Linux rev 1.0 ext4 filesystem data\n' "$VG2" >"$img2/lvm_logv.list"
partclone.ext4 -q -c -s "$tmp/wide.fs" -O "$img2/$VG2-wide.ext4-ptcl-img" -L "$tmp/pc.log" >/dev/null 2>&1 ||
	fail "partclone.ext4 -c of the wide LV"
zstd -q -f --rm "$img2/$VG2-wide.ext4-ptcl-img"
for d in sda sdb; do
	truncate -s 72M "$tmp/src-$d.img"
	sgdisk -Z -n 1:2048:+64M -t 1:8E00 "$tmp/src-$d.img" >/dev/null
	sfdisk -d "$tmp/src-$d.img" | sed "s|$tmp/src-$d.img|/dev/$d|g" >"$img2/$d-pt.sf"
	dd if="$tmp/src-$d.img" of="$img2/$d-mbr" bs=512 count=1 status=none
	dd if="$tmp/src-$d.img" of="$img2/$d-gpt-1st" bs=512 count=34 status=none
	dd if="$tmp/src-$d.img" of="$img2/$d-gpt-2nd" bs=512 skip=$((72 * 2048 - 33)) count=33 status=none
	printf 'Disk /dev/%s: %ss\nPartition Table: gpt\n' "$d" $((72 * 2048)) >"$img2/$d-pt.parted"
done
echo "sda sdb" >"$img2/disk"
echo "sda1 sdb1" >"$img2/parts"
for d in sda sdb; do
	truncate -s 96M "$tmp/t2-$d.img"
	"$BIN" restore "$tmp/partimag" img2 "$tmp/t2-$d.img" --disk "$d" --yes --no-nvram --scratch "$tmp" >"$tmp/restore2.log" 2>&1 ||
		{ tail -20 "$tmp/restore2.log" >&2; fail "ironclone restore --disk $d of the two-disk VG image"; }
	grep -q "VG $VG2 also lies on" "$tmp/restore2.log" || fail "no warning that VG2 lies on another disk too"
done

mkdir -p "$tmp/jobfs/ironclone"
cp "$tmp/sums" "$tmp/jobfs/ironclone/sums"
cp "$tmp/sums2" "$tmp/jobfs/ironclone/sums2"
cat >"$tmp/jobfs/ironclone/job.sh" <<JOB
#!/bin/sh
# Runs in the live system; every check prints "check: ok WHAT" or "check: FAIL WHAT".
set -u
VG=$VG
VG2=$VG2
SWAP_UUID=$swap_uuid
JOB
cat >>"$tmp/jobfs/ironclone/job.sh" <<'JOB'
D="${IRONCLONE_JOB_DIR:?}"
fails=0
ok() { echo "check: ok $*"; }
bad() { echo "check: FAIL $*"; fails=$((fails + 1)); }
export LVM_SUPPRESS_FD_WARNINGS=1
modprobe dm-mod 2>/dev/null
lvm pvscan --cache >/dev/null 2>&1
lvm vgchange -ay "$VG" && ok "vgchange -ay $VG" || bad "vgchange -ay $VG"
lvm lvs "$VG"
e2fsck -fn "/dev/$VG/root" >/tmp/fsck.txt 2>&1 && ok "e2fsck -fn on the root LV" ||
	bad "e2fsck: $(tail -5 /tmp/fsck.txt)"
mkdir -p /tmp/c/root /tmp/c/data
mount -o ro "/dev/$VG/root" /tmp/c/root && ok "root LV mounts" || bad "mount root LV"
modprobe xfs 2>/dev/null
mount -t xfs -o ro,norecovery "/dev/$VG/data" /tmp/c/data && ok "XFS data LV mounts" || bad "mount data LV"
(cd /tmp/c && sha256sum -c "$D/ironclone/sums") >/tmp/sums.txt 2>&1 && ok "every file of both LVs (sha256)" ||
	bad "files differ: $(grep -v ': OK' /tmp/sums.txt | head -5)"
blkid "/dev/$VG/swap" | grep -q "UUID=\"$SWAP_UUID\"" && ok "swap LV has its saved UUID" ||
	bad "swap LV: $(blkid "/dev/$VG/swap")"
umount /tmp/c/root /tmp/c/data
lvm vgchange -q -an "$VG" >/dev/null 2>&1
# VG2: its two PVs restored onto two disks, one restore each
lvm vgchange -ay "$VG2" && ok "vgchange -ay $VG2 (PVs on two restored disks)" || bad "vgchange -ay $VG2"
lvm pvs
e2fsck -fn "/dev/$VG2/wide" >/tmp/fsck2.txt 2>&1 && ok "e2fsck -fn on the LV spanning both disks" ||
	bad "e2fsck wide: $(tail -5 /tmp/fsck2.txt)"
mkdir -p /tmp/c/wide
mount -o ro "/dev/$VG2/wide" /tmp/c/wide && ok "the LV spanning both disks mounts" || bad "mount wide LV"
(cd /tmp/c && sha256sum -c "$D/ironclone/sums2") >/tmp/sums2.txt 2>&1 && ok "every file of the spanning LV (sha256)" ||
	bad "wide files differ: $(grep -v ': OK' /tmp/sums2.txt | head -5)"
umount /tmp/c/wide
lvm vgchange -q -an "$VG2" >/dev/null 2>&1
echo "job: $fails failed checks"
echo "job: plan done"
[ "$fails" -eq 0 ]
JOB
truncate -s 64M "$tmp/job.img"
mkfs.ext4 -q -F -L IRONJOB -d "$tmp/jobfs" "$tmp/job.img" || fail "mkfs.ext4 -d for the job disk"

# no_timer_check: under a loaded host TCG misses the IO-APIC timer check and panics.
run_check_job live-clonezilla-lvm 10 "boot + LVM checks" --timeout 600 --kernel "$BUILD/kernel/vmlinuz" --initrd "$BUILD/initramfs.img" \
	--append " ironclone.job=LABEL=IRONJOB:ironclone/job.sh ironclone.repo=LABEL=IRONJOB ironclone.net=0 no_timer_check" \
	--disk "$tmp/job.img,if=virtio,serial=JOB" \
	--disk "$tmp/target.img,if=virtio,serial=TARGET" \
	--disk "$tmp/t2-sda.img,if=virtio,serial=TARGET2A" \
	--disk "$tmp/t2-sdb.img,if=virtio,serial=TARGET2B"
echo "PASS: a Clonezilla image of an LVM disk restored by ironclone activates (vgchange -ay) and its LVs mount in the live system with every file intact; so does a VG on PVs of two disks, each disk restored on its own"
