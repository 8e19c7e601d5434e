#!/usr/bin/env bash
# The live initramfs with no job on the command line goes interactive: after the ready marker
# (which carries `ironclone --version` as run inside the VM), busybox init takes over and
# supervises the TUI. The TUI is put on the serial console (ironclone.console=ttyS0, as the
# ISO's "serial console" menu entry does) so that the test sees what the TUI itself draws:
# init's own announcement is echoed whatever the TUI does, so it proves nothing about it.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
[[ -f "$ROOT/build/initramfs.img" ]] || fail "build/initramfs.img missing (make iso)"
log="$LOGDIR/live-interactive.log"
# The home screen's title and a menu entry below it, as the TUI draws them (see
# src/tui/snapshots/*home.snap); each is one styled run, so it reaches the log contiguous.
# The VM stops at the entry, which is drawn after the title.
start=$(date +%s)
"$RUNVM" --timeout 120 --log "$log" --append " ironclone.console=ttyS0" --expect "Backup a disk" ||
	fail "the TUI did not draw its home screen on the serial console (serial log: $log)"
echo "boot to the TUI's home screen took $(($(date +%s) - start)) s"
grep -aq '^IRONCLONE-LIVE-READY ironclone [0-9]' "$log" || fail "no ready marker with the version ($log)"
grep -aq 'IRONCLONE-INTERACTIVE: TUI on ttyS0' "$log" || fail "init did not announce the TUI on ttyS0 ($log)"
grep -aqF 'What do you want to do?' "$log" || fail "the home screen has no title ($log)"
grep -aq 'IRONCLONE-RESULT' "$log" && fail "an interactive boot must not run a job ($log)"
grep -aq 'ironclone exited' "$log" && fail "the TUI exited instead of waiting for keys ($log)"
echo "PASS: live interactive boot (TUI supervised by init draws its home screen)"
