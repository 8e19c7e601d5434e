#!/usr/bin/env bash
# suite: all
# (`make test` skips this script to stay in CI's time budget: test-netboot boots the same
# kernel and initramfs from SeaBIOS (PXE) and OVMF; `make test-all` runs it.)
# `ironclone serve-boot` boots clients over a network the test builds in network
# namespaces (nothing leaves the machine), beside a "site" DHCP server it must not
# disturb (issue 22):
#   netns icsb-lan:  bridge br0 (192.168.77.1/24) with the site's dnsmasq handing out
#                    addresses, and tap0 for the QEMU client
#   netns icsb-boot: boot0 (192.168.77.2/24, a veth on br0) running serve-boot in its
#                    default proxy-DHCP mode, serving the root image/build-netboot.sh made
# A SeaBIOS client (PXE through the NIC's iPXE ROM) and an OVMF client boot from it with
# only a job disk: serve-boot's --mode unattended and --append must reach their kernel,
# the address must come from the site's server, and the boot files from ours. Negative
# control: with serve-boot stopped, the client must not reach the live system.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
KERNEL="$ROOT/build/kernel/vmlinuz" INITRD="$ROOT/build/initramfs.img"
[[ -f $KERNEL && -f $INITRD ]] || fail "$KERNEL or $INITRD missing (make iso)"
for t in ip dnsmasq; do command -v $t >/dev/null || fail "$t missing (run scripts/setup.sh)"; done
BIN=${IRONCLONE:-}
if [[ -z $BIN ]]; then
	(cd "$ROOT" && cargo build --quiet --bin ironclone) || fail "cannot build ironclone"
	BIN="$ROOT/target/debug/ironclone"
fi
LAN=icsb-lan-$$ BOOTNS=icsb-boot-$$
tmp="$(mktemp -d)"
serve_pid=""
cleanup() {
	[[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
	[[ -f $tmp/site.pid ]] && kill "$(cat "$tmp/site.pid")" 2>/dev/null
	ip netns del "$LAN" 2>/dev/null
	ip netns del "$BOOTNS" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$LAN"
ip netns add "$BOOTNS"
ip -n "$LAN" link set lo up
ip -n "$BOOTNS" link set lo up
ip -n "$LAN" link add br0 type bridge
ip -n "$LAN" addr add 192.168.77.1/24 dev br0
ip -n "$LAN" link set br0 up
ip -n "$LAN" tuntap add dev tap0 mode tap
ip -n "$LAN" link set tap0 master br0 up
ip -n "$LAN" link add vboot type veth peer name boot0 netns "$BOOTNS"
ip -n "$LAN" link set vboot master br0 up
ip -n "$BOOTNS" addr add 192.168.77.2/24 dev boot0
ip -n "$BOOTNS" link set boot0 up

cat >"$tmp/site.conf" <<CONF
port=0
interface=br0
bind-interfaces
dhcp-range=192.168.77.100,192.168.77.150,255.255.255.0,1h
dhcp-leasefile=$tmp/site.leases
log-dhcp
CONF
ip netns exec "$LAN" dnsmasq --conf-file="$tmp/site.conf" --pid-file="$tmp/site.pid" --log-facility="$tmp/site.log" \
	|| fail "the site's dnsmasq did not start"

bash "$ROOT/image/build-netboot.sh" "$KERNEL" "$INITRD" "$tmp/netboot" >/dev/null || fail "build-netboot"

start_server() {
	ip netns exec "$BOOTNS" "$BIN" serve-boot --interface boot0 --root "$tmp/netboot" --run-dir "$tmp/run" \
		--mode unattended --menu-timeout 1 --append "ironclone.site=lab42" >"$tmp/serve.log" 2>&1 &
	serve_pid=$!
	for _ in $(seq 1 50); do
		grep -q 'serve-boot: serving' "$tmp/serve.log" && return 0
		kill -0 "$serve_pid" 2>/dev/null || { cat "$tmp/serve.log"; fail "serve-boot exited"; }
		sleep 0.2
	done
	cat "$tmp/serve.log"; fail "serve-boot did not start"
}

client() { # name firmware -> boots a client with a job disk, checks what the job saw
	local name=$1 fw=$2 seen=$3 log
	make_job_disk "$tmp/$name.img" IRONCLONE-JOB ironclone/job.sh <<'JOB'
#!/bin/sh
set -e
if [ -d /sys/firmware/efi ]; then echo efi; else echo bios; fi >"$IRONCLONE_JOB_DIR/firmware.txt"
tr ' ' '\n' </proc/cmdline | grep '^ironclone.site=' >"$IRONCLONE_JOB_DIR/site.txt"
JOB
	log="$LOGDIR/serve-boot-$name.log"
	ip netns exec "$LAN" "$RUNVM" --tap tap0 --boot-nic --firmware "$fw" --disk "$tmp/$name.img,if=virtio" \
		--timeout 200 --log "$log" || { tail -30 "$tmp/serve.log"; fail "$name: network boot/job failed (serial log: $log)"; }
	expect_in "$(disk_cat "$tmp/$name.img" firmware.txt)" "$seen" "$name: firmware"
	expect_in "$(disk_cat "$tmp/$name.img" site.txt)" "ironclone.site=lab42" "$name: serve-boot's --append"
	echo "$name: booted from serve-boot"
}

start_server
client bios bios bios
client uefi uefi efi
grep -q 'sent .*ironclone-bios.0' "$tmp/serve.log" || fail "serve-boot's log shows no BIOS image sent"
grep -q 'sent .*ironclone-uefi.efi' "$tmp/serve.log" || fail "serve-boot's log shows no UEFI image sent"
grep -q 'DHCPACK' "$tmp/site.log" || fail "the clients' addresses did not come from the site's DHCP server"
if grep -q 'DHCPACK' "$tmp/serve.log"; then fail "serve-boot handed out addresses in proxy mode"; fi

# Negative control: serve-boot stopped (SIGTERM), the same client must not boot the live system.
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=""
grep -q 'serve-boot: stopped' "$tmp/serve.log" || fail "serve-boot did not stop cleanly on SIGTERM"
[[ ! -e $tmp/run/tftp ]] || fail "serve-boot left its TFTP root behind"
make_job_disk "$tmp/none.img" IRONCLONE-JOB ironclone/job.sh <<<'true'
asked=$(grep -c 'DHCPDISCOVER' "$tmp/site.log")
if ip netns exec "$LAN" "$RUNVM" --tap tap0 --boot-nic --firmware bios --disk "$tmp/none.img,if=virtio" \
	--timeout 60 --expect 'IRONCLONE-LIVE-READY' --log "$LOGDIR/serve-boot-none.log" >/dev/null 2>&1; then
	fail "a client booted the live system with serve-boot stopped"
fi
# It must have tried to boot from the network, or not booting proves nothing.
(($(grep -c 'DHCPDISCOVER' "$tmp/site.log") > asked)) || fail "the negative control's client never asked for DHCP"
echo "PASS: serve-boot (proxy DHCP beside the site's server): SeaBIOS and OVMF clients booted; none without it"
