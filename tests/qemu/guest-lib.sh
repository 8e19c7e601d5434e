# Sourced by the jobs that run inside the live system (busybox sh, not bash); put on the
# job disk by live_job_setup (lib-live.sh) as ironclone/guest-lib.sh next to the binary.
# Needs D (the job disk's mount) and IC (the binary) set before it is sourced.
# Every check prints "check: ok WHAT" or "check: FAIL WHAT"; run_live counts them.
# shellcheck shell=sh
fails=0
ok() { echo "check: ok $*"; }
bad() {
	echo "check: FAIL $*"
	fails=$((fails + 1))
}
# The disk whose serial is $1 (QEMU's serial= option): /dev/sdX follows probe order.
by_serial() {
	"$IC" disks --json </dev/null | awk -v s="$1" '
		/"path":/ { p = $2 }
		/"serial":/ { v = $2; gsub(/[",]/, "", v); if (v == s) { gsub(/[",]/, "", p); print p; exit } }'
}
# Partition $2 of disk $1 (sda1, or nvme0n1p1 / loop0p1).
part() { if [ -b "$1$2" ]; then echo "$1$2"; else echo "$1p$2"; fi; }
# writer DIR: keeps rewriting four 1 MiB files in DIR, each synced, until writer_stop;
# what a running system does to a filesystem while the scheduled run images it.
writer() {
	rm -f /tmp/writer-stop
	(
		n=0
		while [ ! -f /tmp/writer-stop ]; do
			dd if=/dev/urandom of="$1/w$((n % 4))" bs=64k count=16 conv=fsync status=none
			n=$((n + 1))
		done
		echo "job: writer wrote $n files"
	) &
	writer_pid=$!
	sleep 1
}
writer_stop() {
	touch /tmp/writer-stop
	wait "$writer_pid"
}
