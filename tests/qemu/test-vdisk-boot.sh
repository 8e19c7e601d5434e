#!/usr/bin/env bash
# Physical-to-virtual (issue 21): VM disks as backup sources and `ironclone export` to
# VM disks that boot under QEMU.
#   gpt-uefi-nvram  converted to VMDK by qemu-img, backed up FROM the .vmdk, exported to
#                   qcow2 at 1.5x: boots under OVMF with EMPTY NVRAM. The source boots
#                   only through an NVRAM entry (negative control below: with fresh VARS
#                   it must not boot), so this proves the export's fallback-loader repair.
#   gpt-hybrid      exported to VHDX at 0.6x (NTFS-free, ext4 root shrunk): boots under
#                   SeaBIOS from the .vhdx, and to VDI at 1.2x: boots under OVMF.
# Each exported disk also passes `qemu-img check` (export runs it; checked again here).
# Prints "N passed, N failed"; exit 0 only if every case gave the expected result.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
M="$ROOT/qemu/machines"
BOOT="$ROOT/qemu/boot-disk.sh"
TIMEOUT=${BOOT_TIMEOUT:-90}
MK="IRONCLONE-MACHINE-OK"
work=$(mktemp -d /tmp/ironclone-vdisk-boot.XXXXXX)
keep_logs=0
cleanup() { if ((keep_logs)); then rm -rf "$work"/*.img "$work"/*.qcow2 "$work"/*.vmdk "$work"/*.vhdx "$work"/*.vdi "$work"/repo; echo "logs kept in $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
repo=$work/repo
# shellcheck source=tests/qemu/lib-restore.sh
source "$ROOT/tests/qemu/lib-restore.sh"

export_ok() { # export_ok NAME OUT PCT SRC_SIZE
  local name=$1 out=$2 pct=$3 src=$4
  local size=$((src * pct / 100 / 1048576 * 1048576))
  if t "$bin" export "$repo" "$name" "$out" --size "$size" >"$work/$(basename "$out").export.log" 2>&1; then
    echo "exported $name to $(basename "$out") ($pct%) in ${LAST_SECS}s"
    sed 's/^/  /' "$work/$(basename "$out").export.log"
  else
    bad "export $name to $(basename "$out")"; cat "$work/$(basename "$out").export.log"; return 1
  fi
  if qemu-img check -q "$out" >"$work/check.log" 2>&1; then ok "$(basename "$out") passes qemu-img check"
  else bad "$(basename "$out") fails qemu-img check"; cat "$work/check.log"; fi
}

if build gpt-uefi-nvram "$M/mk-gpt-uefi-nvram.sh" "$work/nv.img" "$work/nv-vars.fd"; then
  expect_no_boot "gpt-uefi-nvram-source-fresh-vars" "$work/nv.img" uefi "$MK gpt-uefi-nvram" --fail-on 'Shell> '
  sz=$(stat -c %s "$work/nv.img")
  qemu-img convert -O vmdk "$work/nv.img" "$work/nv.vmdk"
  rm -f "$work/nv.img"
  if backup "$work/nv.vmdk" nv && grep -q 'VMDK disk, read through qemu' "$work/nv.backup.log"; then
    ok "backup read the VMDK through qemu"
    if export_ok nv "$work/nv-150.qcow2" 150 "$sz"; then
      grep -q 'fallback loader .EFI.BOOT.BOOTX64.EFI copied' "$work/nv-150.qcow2.export.log" \
        || bad "nv-150.qcow2: export did not report copying the fallback loader"
      expect_boot "gpt-uefi-nvram-qcow2-empty-nvram" "$work/nv-150.qcow2" uefi "$MK gpt-uefi-nvram" --fail-on 'Shell> '
    fi
  elif [[ -f $work/nv.backup.log ]]; then bad "backup of nv.vmdk did not say it read through qemu"
  fi
fi

if build gpt-hybrid "$M/mk-gpt-hybrid.sh" "$work/gh.img" && backup "$work/gh.img" gh; then
  sz=$(stat -c %s "$work/gh.img")
  if export_ok gh "$work/gh-60.vhdx" 60 "$sz"; then
    expect_boot "gpt-hybrid-vhdx-60-bios" "$work/gh-60.vhdx" bios "$MK gpt-hybrid" --fail-on 'GRUB GRUB'
  fi
  if export_ok gh "$work/gh-120.vdi" 120 "$sz"; then
    expect_boot "gpt-hybrid-vdi-120-uefi" "$work/gh-120.vdi" uefi "$MK gpt-hybrid" --fail-on 'Shell> '
  fi
fi

echo "vdisk-boot: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
