#!/usr/bin/env bash
# suite: all
# (`make test` skips this script to stay in CI's time budget: about 3 minutes on a quiet
# host (167 s, 2026-12-03; 7.5 min while the clients booted one by one over TFTP), 9 on a
# loaded one;
# tests/deploy.rs runs the same sender and clients on disk images; `make test-all` runs it.)
# `ironclone deploy` to network-booted QEMU clients (issue 22), on a network the test builds
# in network namespaces (nothing leaves the machine):
#   netns icdq-lan:  bridge br0 (192.168.79.1/24) with four tap devices, and
#                    `ironclone serve-boot --range ... --mode run` on it: the clients get their
#                    address, GRUB, kernel and initramfs from it, and the kernel command line
#                    `ironclone.run=deploy-client+--server+192.168.79.2`
#   netns icdq-send: send0 (192.168.79.2/24, a veth on br0) running `ironclone deploy`, so
#                    send0's tx_bytes count the sender's traffic and nothing else
# Source: the gpt-hybrid machine (qemu/machines, 256 MiB GPT, boots with BIOS and UEFI),
# backed up into a repository. Four diskless clients boot from the network, each with one
# EMPTY disk (virtio, a serial number the table must show) that deploy-client picks with
# --target auto:
#   c1 SeaBIOS (PXE through iPXE)  0.6x      c3 OVMF  1.5x
#   c2 OVMF (its own network stack)  1x      c4 SeaBIOS 1.2x, its QEMU killed mid-stream
# Checked: the sender's table lists c1-c3 ok by their serials and c4 dropped with the
# unicast-finish hint, and exits non-zero; c1-c3 print IRONCLONE-RESULT: ok; the killed
# client's disk is still all zeros (nothing is written before the whole stream is in);
# each restored disk passes sgdisk -v and e2fsck -fn on its root, its root partition is
# smaller/larger than the source's as its disk is, and it boots on its own (c1's with
# SeaBIOS, c2's with OVMF, c3's with SeaBIOS); send0's bytes sent are at most 1.2x the
# image's stored size.
# Prints "N passed, N failed"; takes about 5 minutes under TCG (more when the machine is busy).
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
serve_pid="" sender_pid=""
cleanup() {
	local p
	for p in "${VM[@]}" $sender_pid $serve_pid; do
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
for i in 1 2 3 4; do
	ip -n "$LAN" tuntap add dev "tap$i" mode tap
	ip -n "$LAN" link set "tap$i" master br0 up
done
ip -n "$LAN" link add vsend type veth peer name send0 netns "$SNS"
ip -n "$LAN" link set vsend master br0 up
ip -n "$SNS" addr add 192.168.79.2/24 brd + dev send0
ip -n "$SNS" link set send0 up
ip -n "$SNS" route add 224.0.0.0/4 dev send0

ip netns exec "$LAN" "$bin" serve-boot --interface br0 --root "$work/netboot" --run-dir "$work/run" \
	--range 192.168.79.100,192.168.79.150 --mode run --menu-timeout 1 \
	--append "ironclone.run=deploy-client+--server+192.168.79.2" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 50); do
	grep -q 'serve-boot: serving' "$work/serve.log" && break
	kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log"; fail "serve-boot exited"; }
	sleep 0.2
done
grep -q 'serve-boot: serving' "$work/serve.log" || { cat "$work/serve.log"; fail "serve-boot did not start"; }

# --- the sender: four clients; slowed so that c4 can be killed in the middle of the stream
tx0=$(ip netns exec "$SNS" cat /sys/class/net/send0/statistics/tx_bytes)
ip netns exec "$SNS" "$bin" deploy "$repo" lab --clients 4 --max-wait 600 --interface send0 \
	--work-dir "$work" --report-timeout 600 --retries-until-drop 10 --max-bitrate 10m --dead-after 30 \
	>"$work/sender.log" 2>&1 &
sender_pid=$!

# --- the clients. c1-c3 boot from the network all at once, with no retry: GRUB loads only
# itself, its modules and menu over TFTP and the kernel and 36 MiB initramfs over HTTP
# (serve-boot's busybox httpd), so simultaneous boots do not time out as GRUB's TFTP did.
# c4, the one that loses power, starts from -kernel/-initrd on the same network (what it is
# for happens after the boot), beside them.
declare -A FW=([1]=bios [2]=uefi [3]=uefi [4]=bios) PCT=([1]=60 [2]=100 [3]=150 [4]=120)
declare -A VM T0
start_client() { # start_client N
	local i=$1 size boot=(--boot-nic)
	size=$((src_size * PCT[$i] / 100 / 1048576 * 1048576))
	truncate -s "$size" "$work/c$i.img"
	((i == 4)) && boot=(--append "ironclone.run=deploy-client+--server+192.168.79.2")
	ip netns exec "$LAN" "$RUNVM" --tap "tap$i" --mac "52:54:00:79:00:0$i" "${boot[@]}" --firmware "${FW[$i]}" --mem 512 \
		--disk "$work/c$i.img,if=virtio,serial=DQ-C$i" --timeout 900 --log "$work/c$i.log" \
		--pidfile "$work/c$i.pid" >"$work/c$i.run" 2>&1 &
	VM[$i]=$! T0[$i]=$SECONDS
}
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
for i in 1 2 3 4; do start_client "$i"; done
wait_live 1 2 3 4
echo "c1-c4 booted the live system at once in $((SECONDS - boot_start)) s"

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
row=$(table | grep -F "DQ-C4 ")
if [[ $row =~ (MISSING|FAILED) && $row == *dropped* && $row == *"ironclone restore $repo lab DISK"* ]]; then
	ok "the sender's table: c4 dropped, with the unicast-finish hint"
else bad "the sender's table: c4: ${row:-no row}"; fi
table | grep -q '^3 of 4 client(s) ok' || bad "the sender's table does not count 3 of 4 ok"

# The killed client never wrote: nothing goes to the disk before the whole stream is in.
if cmp -s -n "$(stat -c %s "$work/c4.img")" "$work/c4.img" /dev/zero; then ok "c4's disk is still all zeros"
else bad "c4's disk was written although the stream was cut"; fi

# One stream for all: what send0 sent against the image's stored size (its packs).
stored=$(find "$repo/packs" -name '*.pack' -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
echo "bytes sent by the sender: $tx; stream $stream; stored (packs) $stored;" \
	"ratio to stored $(awk -v a="$tx" -v b="$stored" 'BEGIN {printf "%.3f", a / b}')"
if ((stored > 0 && tx * 10 <= stored * 12)); then ok "sent $tx bytes for 4 clients <= 1.2x the stored $stored"
else bad "sent $tx bytes for 4 clients, more than 1.2x the stored $stored"; fi

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
