#!/bin/sh
# A job for the live system's unattended mode (`ironclone.job=SPEC:ironclone/job.sh`), shared
# by tests/qemu/test-live-backup-restore.sh and scripts/demo-live.sh.
#
# Why a plan file: disks are named by their serial number (vdX/sdX/nvmeXnY change with the
# bus and the boot), and the same job serves every boot of the demo (backup on the dead machine,
# restore on the replacement) — only `ironclone/plan` on the job disk changes. Plan lines:
#   backup SERIAL NAME        back up the disk with this serial into $REPO/repo as NAME
#   restore NAME SERIAL [OPTION...]   restore NAME onto the disk with this serial (--yes and
#                             the options, e.g. --new-ids)
#   verify                    check every chunk of the repository
#   images                    list the images
#   efi-list                  print the firmware's Boot#### entries and BootOrder (UEFI boots)
#   tui [WORDS...]            run the TUI on the serial console (ttyS0) until it quits, for a
#                             test on the host to drive (tests/qemu/tui-drive.py); WORDS say
#                             what it will do, for the log
# The `--json` results land in results/<step>.json on the job disk; the host reads them back.
set -u
D="${IRONCLONE_JOB_DIR:?not run by the unattended mode}"
REPO="$D/repo"
mkdir -p "$D/results" "$REPO"

# The live system has no udev and no jq: the serial is looked up in `ironclone disks --json`
# (pretty-printed, "path" comes before "serial" in each disk object).
by_serial() {
	ironclone disks --json </dev/null | awk -v s="$1" '
		/"path":/ { p = $2 }
		/"serial":/ { v = $2; gsub(/[",]/, "", v); if (v == s) { gsub(/[",]/, "", p); print p; exit } }'
}

# run_json OUT CMD...: JSON lines to OUT.jsonl, the last line (the result) to OUT.json and the console.
run_json() {
	out="$1"
	shift
	echo "job: $*"
	"$@" >"$out.jsonl" </dev/null
	rc=$?
	grep '"event":"result"' "$out.jsonl" | tail -n 1 >"$out.json"
	cat "$out.json"
	[ "$rc" -eq 0 ] || { echo "job: FAILED rc=$rc: $*"; tail -n 5 "$out.jsonl"; }
	return "$rc"
}

ironclone disks >"$D/results/disks.txt" 2>&1 </dev/null
cat "$D/results/disks.txt"
n=0
while read -r op a b rest; do
	n=$((n + 1))
	case "$op" in
	"" | "#"*) continue ;;
	backup)
		dev="$(by_serial "$a")"
		[ -n "$dev" ] || { echo "job: no disk with serial $a"; exit 20; }
		run_json "$D/results/backup-$b" ironclone backup "$dev" "$REPO" --name "$b" --json || exit $?
		;;
	restore)
		dev="$(by_serial "$b")"
		[ -n "$dev" ] || { echo "job: no disk with serial $b"; exit 20; }
		# shellcheck disable=SC2086 # the options are words on the plan line
		run_json "$D/results/restore-$b" ironclone restore "$REPO" "$a" "$dev" --yes --json $rest || exit $?
		;;
	verify) ironclone verify "$REPO" </dev/null || exit $? ;;
	images) ironclone images "$REPO" </dev/null || exit $? ;;
	tui)
		echo "job: TUI on ttyS0: $a $b $rest"
		# the kernel's own console messages would land in the middle of the screens
		dmesg -n 1 2>/dev/null
		stty rows 25 cols 80 </dev/ttyS0 2>/dev/null
		TERM=linux HOME=/root ironclone </dev/ttyS0 >/dev/ttyS0 2>"$D/results/tui.err"
		rc=$?
		echo
		echo "job: TUI exited rc=$rc"
		[ "$rc" -eq 0 ] || { tail -n 5 "$D/results/tui.err"; exit "$rc"; }
		;;
	efi-list) echo "job: efi-list" && ironclone bootfix efi-list </dev/null || exit $? ;;
	*) echo "job: unknown plan line $n: $op"; exit 21 ;;
	esac
done <"$D/ironclone/plan"
sync
echo "job: plan done"
