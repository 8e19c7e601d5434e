# shellcheck shell=bash
# Shared helpers for the live-system QEMU tests (sourced, not run).
# Why: every test builds a labelled ext4 job disk with mkfs.ext4 -d, boots, and then reads
# what the job wrote with debugfs on the host — an independent reader, no mount needed.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck disable=SC2034 # used by the test scripts that source this file
RUNVM="$ROOT/qemu/run-vm.sh"
LOGDIR="$ROOT/build/qemu-logs"
mkdir -p "$LOGDIR"
for t in qemu-system-x86_64 mkfs.ext4 debugfs; do
	command -v "$t" >/dev/null || { echo "FAIL: $t missing (run scripts/setup.sh)" >&2; exit 1; }
done

fail() { echo "FAIL: $*" >&2; exit 1; }

# make_job_disk IMG LABEL SCRIPT_PATH < script  — ext4 disk holding the script at SCRIPT_PATH.
make_job_disk() {
	local img="$1" label="$2" path="$3" src
	src="$(mktemp -d)"
	mkdir -p "$src/$(dirname "$path")"
	cat >"$src/$path"
	rm -f "$img"
	truncate -s 64M "$img"
	mkfs.ext4 -q -F -L "$label" -d "$src" "$img" || fail "mkfs.ext4 -d for $img"
	rm -rf "$src"
}

# make_steps_disk DIR IMG SIZE LABEL < plan — a disk for qemu/jobs/steps.sh: DIR (which may
# already hold other files) gets ironclone/job.sh and the plan read from stdin, and becomes
# an ext4 image IMG of SIZE labelled LABEL.
make_steps_disk() {
	local dir="$1" img="$2" size="$3" label="$4"
	mkdir -p "$dir/ironclone"
	cp "$ROOT/qemu/jobs/steps.sh" "$dir/ironclone/job.sh"
	cat >"$dir/ironclone/plan"
	truncate -s "$size" "$img"
	mkfs.ext4 -q -F -L "$label" -d "$dir" "$img" || fail "mkfs.ext4 -d for $img"
}

# disk_cat IMG PATH — a file's content from an ext4 image, via debugfs.
disk_cat() {
	debugfs -R "cat /$2" "$1" 2>/dev/null
}

# expect_in TEXT NEEDLE WHAT
expect_in() {
	grep -qF -- "$2" <<<"$1" || { printf '%s\n' "$1" | sed 's/^/  | /' >&2; fail "$3: expected '$2'"; }
}

# run_check_job NAME MIN WHAT RUN-VM-ARGS... — boots run-vm.sh with RUN-VM-ARGS (its log is
# $LOGDIR/NAME.log, kept in JOB_LOG) for a job that prints `check: ok` / `check: FAIL` lines
# and `job: plan done` at its end; prints the checks and fails unless the job reached its
# end with no failed check and at least MIN passed (a job cut short passes fewer).
run_check_job() {
	local name="$1" min="$2" what="$3" start n
	shift 3
	JOB_LOG="$LOGDIR/$name.log"
	start=$(date +%s)
	"$RUNVM" --log "$JOB_LOG" "$@" || {
		grep -a '^check: ' "$JOB_LOG" >&2 || true
		fail "$what failed (serial log: $JOB_LOG)"
	}
	echo "$what took $(($(date +%s) - start)) s"
	grep -a '^check: ' "$JOB_LOG" | tr -d '\r'
	grep -aq 'job: plan done' "$JOB_LOG" || fail "job did not reach its end (serial log: $JOB_LOG)"
	grep -aq 'check: FAIL' "$JOB_LOG" && fail "some checks failed (serial log: $JOB_LOG)"
	n=$(grep -ac 'check: ok' "$JOB_LOG")
	[[ $n -ge $min ]] || fail "only $n checks passed (serial log: $JOB_LOG)"
}

# live_job_setup — for a job that runs the binary under test inside the live system: BUILD
# (IRONCLONE_BUILD, default build/) must hold initramfs.img, BIN (IRONCLONE_BIN, default the
# musl release build) must be static; makes the temp dir $tmp (removed on exit) and puts BIN
# in the job disk's tree at $tmp/jobfs/ironclone/bin/ironclone, and guest-lib.sh (ok, bad,
# by_serial, part, writer) at $tmp/jobfs/ironclone/guest-lib.sh for the job to source.
live_job_setup() {
	# shellcheck disable=SC2034 # BUILD is the calling script's
	BUILD="${IRONCLONE_BUILD:-$ROOT/build}"
	BIN="${IRONCLONE_BIN:-$ROOT/target/x86_64-unknown-linux-musl/release/ironclone}"
	[[ -f "$BUILD/initramfs.img" ]] || fail "$BUILD/initramfs.img missing (make iso)"
	[[ -x "$BIN" ]] || fail "$BIN missing (make build)"
	file "$BIN" | grep -Eq 'statically linked|static-pie linked' || fail "$BIN is not static"
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp/jobfs/ironclone/bin"
	cp "$BIN" "$tmp/jobfs/ironclone/bin/ironclone"
	cp "$ROOT/tests/qemu/guest-lib.sh" "$tmp/jobfs/ironclone/guest-lib.sh"
}

# tui_drive_bg OUT PIDFILE [tui-drive.py OPTIONS] SOCKET STEP... — tests/qemu/tui-drive.py
# types STEPs at the TUI on the VM's serial socket, in the background (its pid in TUI_DRIVE,
# its output in OUT), and then quits the TUI from its start screen. If it fails, OUT.failed
# is made and the VM (pid in PIDFILE, run-vm.sh's --pidfile) is stopped at once rather than
# left at a screen until its timeout.
tui_drive_bg() {
	local out="$1" pidfile="$2"
	shift 2
	(
		python3 "$ROOT/tests/qemu/tui-drive.py" "$@" \
			'wait What do you want to do?' 'keys q' 'wait Leave ironclone?' 'keys y' >"$out" 2>&1 ||
			{ touch "$out.failed"; kill "$(cat "$pidfile")" 2>/dev/null; }
	) &
	# shellcheck disable=SC2034 # the calling script waits for it
	TUI_DRIVE=$!
}
