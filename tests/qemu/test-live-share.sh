#!/usr/bin/env bash
# A repository on a network share, end to end: the live system (kernel+initramfs, SeaBIOS,
# one boot) gets an address by DHCP on a virtio NIC, mounts QEMU's built-in SMB server
# (//10.0.2.4/qemu, a host directory served by the host's smbd) with `ironclone share mount`,
# backs up a small GPT+ext4 disk into a repository on the share and unmounts it. A wrong
# share name must fail with an error naming that share. A second server (the host's smbd at
# 10.0.2.5, run-vm --smbd-conf) has a share that needs a login whose password holds commas
# and a space: it mounts with --password-file and with $IRONCLONE_SHARE_PASSWORD, a wrong
# password is refused with a clear error, and the password shows nowhere (errors, mounts).
# The host then judges the repository directly in the shared directory: `ironclone verify`
# passes, a restore of the image to a file gives a partition that e2fsck -fn calls clean and
# whose files have the source's checksums, and the source disk is unchanged.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
[[ -f "$ROOT/build/initramfs.img" ]] || fail "build/initramfs.img missing (make iso)"
BIN="$ROOT/target/x86_64-unknown-linux-musl/release/ironclone"
[[ -x "$BIN" ]] || fail "$BIN missing (make build)"
for t in sfdisk e2fsck mkfs.ext4 sha256sum smbd smbpasswd; do
	command -v "$t" >/dev/null || [[ -x "/usr/sbin/$t" ]] || fail "$t missing (run scripts/setup.sh)"
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Source: GPT, one partition at 1 MiB holding ext4 built from a directory.
mkdir -p "$tmp/files/docs"
head -c 3M /dev/urandom >"$tmp/files/blob.bin"
seq 1 20000 >"$tmp/files/docs/numbers.txt"
echo "hello from the share test" >"$tmp/files/hello.txt"
truncate -s 64M "$tmp/src.img"
printf 'label: gpt\nstart=2048, size=120832, type=L, name=data\n' | sfdisk -q "$tmp/src.img" || fail "sfdisk"
mkfs.ext4 -q -F -L SHARESRC -E offset=1048576 -d "$tmp/files" "$tmp/src.img" 60416k || fail "mkfs.ext4 -d"
src_sum="$(sha256sum <"$tmp/src.img")"

mkdir -p "$tmp/share"
make_job_disk "$tmp/job.img" ICSHARE job.sh <<'JOB'
#!/bin/sh
set -u
by_serial() {
	ironclone disks --json </dev/null | awk -v s="$1" '
		/"path":/ { p = $2 }
		/"serial":/ { v = $2; gsub(/[",]/, "", v); if (v == s) { gsub(/[",]/, "", p); print p; exit } }'
}
echo "job: share mount"
ironclone share mount //10.0.2.4/qemu /mnt/share --net-wait 40 || { cat /run/ironclone/net/log; dmesg | tail -n 20; exit 21; }
echo "job: network: $(cat /run/ironclone/net/log | tr '\n' ';')"
grep ' cifs ' /proc/mounts
if ironclone share mount //10.0.2.4/qemu /mnt/share 2>/tmp/twice.err; then echo "job: mounted twice"; exit 34; fi
echo "SHARE-TWICE: $(cat /tmp/twice.err)"
src="$(by_serial SHARESRC)"
[ -n "$src" ] || { echo "job: no source disk"; exit 22; }
echo "job: backup $src"
ironclone backup "$src" /mnt/share/repo --name netimg </dev/null || exit 23
ironclone images /mnt/share/repo </dev/null || exit 24
ironclone share umount /mnt/share || exit 25
grep -q ' cifs ' /proc/mounts && { echo "job: share still mounted"; exit 26; }
echo "job: wrong share"
if ironclone share mount //10.0.2.4/nosuchshare /mnt/bad --net-wait 5 2>/tmp/bad.err; then
	echo "job: a wrong share name mounted"; exit 27
fi
echo "SHARE-NEGATIVE: $(cat /tmp/bad.err)"
echo "job: login share"
printf 'se,cr,et pw\n' >/tmp/pw
ironclone share mount //10.0.2.5/locked /mnt/locked --user root --password-file /tmp/pw --net-wait 5 || exit 28
echo "written with a password" >/mnt/locked/from-guest.txt || exit 29
grep -c 'se,cr' /proc/mounts | sed 's/^/SHARE-PW-IN-MOUNTS: /'
ironclone share umount /mnt/locked || exit 30
IRONCLONE_SHARE_PASSWORD='se,cr,et pw' ironclone share mount '\\10.0.2.5\locked' /mnt/locked --user root --vers 3.0 --net-wait 5 || exit 31
ironclone share umount /mnt/locked || exit 32
printf 'wrong,pw\n' >/tmp/badpw
if ironclone share mount //10.0.2.5/locked /mnt/locked --user root --password-file /tmp/badpw 2>/tmp/badpw.err; then
	echo "job: a wrong password mounted"; exit 33
fi
echo "SHARE-BADPW: $(cat /tmp/badpw.err)"
echo "SHARE-JOB-DONE"
JOB

# The login server: its own smbd config and smbpasswd (user root, password with commas).
mkdir -p "$tmp/smbd/locked"
cat >"$tmp/smbd/smb.conf" <<CONF
[global]
private dir=$tmp/smbd
interfaces=127.0.0.1
bind interfaces only=yes
pid directory=$tmp/smbd
lock directory=$tmp/smbd
state directory=$tmp/smbd
cache directory=$tmp/smbd
ncalrpc dir=$tmp/smbd/ncalrpc
log file=$tmp/smbd/log.smbd
passdb backend=smbpasswd:$tmp/smbd/smbpasswd
security=user
map to guest=Never
load printers=no
printing=bsd
disable spoolss=yes
usershare max shares=0
[locked]
path=$tmp/smbd/locked
read only=no
guest ok=no
valid users=root
force user=root
CONF
printf 'se,cr,et pw\nse,cr,et pw\n' | smbpasswd -c "$tmp/smbd/smb.conf" -s -a root >/dev/null 2>&1 ||
	fail "smbpasswd for the login share"

log="$LOGDIR/live-share.log"
start=$(date +%s)
"$RUNVM" --timeout 150 --log "$log" --smb "$tmp/share" --smbd-conf "$tmp/smbd/smb.conf" \
	--append " ironclone.job=LABEL=ICSHARE:job.sh" \
	--disk "$tmp/job.img,if=virtio,serial=JOB" \
	--disk "$tmp/src.img,if=virtio,serial=SHARESRC,readonly" ||
	fail "share job failed (serial log: $log)"
echo "boot+DHCP+mount+backup+negative took $(($(date +%s) - start)) s"
grep -aq '^SHARE-JOB-DONE' "$log" || fail "job did not reach its end (serial log: $log)"
neg="$(grep -a '^SHARE-NEGATIVE:' "$log")"
expect_in "$neg" 'no share named "nosuchshare"' "wrong share error"
expect_in "$neg" '10.0.2.4' "wrong share error names the server"
[[ "$(sha256sum <"$tmp/src.img")" == "$src_sum" ]] || fail "the source disk changed"
expect_in "$(grep -a '^SHARE-TWICE:' "$log")" 'already mounted there' "second mount on the same mount point"
badpw="$(grep -a '^SHARE-BADPW:' "$log")"
expect_in "$badpw" 'refused the login for share "locked"' "wrong password error"
grep -a '^SHARE-PW-IN-MOUNTS: 0' "$log" >/dev/null || fail "the password shows in /proc/mounts"
if grep -aq 'se,cr\|wrong,pw' <(grep -av 'printf\|PASSWORD=' "$log"); then fail "a password leaked to the console"; fi
[[ "$(cat "$tmp/smbd/locked/from-guest.txt" 2>/dev/null)" == "written with a password" ]] ||
	fail "the file written on the login share is not on the host"

# The host reads the repository the guest wrote through SMB.
[[ -d "$tmp/share/repo" ]] || fail "no repository in the shared directory"
"$BIN" verify "$tmp/share/repo" >"$tmp/verify.out" 2>&1 || { cat "$tmp/verify.out" >&2; fail "ironclone verify on the share's repository"; }
truncate -s 64M "$tmp/restored.img"
"$BIN" restore "$tmp/share/repo" netimg "$tmp/restored.img" --yes >"$tmp/restore.out" 2>&1 ||
	{ cat "$tmp/restore.out" >&2; fail "restore from the share's repository"; }
read -r pstart psize < <(sfdisk --json "$tmp/restored.img" | python3 -c '
import json, sys
p = json.load(sys.stdin)["partitiontable"]["partitions"][0]; print(p["start"], p["size"])')
dd if="$tmp/restored.img" of="$tmp/p1" bs=512 skip="$pstart" count="$psize" conv=sparse status=none
e2fsck -fn "$tmp/p1" >"$tmp/fsck.out" 2>&1 || { cat "$tmp/fsck.out" >&2; fail "e2fsck -fn on the restored partition"; }
for f in blob.bin docs/numbers.txt hello.txt; do
	[[ "$(disk_cat "$tmp/p1" "$f" | sha256sum)" == "$(sha256sum <"$tmp/files/$f")" ]] || fail "restored $f differs from the source"
done
echo "PASS: live share: DHCP, SMB mount, backup onto //10.0.2.4/qemu; host verify ok, restore fsck clean, files match; wrong share named in the error; login share with a comma password (file and env), wrong password refused, no password leak"
