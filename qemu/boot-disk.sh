#!/usr/bin/env bash
# Boots one disk image under QEMU (TCG) with SeaBIOS or OVMF and waits for a marker on
# the serial console. This is the yes/no oracle of every boot-repair test: exit 0 when
# the marker appeared within the timeout, non-zero otherwise (the log path and its tail
# are printed). QEMU is killed as soon as the marker is seen.
# DISK may be raw or a VM disk named .qcow2/.vmdk/.vhdx/.vdi/.vhd.
# Usage: boot-disk.sh DISK.img --firmware bios|uefi [--vars VARS.fd] --marker STR
#                     [--timeout 90] [--log FILE] [--snapshot] [--fail-on STR]... [--vars-out FILE]
# --vars: the OVMF variable store to boot with (copied; the original is not changed).
#         Without it a fresh copy of OVMF_VARS_4M.fd is used.
# --snapshot: do not write to DISK.img (snapshot=on for the disk only; VARS stay writable).
# --vars-out: save the VARS store as the firmware left it (after the marker, QEMU gets
#             a few seconds to power off by itself so NVRAM writes are complete).
# --fail-on: give up early when STR shows up on the console (e.g. "Shell> " when OVMF
#            fell through to its UEFI shell), so negative controls do not wait the timeout.
set -uo pipefail

OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}

usage() { echo "usage: $0 DISK.img --firmware bios|uefi [--vars VARS.fd] --marker STR [--timeout 90] [--log FILE] [--snapshot] [--fail-on STR]... [--vars-out FILE]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
disk=$1; shift
fw="" vars="" marker="" timeout=90 log="" snap=off failon=() varsout=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --firmware) fw=${2:-}; shift 2 ;;
    --vars) vars=${2:-}; shift 2 ;;
    --marker) marker=${2:-}; shift 2 ;;
    --timeout) timeout=${2:-}; shift 2 ;;
    --log) log=${2:-}; shift 2 ;;
    --snapshot) snap=on; shift ;;
    --fail-on) failon+=("${2:-}"); shift 2 ;;
    --vars-out) varsout=${2:-}; shift 2 ;;
    *) usage ;;
  esac
done
[[ -f $disk ]] || { echo "boot-disk: no disk image '$disk'" >&2; exit 2; }
[[ -n $marker ]] || usage
[[ $timeout =~ ^[0-9]+$ ]] || usage
command -v qemu-system-x86_64 >/dev/null || { echo "boot-disk: qemu-system-x86_64 missing (scripts/setup.sh)" >&2; exit 2; }

work=$(mktemp -d)
[[ -n $log ]] || log=$work/serial.log
: >"$log"
fwargs=()
case $fw in
  bios)
    # SeaBIOS mirrors the BIOS text console (int 10h) to COM1 when told the port, so
    # the log shows boot.img's "GRUB " and SeaBIOS's own messages, not only Linux's.
    printf '\xf8\x03' >"$work/sercon-port"
    fwargs=(-fw_cfg "name=etc/sercon-port,file=$work/sercon-port")
    ;;
  uefi)
    [[ -f $OVMF_CODE ]] || { echo "boot-disk: missing $OVMF_CODE (ovmf)" >&2; exit 2; }
    src=${vars:-$OVMF_VARS}
    [[ -f $src ]] || { echo "boot-disk: missing VARS file $src" >&2; exit 2; }
    cp "$src" "$work/vars.fd"
    fwargs=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
            -drive "if=pflash,format=raw,unit=1,file=$work/vars.fd")
    ;;
  *) usage ;;
esac

# The container by extension (ironclone export writes these); anything else is raw.
case ${disk##*.} in
  qcow2 | vmdk | vhdx | vdi) dfmt=${disk##*.} ;;
  vhd) dfmt=vpc ;;
  *) dfmt=raw ;;
esac

start=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -machine q35 -m 512 -display none -no-reboot -nodefaults \
  -serial "file:$log" -net none "${fwargs[@]}" \
  -drive "file=$disk,format=$dfmt,if=none,id=d0,snapshot=$snap" -device ide-hd,drive=d0,bus=ide.0 \
  >"$work/qemu.out" 2>&1 &
qpid=$!

seen=0 why=""
deadline=$((SECONDS + timeout))
while ((SECONDS < deadline)); do
  if grep -aqF -- "$marker" "$log"; then seen=1; break; fi
  for f in "${failon[@]}"; do
    if grep -aqF -- "$f" "$log"; then why="gave up: saw '$f'"; break 2; fi
  done
  kill -0 "$qpid" 2>/dev/null || { grep -aqF -- "$marker" "$log" && seen=1; why="QEMU exited"; break; }
  sleep 0.5
done
if ((seen)) && [[ -n $varsout ]]; then
  for _ in $(seq 1 20); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.5; done
fi
kill "$qpid" 2>/dev/null
wait "$qpid" 2>/dev/null
if [[ -n $varsout ]]; then
  [[ $fw == uefi ]] || { echo "boot-disk: --vars-out needs --firmware uefi" >&2; rm -rf "$work"; exit 2; }
  cp "$work/vars.fd" "$varsout"
fi
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')

if ((seen)); then
  echo "boot-disk: $fw boot of $disk printed '$marker' after ${elapsed}s"
  rm -rf "$work"
  exit 0
fi
if [[ $log == "$work/serial.log" ]]; then
  keep=$(mktemp /tmp/boot-disk.XXXXXX.log); cp "$log" "$keep"; log=$keep
fi
echo "boot-disk: $fw boot of $disk did NOT print '$marker' within ${timeout}s (${elapsed}s${why:+, $why}); serial log: $log" >&2
echo "---- tail of $log" >&2
tail -c 2000 "$log" | tr -d '\r' | tail -n 15 >&2
grep -v -e 'should be prefixed with "opt/"' -e 'terminating on signal' "$work/qemu.out" >"$work/qemu.msg"
[[ -s $work/qemu.msg ]] && { echo "---- qemu output" >&2; cat "$work/qemu.msg" >&2; }
rm -rf "$work"
exit 1
