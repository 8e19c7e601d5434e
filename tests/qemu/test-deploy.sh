#!/usr/bin/env bash
# CI runs it (`make test`): it is issue 22's acceptance test. 192 s on 2026-12-03 at load
# 2-3, 283 s at load 13-15 (five clients booting at once over HTTP); tests/deploy.rs and
# tests/deploy_cancel.rs run the same sender and clients on disk images.
# `ironclone deploy --serve-boot` to network-booted QEMU clients (issue 22): one command
# serves the network boot and the image; the two-command form (`serve-boot` beside a
# `deploy`) is test-serve-boot.sh's. On a network the test builds in network namespaces
# (nothing leaves the machine):
#   netns icdq-lan:  bridge br0 with five tap devices (a plain switch, no IGMP snooping)
#   netns icdq-send: send0 (192.168.79.2/24, a veth on br0) running
#                    `ironclone deploy ... --serve-boot send0 --boot-range ... --client-screen
#                    /dev/ttyS1 --boot-append ironclone.erase=any`: DHCP, GRUB, kernel and
#                    initramfs, and the kernel line `ironclone.run=deploy-client+--server+
#                    192.168.79.2:9200+--target+auto+--screen+/dev/ttyS1 ironclone.erase=any`
# Source: the gpt-hybrid machine (qemu/machines, 256 MiB GPT, boots with BIOS and UEFI),
# backed up into a repository. Clients, each with one disk (virtio, a serial number the
# table must show) that deploy-client picks with --target auto:
#   c1 SeaBIOS (PXE through iPXE)  0.6x empty     c3 OVMF  1.5x, holds an ext4 filesystem
#   c2 OVMF (its own network stack)  1x empty     (erased: the site said ironclone.erase=any)
#   c4 SeaBIOS 1.2x empty, kernel+initramfs direct, its QEMU killed mid-stream
#   c5 SeaBIOS 1x holding an ext4 filesystem, kernel+initramfs direct, WITHOUT
#      ironclone.erase=any: must refuse its disk
# c1-c3 have a second serial port (ttyS1) written to a file: the client screen.
# Checked: the sender's table lists c1-c3 ok by their serials (c3's disk "held data:
# erased, ironclone.erase=any"), c4 dropped with the unicast-finish hint and c5 REFUSED
# naming its disk and why, and exits non-zero; c1-c3 print IRONCLONE-RESULT: ok, c5 a
# fail; c4's disk is still all zeros and c5's byte-identical (sha256 before/after; c3's,
# the same kind of disk erased, must differ: the control); each of c1-c3's screens (ttyS1)
# shows in order: waiting (server address, its disk), receiving, restoring, done with
# the result line (the control: the same replay of c1's ttyS0 console finds no screen);
# each restored disk passes sgdisk -v and e2fsck -fn on its root, its root partition is
# smaller/larger than the source's as its disk is, and it boots on its own (c1's with
# SeaBIOS, c2's with OVMF, c3's with SeaBIOS); send0's bytes sent from the clients'
# kernel start to the end (the stream, not the boot files) are at most 1.2x the image's
# stored size.
# Prints "N passed, N failed".
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=tests/qemu/lib-live.sh
source "$ROOT/tests/qemu/lib-live.sh"
BOOT="$ROOT/qemu/boot-disk.sh"
TIMEOUT=${BOOT_TIMEOUT:-120}
KERNEL="$ROOT/build/kernel/vmlinuz" INITRD="$ROOT/build/initramfs.img"
[[ -f $KERNEL && -f $INITRD ]] || fail "$KERNEL or $INITRD missing (make iso)"
for t in ip dnsmasq udp-sender sgdisk e2fsck losetup; do
	command -v $t >/dev/null || fail "$t missing (run scripts/setup.sh)"
done
work=$(mktemp -d /tmp/ironclone-deploy-qemu.XXXXXX)
repo=$work/repo
keep_logs=0
LAN=icdq-lan-$$ SNS=icdq-send-$$
sender_pid=""
cleanup() {
	local p
	for p in "${VM[@]}" $sender_pid; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	ip netns del "$LAN" 2>/dev/null
	ip netns del "$SNS" 2>/dev/null
	if ((keep_logs)); then
		rm -rf "$work"/*.img "$work/repo" "$work/netboot" "$work/run"
		echo "logs kept in $work"
	else rm -rf "$work"; fi
}
trap cleanup EXIT
# shellcheck source=tests/qemu/lib-restore.sh
source "$ROOT/tests/qemu/lib-restore.sh"
total_start=$SECONDS

# --- the source image and the boot root
build gpt-hybrid "$ROOT/qemu/machines/mk-gpt-hybrid.sh" "$work/src.img" || exit 1
backup "$work/src.img" lab || exit 1
src_size=$(stat -c %s "$work/src.img")
bash "$ROOT/image/build-netboot.sh" "$KERNEL" "$INITRD" "$work/netboot" >"$work/netboot.log" 2>&1 ||
	{ cat "$work/netboot.log"; fail "build-netboot"; }
# The root partition's size in sectors (sgdisk -i), to see each client made its own plan.
root_sectors() { sgdisk -i 3 "$1" | awk '/^Partition size:/ {print $3}'; }
src_root=$(root_sectors "$work/src.img")

# --- the network
ip netns add "$LAN"
ip netns add "$SNS"
ip -n "$LAN" link set lo up
ip -n "$SNS" link set lo up
# No IGMP snooping: the multicast stream reaches every port as on a plain switch.
ip -n "$LAN" link add br0 type bridge mcast_snooping 0
ip -n "$LAN" addr add 192.168.79.1/24 brd + dev br0
ip -n "$LAN" link set br0 up
for i in 1 2 3 4 5; do
	ip -n "$LAN" tuntap add dev "tap$i" mode tap
	ip -n "$LAN" link set "tap$i" master br0 up
done
ip -n "$LAN" link add vsend type veth peer name send0 netns "$SNS"
ip -n "$LAN" link set vsend master br0 up
ip -n "$SNS" addr add 192.168.79.2/24 brd + dev send0
ip -n "$SNS" link set send0 up
ip -n "$SNS" route add 224.0.0.0/4 dev send0

# --- the sender, serving the network boot too: four receivers; slowed so that c4 can be
# killed in the middle of the stream. The site accepts erasing disks with data (c3's).
tx_start=$(ip netns exec "$SNS" cat /sys/class/net/send0/statistics/tx_bytes)
ip netns exec "$SNS" "$bin" deploy "$repo" lab --clients 4 --max-wait 600 --work-dir "$work" \
	--serve-boot send0 --boot-root "$work/netboot" --boot-run-dir "$work/run" \
	--boot-range 192.168.79.100,192.168.79.150 --client-screen /dev/ttyS1 --boot-append ironclone.erase=any \
	--report-timeout 600 --retries-until-drop 10 --max-bitrate 10m --dead-after 30 \
	>"$work/sender.log" 2>&1 &
sender_pid=$!
for _ in $(seq 1 100); do
	grep -q 'serve-boot: serving' "$work/sender.log" && break
	kill -0 "$sender_pid" 2>/dev/null || { cat "$work/sender.log"; fail "deploy --serve-boot exited"; }
	sleep 0.2
done
grep -q 'serve-boot: serving' "$work/sender.log" || { cat "$work/sender.log"; fail "deploy --serve-boot did not serve"; }
if grep -q 'the site accepts erasing a disk that holds data' "$work/sender.log"; then
	ok "the sender says the site accepts erasing (ironclone.erase=any on the clients' kernel line)"
else bad "the sender does not say that the site accepts erasing"; fi

# --- the clients. c1-c3 boot from the network all at once, with no retry: GRUB loads only
# itself, its modules and menu over TFTP and the kernel and 36 MiB initramfs over HTTP
# (the deploy's busybox httpd), so simultaneous boots do not time out as GRUB's TFTP did.
# c4 (the one that loses power) and c5 (the one that must refuse its disk) start from
# -kernel/-initrd on the same network with their own kernel line (the served one is
# the same for every network-booted client), beside them.
declare -A FW=([1]=bios [2]=uefi [3]=uefi [4]=bios [5]=bios) PCT=([1]=60 [2]=100 [3]=150 [4]=120 [5]=100)
declare -A VM T0
direct_run="ironclone.run=deploy-client+--server+192.168.79.2:9200+--target+auto"
disk_size() { echo $((src_size * PCT[$1] / 100 / 1048576 * 1048576)); }
start_client() { # start_client N (truncate keeps a disk made beforehand: same size)
	local i=$1
	local boot=(--boot-nic --serial2 "$work/c$i.screen")
	truncate -s "$(disk_size "$i")" "$work/c$i.img"
	((i >= 4)) && boot=(--append "$direct_run")
	ip netns exec "$LAN" "$RUNVM" --tap "tap$i" --mac "52:54:00:79:00:0$i" "${boot[@]}" --firmware "${FW[$i]}" --mem 512 \
		--disk "$work/c$i.img,if=virtio,serial=DQ-C$i" --timeout 900 --log "$work/c$i.log" \
		--pidfile "$work/c$i.pid" >"$work/c$i.run" 2>&1 &
	VM[$i]=$! T0[$i]=$SECONDS
}
# Disks that hold data: an ext4 filesystem over the whole disk (its superblock at 1 KiB,
# inside the first MiB a client looks at). c3's is erased (ironclone.erase=any on the
# served kernel line), c5's must be refused and left byte-identical.
has_data() { # has_data N: prints the sha256 of cN.img with its filesystem
	truncate -s "$(disk_size "$1")" "$work/c$1.img"
	mkfs.ext4 -q -F -L "DATA-C$1" "$work/c$1.img" >&2 || return 1
	sha256sum <"$work/c$1.img" | cut -d' ' -f1
}
sum3_before=$(has_data 3) || fail "mkfs.ext4 on c3.img"
sum5_before=$(has_data 5) || fail "mkfs.ext4 on c5.img"
wait_live() { # wait_live N...: each has printed the live system's ready marker
	local i
	for i in "$@"; do
		until grep -aq '^IRONCLONE-LIVE-READY' "$work/c$i.log" 2>/dev/null; do
			if grep -aqE 'timeout reading|Failed to boot both|you need to load the kernel first|error: (file .* not found|premature end|connection refused)' "$work/c$i.log" 2>/dev/null; then
				keep_logs=1
				tail -c 3000 "$work/c$i.log" | tr -d '\r' | tail -n 20
				fail "c$i: GRUB failed to load the live system over the network"
			elif ((SECONDS - T0[$i] > 400)) || ! kill -0 "${VM[$i]}" 2>/dev/null; then
				keep_logs=1
				tail -c 3000 "$work/c$i.log" | tr -d '\r' | tail -n 20
				fail "c$i did not boot the live system"
			fi
			sleep 1
		done
		echo "client c$i: ${FW[$i]}, ${PCT[$i]}% disk, booted the live system in $((SECONDS - T0[$i])) s"
	done
}
boot_start=$SECONDS
for i in 1 2 3 4 5; do start_client "$i"; done
# send0's bytes once every client's kernel runs: GRUB has loaded its kernel and initramfs
# by then (the boot files are not the stream), and the transfer cannot have started (it
# waits for four receivers, each a booted live system that registered).
until (($(grep -al 'ironclone-live: starting' "$work"/c[1-5].log 2>/dev/null | wc -l) == 5)); do
	((SECONDS - boot_start < 400)) || { keep_logs=1; fail "not every client's kernel started in 400 s"; }
	sleep 0.5
done
tx0=$(ip netns exec "$SNS" cat /sys/class/net/send0/statistics/tx_bytes)
boot_tx=$((tx0 - tx_start))
if grep -q 'Starting transfer' "$work/sender.log"; then
	fail "the transfer started before every client's kernel ran: no clean measurement"
fi
wait_live 1 2 3 4 5
echo "c1-c5 booted the live system at once in $((SECONDS - boot_start)) s (boot files: $boot_tx bytes from send0)"

# --- c4 loses power once a third of the stream has gone past its tap
sender_says() { grep -q -- "$1" "$work/sender.log"; }
deadline=$((SECONDS + 600))
until sender_says 'Starting transfer'; do
	((SECONDS < deadline)) || { cat "$work/sender.log"; fail "the transfer never started"; }
	kill -0 "$sender_pid" 2>/dev/null || { cat "$work/sender.log"; fail "the sender exited before the transfer"; }
	sleep 0.5
done
echo "transfer started after $((SECONDS - total_start)) s"
stream=$(sed -n 's/^stream: .* \([0-9]*\) bytes$/\1/p' "$work/sender.log")
[[ -n $stream ]] || { cat "$work/sender.log"; fail "the sender did not print the stream's size"; }
tap_tx() { ip netns exec "$LAN" cat /sys/class/net/tap4/statistics/tx_bytes; }
base=$(tap_tx)
deadline=$((SECONDS + 120))
while (($(tap_tx) - base < stream / 3)); do
	((SECONDS < deadline)) || fail "c4 did not receive a third of the stream in 120 s"
	sleep 0.1
done
kill -9 "$(cat "$work/c4.pid")" || fail "could not kill c4's QEMU"
echo "c4 killed after $(($(tap_tx) - base)) of $stream stream bytes went to its tap"

# --- the results
for i in 1 2 3; do
	if wait "${VM[$i]}"; then ok "c$i (${FW[$i]}, ${PCT[$i]}%): IRONCLONE-RESULT: ok"
	else bad "c$i (${FW[$i]}, ${PCT[$i]}%): $(cat "$work/c$i.run")"; tail -20 "$work/c$i.log"; fi
done
wait "${VM[4]}"
c5_rc=0
wait "${VM[5]}" || c5_rc=$?
VM=()
sender_rc=0
wait "$sender_pid" || sender_rc=$?
sender_pid=""
tx=$(($(ip netns exec "$SNS" cat /sys/class/net/send0/statistics/tx_bytes) - tx0))
cat "$work/sender.log"
if ((sender_rc != 0)); then ok "the sender exits $sender_rc (a client failed)"
else bad "the sender exited 0 with a killed client"; fi
table() { sed -n '/^address /,$p' "$work/sender.log"; }
for i in 1 2 3; do
	row=$(table | grep -F "DQ-C$i ")
	if [[ $row =~ [[:space:]]ok[[:space:]] ]]; then ok "the sender's table: c$i ok"
	else bad "the sender's table: c$i not ok: ${row:-no row}"; fi
done
# The site's permission is in the report: c3's disk held data and was erased.
row=$(table | grep -F "DQ-C3 ")
if [[ $row == *"(held data: erased, ironclone.erase=any)"* ]]; then
	ok "the sender's table: c3's disk held data, erased as ironclone.erase=any allowed"
else bad "the sender's table does not say c3's disk held data: ${row:-no row}"; fi
for i in 1 2; do
	row=$(table | grep -F "DQ-C$i ")
	[[ $row != *"held data"* ]] || bad "the sender's table says c$i's empty disk held data: $row"
done
if grep -aq 'holds data; erased as ironclone.erase=any allows' "$work/c3.log"; then
	ok "c3's console says its disk holds data, erased as ironclone.erase=any allows"
else bad "c3's console does not say its disk held data"; fi
# c5 refused: its row, its console, its exit, its disk.
row=$(table | grep -F "DQ-C5")
if [[ $row =~ [[:space:]]REFUSED[[:space:]] && $row == *"/dev/vda): holds data"* && $row == *ironclone.erase=any* ]]; then
	ok "the sender's table: c5 REFUSED, naming its disk and why"
else bad "the sender's table: c5: ${row:-no row}"; fi
if ((c5_rc != 0)) && grep -aq 'IRONCLONE-RESULT: fail' "$work/c5.log" &&
	grep -aq 'deploy failed: no target: .*serial DQ-C5.*holds data' "$work/c5.log"; then
	ok "c5: IRONCLONE-RESULT: fail, its console names the disk and why"
else bad "c5 (rc $c5_rc): $(grep -a 'deploy failed\|IRONCLONE-RESULT' "$work/c5.log")"; fi
sum5_after=$(sha256sum <"$work/c5.img" | cut -d' ' -f1)
sum3_after=$(sha256sum <"$work/c3.img" | cut -d' ' -f1)
if [[ $sum5_after == "$sum5_before" ]]; then ok "c5's disk is byte-identical (sha256 $sum5_after)"
else bad "c5's refused disk changed: $sum5_before -> $sum5_after"; fi
# The control: the checksum does see a disk of the same kind that was written (c3's).
if [[ $sum3_after != "$sum3_before" ]]; then ok "control: c3's erased disk's sha256 changed"
else bad "control: c3's disk has the same sha256 after its restore"; fi
row=$(table | grep -F "DQ-C4 ")
if [[ $row =~ (MISSING|FAILED) && $row == *dropped* && $row == *"ironclone restore $repo lab DISK"* ]]; then
	ok "the sender's table: c4 dropped, with the unicast-finish hint"
else bad "the sender's table: c4: ${row:-no row}"; fi
table | grep -q '^3 of 5 client(s) ok' || bad "the sender's table does not count 3 of 5 ok"

# --- the client screen on ttyS1 (deploy --client-screen /dev/ttyS1), replayed as a
# terminal would show it: waiting with the server and its disk, then receiving,
# restoring, and done with the result line.
for i in 1 2 3; do
	if python3 "$ROOT/tests/qemu/screen-frames.py" "$work/c$i.screen" \
		'Deploy client: waiting for the server && Server:  192.168.79.2:9200 && State:   waiting for the server to start the transfer && Disk:    /dev/vda' \
		'State:   receiving the image && received' \
		'State:   restoring onto this machine' \
		'Deploy client: done && restored lab onto /dev/vda' >"$work/c$i.frames" 2>&1; then
		ok "c$i's screen on ttyS1: waiting (server, disk), receiving, restoring, done"
	else bad "c$i's screen on ttyS1: $(cat "$work/c$i.frames")"; fi
done
# The control: the same replay of c1's ttyS0 (its console: log lines, no screen) fails.
if python3 "$ROOT/tests/qemu/screen-frames.py" "$work/c1.log" 'Deploy client: waiting for the server' >/dev/null 2>&1; then
	bad "control: the screen replay found a screen on c1's ttyS0 console"
else ok "control: the screen replay finds no screen on c1's ttyS0 console"; fi

# The killed client never wrote: nothing goes to the disk before the whole stream is in.
if cmp -s -n "$(stat -c %s "$work/c4.img")" "$work/c4.img" /dev/zero; then ok "c4's disk is still all zeros"
else bad "c4's disk was written although the stream was cut"; fi

# One stream for all: what send0 sent against the image's stored size (its packs).
stored=$(find "$repo/packs" -name '*.pack' -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
echo "bytes sent by the sender after the clients' kernels started: $tx; stream $stream; stored (packs) $stored;" \
	"ratio to stored $(awk -v a="$tx" -v b="$stored" 'BEGIN {printf "%.3f", a / b}')"
if ((stored > 0 && tx * 10 <= stored * 12)); then ok "sent $tx bytes for 4 clients <= 1.2x the stored $stored"
else bad "sent $tx bytes for 4 clients, more than 1.2x the stored $stored"; fi
echo "boot files sent by the same command before the clients' kernels ran: $boot_tx bytes"

# --- each restored disk on its own: structure, its own plan, and a boot
MK="IRONCLONE-MACHINE-OK gpt-hybrid"
declare -A BOOTFW=([1]=bios [2]=uefi [3]=bios)
for i in 1 2 3; do
	d=$work/c$i.img
	sgdisk -v "$d" 2>&1 | grep -q 'No problems found' || { bad "c$i: sgdisk -v"; sgdisk -v "$d"; }
	r=$(root_sectors "$d")
	want=$(((PCT[$i] > 100) - (PCT[$i] < 100))) # the sign of the change its disk size asks for
	got=$(((r > src_root) - (r < src_root)))
	if ((want == got)); then ok "c$i: root partition $src_root -> $r sectors on its ${PCT[$i]}% disk"
	else bad "c$i: root partition $src_root -> $r sectors on its ${PCT[$i]}% disk"; fi
	start=$(sgdisk -i 3 "$d" | awk '/^First sector:/ {print $3}')
	loop=$(losetup -f --show -r -o $((start * 512)) --sizelimit $((r * 512)) "$d")
	if e2fsck -fn "$loop" >"$work/c$i.fsck" 2>&1; then ok "c$i: e2fsck -fn of the root"
	else bad "c$i: e2fsck -fn of the root"; cat "$work/c$i.fsck"; fi
	losetup -d "$loop"
done
# Two boots at a time (2 cores); each is a --snapshot boot, the disk is not changed. The
# PASS/FAIL lines come back through files (a background job cannot count for this shell).
boot_bg() { expect_boot "$@" >"$work/$1.boot" 2>&1; }
boot_bg c1-restored "$work/c1.img" "${BOOTFW[1]}" "$MK" --fail-on 'GRUB GRUB' &
b1=$!
boot_bg c2-restored "$work/c2.img" "${BOOTFW[2]}" "$MK" --fail-on 'Shell> ' &
wait $b1 $!
boot_bg c3-restored "$work/c3.img" "${BOOTFW[3]}" "$MK" --fail-on 'GRUB GRUB'
for i in 1 2 3; do
	cat "$work/c$i-restored.boot"
	passed=$((passed + $(grep -c '^PASS' "$work/c$i-restored.boot")))
	n=$(grep -c '^FAIL' "$work/c$i-restored.boot")
	failed=$((failed + n))
	((n == 0)) || keep_logs=1
done

echo "deploy-qemu: total $((SECONDS - total_start))s"
echo "$passed passed, $failed failed"
((failed == 0))
