#!/usr/bin/env bash
# suite: all
# (`make test` skips this script to stay in CI's time budget: test-live-luks restores LVM
# inside the live system; the host tests check XFS and LVM fitting; `make test-all` runs it.)
# Issue 18's "enterprise" machine restored onto other sizes and booted: GPT, ESP, and
# an LVM PV holding /boot (ext4 LV), root (XFS LV) and swap (qemu/machines/
# mk-enterprise.sh). GRUB reads the VG to find the kernel, so a boot proves the PV
# label, the VG metadata and the boot LV's extents all came back where GRUB looks.
#   source          boots (BIOS and UEFI)
#   negative control: the source with its PV label wiped must NOT boot (GRUB cannot
#                   find /boot), or booting would prove nothing about LVM
#   1.5x            restored, root LV grown (xfs_growfs), boots BIOS and UEFI
#   0.6x            restored, root LV smaller (XFS re-created), boots BIOS
# Each restored PV is judged on the host by lvm2 (pvck, the same VG/PV UUIDs and LV
# names), e2fsck -fn on the boot LV, xfs_repair -n on the root LV and its files'
# checksums against the source's.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
M="$ROOT/qemu/machines"
BOOT="$ROOT/qemu/boot-disk.sh"
TIMEOUT=${BOOT_TIMEOUT:-90}
MK="IRONCLONE-MACHINE-OK enterprise"
work=$(mktemp -d /tmp/ironclone-enterprise.XXXXXX)
keep_logs=0
cleanup() {
  [[ -n ${LO:-} ]] && losetup -d "$LO" 2>/dev/null
  if ((keep_logs)); then rm -rf "$work"/*.img "$work"/*.pv "$work"/repo; echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
repo=$work/repo
# shellcheck source=tests/qemu/lib-restore.sh
source "$ROOT/tests/qemu/lib-restore.sh"
export LVM_SUPPRESS_FD_WARNINGS=1
VG=ent VG_ID=Ent0vg-0000-0000-0000-0000-0000-000001 PV_ID=Ent0pv-0000-0000-0000-0000-0000-000001

# lv_out DISK LV OUT: LV of the VG on DISK's partition 3 copied to OUT through its
# segments, as device-mapper's linear target would read it (lvm2 lists the ranges).
lv_out() {
  local disk=$1 lv=$2 out=$3 first last pv conf pe_start ext line range a b
  first=$(sgdisk -i 3 "$disk" | awk '/^First sector/ {print $3}')
  last=$(sgdisk -i 3 "$disk" | awk '/^Last sector/ {print $3}')
  pv=$work/chk.pv
  rm -f "$pv"
  dd if="$disk" of="$pv" bs=512 skip="$first" count=$((last - first + 1)) conv=sparse status=none
  LO=$(losetup -f --show -r "$pv")
  conf="devices { filter = [ \"a|^$LO\$|\", \"r|.*|\" ] } backup { backup = 0 archive = 0 }"
  lvm pvck --config "$conf" "$LO" >"$work/pvck.log" 2>&1 || { cat "$work/pvck.log"; losetup -d "$LO"; LO=; return 1; }
  lvm pvs --config "$conf" --noheadings -o vg_name,vg_uuid,pv_uuid "$LO" 2>/dev/null >"$work/vgs.txt"
  pe_start=$(lvm pvs --config "$conf" --noheadings --units b --nosuffix -o pe_start "$LO" 2>/dev/null | tr -d ' ')
  ext=$(lvm vgs --config "$conf" --noheadings --units b --nosuffix -o vg_extent_size "$VG" 2>/dev/null | tr -d ' ')
  rm -f "$out"
  : >"$out"
  while read -r line; do
    for range in $line; do
      a=${range##*:}; b=${a#*-}; a=${a%-*}
      dd if="$pv" bs=1M iflag=skip_bytes,count_bytes skip=$((pe_start + a * ext)) \
        count=$(((b - a + 1) * ext)) status=none >>"$out"
    done
  done < <(lvm lvs --config "$conf" --noheadings --segments -o seg_pe_ranges "$VG/$lv" 2>/dev/null)
  losetup -d "$LO"; LO=
  rm -f "$pv"
  [[ -s $out ]]
}

# check_lvs LABEL DISK: the restored VG as lvm2, e2fsck and xfs_repair see it.
# Prints the root LV's size in MiB on success.
check_lvs() {
  local label=$1 disk=$2 sums
  if ! lv_out "$disk" boot "$work/boot.lv" || ! lv_out "$disk" root "$work/root.lv"; then
    bad "$label: lvm2 cannot read the restored PV"; return 1
  fi
  if ! grep -q "$VG_ID" "$work/vgs.txt" || ! grep -q "$PV_ID" "$work/vgs.txt"; then
    bad "$label: VG/PV UUIDs changed: $(cat "$work/vgs.txt")"; return 1
  fi
  e2fsck -fn "$work/boot.lv" >"$work/$label.e2fsck.log" 2>&1 \
    || { bad "$label: e2fsck -fn on the boot LV"; cat "$work/$label.e2fsck.log"; return 1; }
  xfs_repair -n -f "$work/root.lv" >"$work/$label.xfs_repair.log" 2>&1 \
    || { bad "$label: xfs_repair -n on the root LV"; tail "$work/$label.xfs_repair.log"; return 1; }
  sums=$(root_sums "$work/root.lv") || { bad "$label: cannot mount the root LV"; return 1; }
  [[ $sums == "$SRC_SUMS" ]] || { bad "$label: root LV files differ"; diff <(echo "$SRC_SUMS") <(echo "$sums"); return 1; }
  ok "$label: pvck, VG/PV UUIDs, e2fsck, xfs_repair and the root files ($(($(stat -c %s "$work/root.lv") >> 20)) MiB root LV)"
  ROOT_LV_MIB=$(($(stat -c %s "$work/root.lv") >> 20))
}

root_sums() { # checksums of every file of the XFS in $1 (read-only mount)
  local mnt=$work/mnt r
  mkdir -p "$mnt"
  mount -t xfs -o loop,ro,norecovery,nouuid "$1" "$mnt" || return 1
  r=$(cd "$mnt" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  umount "$mnt"
  echo "$r"
}

total_start=$SECONDS
if build enterprise "$M/mk-enterprise.sh" "$work/ent.img" 600; then
  sed 's/^/  /' "$work/enterprise.build.log"
  expect_boot enterprise-bios "$work/ent.img" bios "$MK" --fail-on 'GRUB GRUB'
  expect_boot enterprise-uefi "$work/ent.img" uefi "$MK" --fail-on 'Shell> '
  # Negative control: without its PV label GRUB finds no /boot.
  start=$(sgdisk -i 3 "$work/ent.img" | awk '/^First sector/ {print $3}')
  cp --sparse=always "$work/ent.img" "$work/nolabel.img"
  dd if=/dev/zero of="$work/nolabel.img" bs=512 seek=$((start + 1)) count=1 conv=notrunc status=none
  expect_no_boot enterprise-no-pv-label "$work/nolabel.img" bios "$MK" --fail-on 'no such device'
  rm -f "$work/nolabel.img"
  lv_out "$work/ent.img" root "$work/root.lv" && SRC_SUMS=$(root_sums "$work/root.lv")
  src_root=$(($(stat -c %s "$work/root.lv") >> 20))
  if [[ -n ${SRC_SUMS:-} ]] && backup "$work/ent.img" ent; then
    grep -E '^\s+p3 .*lvm2' "$work/ent.backup.log" | grep -vq raw \
      || bad "the PV was not imaged by used blocks: $(grep -E '^\s+p3 ' "$work/ent.backup.log")"
    sz=$(stat -c %s "$work/ent.img")
    for pct in 150 60; do
      if restore ent "$work/ent-$pct.img" "$pct" "$sz" && check_lvs "enterprise-$pct" "$work/ent-$pct.img"; then
        if ((pct > 100 ? ROOT_LV_MIB <= src_root : ROOT_LV_MIB >= src_root)); then
          bad "enterprise-$pct: root LV $src_root -> $ROOT_LV_MIB MiB"
        fi
        expect_boot "enterprise-$pct-bios" "$work/ent-$pct.img" bios "$MK" --fail-on 'GRUB GRUB'
        ((pct > 100)) && expect_boot "enterprise-$pct-uefi" "$work/ent-$pct.img" uefi "$MK" --fail-on 'Shell> '
      fi
      rm -f "$work/ent-$pct.img" "$work"/*.lv
    done
  fi
fi
echo "restore-enterprise: total $((SECONDS - total_start))s"
echo "$passed passed, $failed failed"
((failed == 0))
