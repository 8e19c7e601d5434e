#!/usr/bin/env bash
# Proof that a restore onto ANOTHER SIZE boots (issue 6): each bootable machine of
# qemu/machines/ is imaged with `ironclone backup`, restored with `ironclone restore`
# onto a target 1.5x and one 0.6x its size, and each result is booted:
#   gpt-hybrid      SeaBIOS (core.img in the BIOS-boot partition) and OVMF (fresh VARS,
#                   \EFI\BOOT\BOOTX64.EFI already on the ESP)
#   mbr-bios        SeaBIOS (core.img in the post-MBR gap; NTFS data and a logical)
#   gpt-uefi-nvram  OVMF with FRESH VARS. The source has no \EFI\BOOT\BOOTX64.EFI and
#                   boots only through its NVRAM entry (test-machines.sh shows fresh VARS
#                   do not boot it), so these boots work only because restore's repair
#                   copied the loader to the fallback path.
# Negative control (the check can fail): gpt-hybrid with its BIOS-boot partition moved
# AFTER the root partition (a variant built here, itself proven bootable). A restore onto
# 1.5x grows the root, so the planner moves the BIOS-boot partition: restored with
# --no-repair it must NOT boot (boot.img still points at the old core.img), restored with
# repair (boot.img's kernel_sector and core.img's blocklist patched) it boots.
# Prints "N passed, N failed"; exit 0 only if every case gave the expected result.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
M="$ROOT/qemu/machines"
BOOT="$ROOT/qemu/boot-disk.sh"
TIMEOUT=${BOOT_TIMEOUT:-90}
MK="IRONCLONE-MACHINE-OK"
work=$(mktemp -d /tmp/ironclone-restore-boot.XXXXXX)
keep_logs=0
cleanup() { if ((keep_logs)); then rm -rf "$work"/*.img "$work"/*.fd "$work"/repo; echo "logs kept in $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

repo=$work/repo
# shellcheck source=tests/qemu/lib-restore.sh
source "$ROOT/tests/qemu/lib-restore.sh"

total_start=$SECONDS

# --- gpt-hybrid: BIOS + UEFI
if build gpt-hybrid "$M/mk-gpt-hybrid.sh" "$work/gh.img" && backup "$work/gh.img" gh; then
  sz=$(stat -c %s "$work/gh.img")
  for pct in 150 60; do
    if restore gh "$work/gh-$pct.img" "$pct" "$sz"; then
      expect_boot "gpt-hybrid-$pct-bios" "$work/gh-$pct.img" bios "$MK gpt-hybrid" --fail-on 'GRUB GRUB'
      expect_boot "gpt-hybrid-$pct-uefi" "$work/gh-$pct.img" uefi "$MK gpt-hybrid" --fail-on 'Shell> '
    fi
  done
fi

# --- mbr-bios: BIOS, core.img in the gap, NTFS + logical
if build mbr-bios "$M/mk-mbr-bios.sh" "$work/mb.img" && backup "$work/mb.img" mb; then
  sz=$(stat -c %s "$work/mb.img")
  for pct in 150 60; do
    if restore mb "$work/mb-$pct.img" "$pct" "$sz"; then
      expect_boot "mbr-bios-$pct" "$work/mb-$pct.img" bios "$MK mbr-bios" --fail-on 'GRUB GRUB'
    fi
  done
fi

# --- gpt-uefi-nvram: fresh VARS boot only through the fallback loader the repair copies
if build gpt-uefi-nvram "$M/mk-gpt-uefi-nvram.sh" "$work/nv.img" "$work/nv-vars.fd" && backup "$work/nv.img" nv; then
  sz=$(stat -c %s "$work/nv.img")
  if mdir -i "$work/nv.img@@1M" ::/EFI/BOOT/BOOTX64.EFI >/dev/null 2>&1; then
    bad "gpt-uefi-nvram source already has \\EFI\\BOOT\\BOOTX64.EFI (the proof needs it absent)"
  fi
  for pct in 150 60; do
    if restore nv "$work/nv-$pct.img" "$pct" "$sz"; then
      # The repair must say it copied the loader, and the ESP must now hold it (mtools, independent).
      grep -q 'fallback loader .EFI.BOOT.BOOTX64.EFI copied' "$work/nv-$pct.img.restore.log" \
        || bad "gpt-uefi-nvram-$pct: restore did not report copying the fallback loader"
      mdir -i "$work/nv-$pct.img@@1M" ::/EFI/BOOT/BOOTX64.EFI >/dev/null 2>&1 \
        || bad "gpt-uefi-nvram-$pct: no \\EFI\\BOOT\\BOOTX64.EFI on the restored ESP"
      # Fresh VARS hold no entry for this disk (and restore wrote none: --no-nvram).
      expect_boot "gpt-uefi-nvram-$pct-fresh-vars" "$work/nv-$pct.img" uefi "$MK gpt-uefi-nvram" --fail-on 'Shell> '
    fi
  done
fi

# --- negative control: a planner-driven move of the BIOS-boot partition
if [[ -f $work/gh.img ]]; then
  v=$work/ghv.img
  cp --sparse=always "$work/gh.img" "$v"
  # 4 MiB more at the end; the BIOS-boot partition's 1 MiB goes to 256 MiB + 1 MiB, after root.
  truncate -s +4M "$v"
  new=$(((256 + 1) * 2048))
  if sgdisk -e "$v" >/dev/null \
    && dd if="$v" of="$v" bs=512 skip=2048 seek=$new count=2048 conv=notrunc status=none \
    && dd if=/dev/zero of="$v" bs=512 seek=2048 count=2048 conv=notrunc status=none \
    && sgdisk -d 1 -n 1:$new:$((new + 2047)) -t 1:EF02 -c 1:bios-boot -u 1:1C0EC1A5-0001-4000-8000-000000000001 "$v" >/dev/null \
    && "$bin" bootfix grub-relocate --disk "$v" --from 2048 --to $new --yes >"$work/ghv.relocate.log" 2>&1; then
    expect_boot gpt-hybrid-variant-source "$v" bios "$MK gpt-hybrid" --fail-on 'GRUB GRUB'
    if backup "$v" ghv; then
      sz=$(stat -c %s "$v")
      if restore ghv "$work/ghv-norepair.img" 150 "$sz" --no-repair; then
        # The planner must really have moved core.img's partition, or the control proves nothing.
        got=$(sgdisk -i 1 "$work/ghv-norepair.img" | awk '/^First sector/ {print $3}')
        if [[ $got != "$new" ]]; then
          echo "BIOS-boot partition moved by the planner: LBA $new -> $got"
          expect_no_boot gpt-hybrid-moved-core-no-repair "$work/ghv-norepair.img" bios "$MK gpt-hybrid" \
            --fail-on 'GRUB GRUB' --fail-on 'No bootable device'
        else
          bad "the planner did not move the BIOS-boot partition (still at $got): no negative control"
        fi
      fi
      if restore ghv "$work/ghv-repair.img" 150 "$sz"; then
        grep -q 'core.img moved with partition 1: boot.img kernel_sector' "$work/ghv-repair.img.restore.log" \
          || bad "restore did not report patching boot.img for the moved core.img"
        expect_boot gpt-hybrid-moved-core-repaired "$work/ghv-repair.img" bios "$MK gpt-hybrid" --fail-on 'GRUB GRUB'
      fi
    fi
  else
    bad "building the gpt-hybrid variant with the BIOS-boot partition last"; cat "$work/ghv.relocate.log"
  fi
fi

echo "restore-boot: total $((SECONDS - total_start))s"
echo "$passed passed, $failed failed"
((failed == 0))
