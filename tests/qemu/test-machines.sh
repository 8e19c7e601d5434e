#!/usr/bin/env bash
# suite: all
# (`make test` skips this script to stay in CI's time budget: test-restore-boot boots the same
# machines after a restore and test-live-nvram writes Boot#### through efivarfs; `make test-
# all` runs it.)
# Builds the three bootable test machines (qemu/machines/) and boots each with the
# firmware it supports, plus negative controls that must NOT boot:
#   gpt-hybrid      BIOS (SeaBIOS) and UEFI (OVMF, fresh VARS via the fallback path)
#   mbr-bios        BIOS
#   gpt-uefi-nvram  UEFI with its VARS (Boot#### entry) -> boots
#                   UEFI with fresh VARS (no fallback loader) -> must not boot
#                   fresh VARS after `ironclone bootfix esp-fallback` -> boots
#                   VARS written by `ironclone bootfix efi-entry` via efivarfs in a VM -> boots
#   gpt-hybrid, BIOS-boot partition moved:
#                   without patching boot.img/core.img -> must not boot
#                   after `ironclone bootfix grub-relocate` -> boots
# Prints "N passed, N failed"; exit 0 only if all cases gave the expected result.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
M="$ROOT/qemu/machines"
BOOT="$ROOT/qemu/boot-disk.sh"
TIMEOUT=${BOOT_TIMEOUT:-90}
work=$(mktemp -d /tmp/ironclone-machines.XXXXXX)
keep_logs=0
cleanup() { if ((keep_logs)); then rm -f "$work"/*.img "$work"/*.fd; echo "logs kept in $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "PASS: $*"; }
bad() { failed=$((failed + 1)); keep_logs=1; echo "FAIL: $*"; }
t() { local s=$SECONDS; "$@"; local rc=$?; LAST_SECS=$((SECONDS - s)); return $rc; }

# The ironclone binary for the repair step: $IRONCLONE, else a (cheap, incremental)
# debug build of this tree, so a stale release binary is never what gets tested.
ironclone_bin() {
  if [[ -n ${IRONCLONE:-} ]]; then echo "$IRONCLONE"; return; fi
  (cd "$ROOT" && cargo build --quiet --bin ironclone >&2) || return 1
  echo "$ROOT/target/debug/ironclone"
}

build() { # build NAME SCRIPT ARGS...
  local name=$1; shift
  if t bash "$@" >"$work/$name.build.log" 2>&1; then
    echo "built $name in ${LAST_SECS}s"; sed 's/^/  /' "$work/$name.build.log"
  else
    bad "building $name"; cat "$work/$name.build.log"; return 1
  fi
}

expect_boot() { # expect_boot LABEL DISK FW MARKER [boot-disk args...]
  local label=$1 disk=$2 fw=$3 marker=$4; shift 4
  if t bash "$BOOT" "$disk" --firmware "$fw" --marker "$marker" --timeout "$TIMEOUT" \
      --log "$work/$label.log" "$@"; then
    ok "$label boots ($fw, ${LAST_SECS}s)"
  else
    bad "$label did not boot ($fw), log $work/$label.log"
  fi
}

expect_no_boot() { # negative control: the marker must not appear
  local label=$1 disk=$2 fw=$3 marker=$4; shift 4
  if t bash "$BOOT" "$disk" --firmware "$fw" --marker "$marker" --timeout 45 \
      --log "$work/$label.log" "$@" >/dev/null 2>&1; then
    bad "$label booted but must not ($fw), log $work/$label.log"
  else
    # It must have got as far as the firmware trying this disk, or "not booting" proves nothing.
    local tried='Booting from Hard Disk'
    [[ $fw == uefi ]] && tried='BdsDxe'
    if grep -aq "$tried" "$work/$label.log"; then ok "$label does not boot ($fw, negative control, ${LAST_SECS}s)"
    else bad "$label: the firmware never tried the disk (no '$tried' in $work/$label.log)"; fi
  fi
}

MK="IRONCLONE-MACHINE-OK"
total_start=$SECONDS

if build gpt-hybrid "$M/mk-gpt-hybrid.sh" "$work/gpt-hybrid.img"; then
  expect_boot gpt-hybrid-bios "$work/gpt-hybrid.img" bios "$MK gpt-hybrid" --snapshot --fail-on 'GRUB GRUB'
  expect_boot gpt-hybrid-uefi "$work/gpt-hybrid.img" uefi "$MK gpt-hybrid" --snapshot --fail-on 'Shell> '
fi

if build mbr-bios "$M/mk-mbr-bios.sh" "$work/mbr-bios.img"; then
  expect_boot mbr-bios "$work/mbr-bios.img" bios "$MK mbr-bios" --snapshot --fail-on 'GRUB GRUB'
fi

if build gpt-uefi-nvram "$M/mk-gpt-uefi-nvram.sh" "$work/nvram.img" "$work/nvram-vars.fd"; then
  expect_boot nvram-with-entry "$work/nvram.img" uefi "$MK gpt-uefi-nvram" \
    --vars "$work/nvram-vars.fd" --snapshot --fail-on 'Shell> '
  expect_no_boot nvram-fresh-vars "$work/nvram.img" uefi "$MK gpt-uefi-nvram" --snapshot --fail-on 'Shell> '
  # The repair for that case: copy the loader to \EFI\BOOT\BOOTX64.EFI; fresh VARS then boot.
  cp --sparse=always "$work/nvram.img" "$work/nvram-fallback.img"
  if bin=$(ironclone_bin) && "$bin" bootfix esp-fallback --disk "$work/nvram-fallback.img" --esp-start 2048 --yes; then
    expect_boot nvram-fresh-vars-after-esp-fallback "$work/nvram-fallback.img" uefi "$MK gpt-uefi-nvram" \
      --snapshot --fail-on 'Shell> '
  else
    bad "ironclone bootfix esp-fallback failed"
  fi
fi

# The NVRAM repair through the real kernel and firmware: a UEFI-booted Linux runs the
# static ironclone, which writes Boot#### = HD(ESP of gpt-uefi-nvram)/File(\EFI\ironclone\grubx64.efi)
# through efivarfs; the VARS it leaves must then boot gpt-uefi-nvram (which fresh VARS
# do not, see nvram-fresh-vars above).
if [[ -f $work/nvram.img ]]; then
  static="$ROOT/target/x86_64-unknown-linux-musl/release/ironclone"
  if [[ -n ${IRONCLONE_STATIC:-} ]]; then static=$IRONCLONE_STATIC
  else (cd "$ROOT" && cargo build --quiet --release --locked --target x86_64-unknown-linux-musl --bin ironclone) || static=""
  fi
  if [[ -z $static || ! -x $static ]]; then
    bad "no static ironclone binary for the efivarfs test"
  else
    cat >"$work/efi-job.sh" <<'JOB'
ironclone bootfix efi-list
ironclone bootfix efi-entry --label ironclone-test --part-number 1 --part-start 2048 --part-size 131072 \
  --part-guid 1c0ec1a5-0003-4000-8000-000000000001 --loader '\EFI\ironclone\grubx64.efi' --yes
ironclone bootfix efi-list
JOB
    if build uefi-runner "$M/mk-uefi-runner.sh" "$work/runner.img" "$static" "$work/efi-job.sh"; then
      if t bash "$BOOT" "$work/runner.img" --firmware uefi --marker "IRONCLONE-RUNNER-DONE uefi-runner rc=0" \
          --timeout "$TIMEOUT" --log "$work/efi-writer.log" --vars-out "$work/ironclone-vars.fd" \
          --snapshot --fail-on 'Shell> ' --fail-on 'rc=1'; then
        ok "ironclone wrote Boot#### through efivarfs (${LAST_SECS}s)"
        expect_boot nvram-ironclone-entry "$work/nvram.img" uefi "$MK gpt-uefi-nvram" \
          --vars "$work/ironclone-vars.fd" --snapshot --fail-on 'Shell> '
        # ...and it was our entry the firmware started, not some other path.
        if grep -aq 'BdsDxe: starting Boot[0-9A-F]* "ironclone-test" from HD(1,GPT,1C0EC1A5-0003' \
            "$work/nvram-ironclone-entry.log"; then
          ok "OVMF started the Boot#### entry ironclone encoded"
        else
          bad "OVMF did not start the ironclone-test entry, log $work/nvram-ironclone-entry.log"
        fi
      else
        bad "ironclone efi-entry inside the UEFI VM, log $work/efi-writer.log"
      fi
    fi
  fi
fi

# core.img moved: the BIOS-boot partition of gpt-hybrid goes from LBA 2048 to LBA 1024
# (bytes copied, old copy zeroed, GPT entry moved): exactly what a restore onto another
# layout does. boot.img still points at 2048 until it is patched.
if [[ -f $work/gpt-hybrid.img ]]; then
  moved=$work/moved.img
  cp --sparse=always "$work/gpt-hybrid.img" "$moved"
  if dd if="$moved" of="$moved" bs=512 skip=2048 seek=1024 count=1024 conv=notrunc status=none \
    && dd if=/dev/zero of="$moved" bs=512 seek=2048 count=2048 conv=notrunc status=none \
    && sgdisk -a 8 -d 1 -n 1:1024:2047 -t 1:EF02 -c 1:bios-boot -u 1:1C0EC1A5-0001-4000-8000-000000000001 \
      "$moved" >/dev/null; then
    expect_no_boot moved-core-unpatched "$moved" bios "$MK gpt-hybrid" --snapshot \
      --fail-on 'GRUB GRUB' --fail-on 'No bootable device'
    if bin=$(ironclone_bin); then
      if "$bin" bootfix grub-relocate --disk "$moved" --from 2048 --to 1024 --yes; then
        expect_boot moved-core-patched "$moved" bios "$MK gpt-hybrid" --snapshot
      else
        bad "ironclone bootfix grub-relocate failed"
      fi
    else
      bad "cannot build ironclone"
    fi
  else
    bad "moving the BIOS-boot partition"
  fi
fi

echo "machines: total $((SECONDS - total_start))s"
echo "$passed passed, $failed failed"
((failed == 0))
