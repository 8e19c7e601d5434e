#!/usr/bin/env bash
# Machine "enterprise": a RHEL-style server disk whose /boot lives on LVM, so GRUB must
# read the VG to boot (its `lvm` module), not just a partition.
#   p1 bios-boot EF02  core.img (biosdisk part_gpt lvm ext2 xfs ...)
#   p2 esp       EF00  FAT32 with \EFI\BOOT\BOOTX64.EFI (same modules)
#   p3 lvm       8E00  PV of VG "ent": LV boot (ext4: /boot/{vmlinuz,initrd.img,grub}),
#                      LV root (XFS, files under /srv), LV swap; free extents at the end
# GRUB finds /boot/grub by the boot LV's filesystem UUID, through the VG.
# The host has no device-mapper: the PV and VG are written by lvm2 itself (pvcreate,
# vgcfgrestore of metadata written here, as tests/lvm_fixture does) on a loop device,
# and each LV's filesystem is built in a file and laid onto its extents.
# Usage: mk-enterprise.sh OUT.img [ROOT_MIB]   (ROOT_MIB: root LV size, default 400)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -ge 1 && $# -le 2 ]] || m_die "usage: $0 OUT.img [ROOT_MIB]"
OUT=$1 ROOT_MIB=${2:-400}
NAME=enterprise
BOOT_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e0011
ROOT_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e0012
VG=ent
VG_ID=Ent0vg-0000-0000-0000-0000-0000-000001
PV_ID=Ent0pv-0000-0000-0000-0000-0000-000001
m_need_tools
for t in lvm losetup mkfs.xfs mkswap; do
  command -v "$t" >/dev/null || m_die "missing tool '$t' (run scripts/setup.sh)"
done

EXT_MIB=4 BOOT_MIB=64 SWAP_MIB=32 FREE_MIB=96
((ROOT_MIB % EXT_MIB == 0 && ROOT_MIB >= 300)) || m_die "ROOT_MIB must be a multiple of 4, at least 300 (mkfs.xfs)"
PV_MIB=$((1 + BOOT_MIB + ROOT_MIB + SWAP_MIB + FREE_MIB))
BB_START=2048 BB_END=4095
ESP_START=4096 ESP_MIB=64
ESP_END=$((ESP_START + ESP_MIB * 2048 - 1))
PV_START=$((ESP_END + 1))
PV_END=$((PV_START + PV_MIB * 2048 - 1))
SECTORS=$((PV_END + 1 + 2048))

work=$(mktemp -d)
lo=""
cleanup() { [[ -n $lo ]] && losetup -d "$lo" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
rm -f "$OUT"
truncate -s $((SECTORS * 512)) "$OUT"
sgdisk -o -U 1C0EC1A5-0000-4000-8000-000000000011 \
  -n 1:$BB_START:$BB_END -t 1:EF02 -c 1:bios-boot \
  -n 2:$ESP_START:$ESP_END -t 2:EF00 -c 2:esp \
  -n 3:$PV_START:$PV_END -t 3:8E00 -c 3:lvm \
  "$OUT" >/dev/null || m_die "sgdisk failed"

# The LVs' filesystems, each in its own file.
m_boot_fs "$work/boot.fs" "$BOOT_MIB" "$BOOT_UUID" "$NAME"
mkdir -p "$work/root/srv" "$work/root/etc"
echo "$NAME" >"$work/root/etc/machine-name"
for i in 1 2 3 4 5 6; do head -c $((i * 700000)) /dev/urandom >"$work/root/srv/f$i.bin"; done
proto="/dev/null
0 0
d--755 0 0
etc d--755 0 0
machine-name ---644 0 0 $work/root/etc/machine-name
\$
srv d--755 0 0
"
for i in 1 2 3 4 5 6; do proto+="f$i.bin ---644 0 0 $work/root/srv/f$i.bin
"; done
proto+="\$
\$
"
printf '%s' "$proto" >"$work/root.proto"
truncate -s "${ROOT_MIB}M" "$work/root.fs"
mkfs.xfs -q -f -L root -m uuid=$ROOT_UUID -p "$work/root.proto" "$work/root.fs" || m_die "mkfs.xfs failed"
truncate -s "${SWAP_MIB}M" "$work/swap.fs"
mkswap -q -L swap "$work/swap.fs" >/dev/null || m_die "mkswap failed"

# The PV and VG, written by lvm2 on a loop device over a PV-sized file.
truncate -s "${PV_MIB}M" "$work/pv.img"
lo=$(losetup -f --show "$work/pv.img")
export LVM_SUPPRESS_FD_WARNINGS=1
# lvm2 complains on stderr that it cannot reach device-mapper; kept for a failure only.
lvm_() { lvm "$@" >>"$work/lvm.log" 2>&1 || { cat "$work/lvm.log" >&2; m_die "lvm $1 failed"; }; }
conf="devices { filter = [ \"a|^$lo\$|\", \"r|.*|\" ] } backup { backup = 0 archive = 0 }"
lvm_ pvcreate --config "$conf" -q -ff -y --uuid "$PV_ID" --norestorefile "$lo"
lvm_ vgcreate --config "$conf" -q -s ${EXT_MIB}m "$VG" "$lo"
lvm_ vgcfgbackup --config "$conf" -q -f "$work/vg.txt" "$VG"
# LVs in PV order boot, root, swap (linear); the free extents follow.
pe=0 lvs=""
declare -A AT
for lv in boot root swap; do
  case $lv in boot) mib=$BOOT_MIB ;; root) mib=$ROOT_MIB ;; swap) mib=$SWAP_MIB ;; esac
  n=$((mib / EXT_MIB))
  AT[$lv]=$pe
  lvs+="$lv {
id = \"Ent0lv-0000-0000-0000-0000-0000-$(printf '%06d' $((pe + 1)))\"
status = [\"READ\", \"WRITE\", \"VISIBLE\"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = $n
type = \"striped\"
stripe_count = 1
stripes = [\"pv0\", $pe]
}
}
"
  pe=$((pe + n))
done
# vgcreate made a new VG id; the machine keeps a fixed one so runs compare.
sed -e "0,/^\tid = \"[^\"]*\"/s//\tid = \"$VG_ID\"/" "$work/vg.txt" | head -n -1 >"$work/vg-lvs.txt"
printf 'logical_volumes {\n%s}\n}\n' "$lvs" >>"$work/vg-lvs.txt"
lvm_ vgcfgrestore --config "$conf" -q -f "$work/vg-lvs.txt" "$VG"
pe_start=$(lvm pvs --config "$conf" --noheadings --units b --nosuffix -o pe_start "$lo" 2>>"$work/lvm.log" | tr -d ' ')
losetup -d "$lo"; lo=""
for lv in boot root swap; do
  dd if="$work/$lv.fs" of="$work/pv.img" bs=1M oflag=seek_bytes \
    seek=$((pe_start + AT[$lv] * EXT_MIB * 1048576)) conv=notrunc,sparse status=none
done
m_place "$OUT" "$work/pv.img" "$PV_START"

# GRUB reads LVM and XFS as well as the usual; both loaders find /boot/grub by UUID.
M_GRUB_MODS_COMMON+=" lvm xfs"
m_efi_img "$work/grubx64.efi" "$BOOT_UUID"
m_esp "$work/esp.fat" "$ESP_MIB" "$ESP_START" "$work/grubx64.efi" ::/EFI/BOOT/BOOTX64.EFI
m_place "$OUT" "$work/esp.fat" "$ESP_START"
m_core_img "$work/core.img" "$BOOT_UUID"
m_install_bios_grub "$OUT" "$work/core.img" "$BB_START" $((BB_END - BB_START + 1))

echo "machine $NAME: $OUT ($((SECTORS / 2048)) MiB, GPT, BIOS+UEFI, /boot on LVM)"
echo "  p1 bios-boot EF02  LBA $BB_START-$BB_END  core.img $(stat -c %s "$work/core.img") bytes (lvm, xfs)"
echo "  p2 esp       EF00  LBA $ESP_START-$ESP_END  FAT32: \\EFI\\BOOT\\BOOTX64.EFI"
echo "  p3 lvm       8E00  LBA $PV_START-$PV_END  VG $VG ($VG_ID), PV $PV_ID, pe_start $pe_start"
echo "     boot ${BOOT_MIB}M ext4 $BOOT_UUID, root ${ROOT_MIB}M xfs $ROOT_UUID, swap ${SWAP_MIB}M, ${FREE_MIB}M free"
