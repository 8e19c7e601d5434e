#!/usr/bin/env bash
# The live initramfs with no job on the command line goes interactive: after the ready marker
# (which carries `ironclone --version` as run inside the VM), busybox init takes over and
# supervises the TUI on tty1 and the shells; it announces itself on the serial console.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
[[ -f "$ROOT/build/initramfs.img" ]] || fail "build/initramfs.img missing (make iso)"
log="$LOGDIR/live-interactive.log"
start=$(date +%s)
"$RUNVM" --timeout 120 --log "$log" --expect "IRONCLONE-INTERACTIVE: TUI on tty1" ||
	fail "interactive boot did not reach busybox init (serial log: $log)"
echo "boot to interactive took $(($(date +%s) - start)) s"
grep -aq '^IRONCLONE-LIVE-READY ironclone [0-9]' "$log" || fail "no ready marker with the version ($log)"
grep -aq 'IRONCLONE-RESULT' "$log" && fail "an interactive boot must not run a job ($log)"
echo "PASS: live interactive boot (TUI supervised by init)"
