#!/usr/bin/env bash
# suite: all
# (`make test` skips this script to stay in CI's time budget: test-live-share covers DHCP, a
# network repository and its errors in the live system; `make test-all` runs it.)
# A repository on an NFSv4 export, end to end: the host runs a user-space NFS server
# (nfs-ganesha, VFS backend, NFSv4 only, on a free port of 127.0.0.1, reached by the guest as
# 10.0.2.2 through QEMU's user network); the live system gets DHCP, mounts the export with
# `ironclone share mount 10.0.2.2:/export`, backs up a small GPT+ext4 disk into it and
# unmounts. The host then runs `ironclone verify` on the exported directory and restores the
# image to a file: e2fsck -fn clean, a file's checksum matches. A wrong export path fails
# with an error naming it.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
[[ -f "$ROOT/build/initramfs.img" ]] || fail "build/initramfs.img missing (make iso)"
BIN="$ROOT/target/x86_64-unknown-linux-musl/release/ironclone"
[[ -x "$BIN" ]] || fail "$BIN missing (make build)"
for t in sfdisk e2fsck mkfs.ext4 sha256sum ganesha.nfsd; do
	command -v "$t" >/dev/null || fail "$t missing (run scripts/setup.sh)"
done
tmp="$(mktemp -d)"
gpid=""
cleanup() {
	if [[ -n "$gpid" ]]; then kill "$gpid" 2>/dev/null || true; wait "$gpid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/files" "$tmp/export"
head -c 2M /dev/urandom >"$tmp/files/blob.bin"
echo "hello over NFS" >"$tmp/files/hello.txt"
truncate -s 48M "$tmp/src.img"
printf 'label: gpt\nstart=2048, type=L\n' | sfdisk -q "$tmp/src.img" || fail "sfdisk"
mkfs.ext4 -q -F -E offset=1048576 -d "$tmp/files" "$tmp/src.img" 45056k || fail "mkfs.ext4 -d"

port=$((20000 + RANDOM % 20000))
cat >"$tmp/ganesha.conf" <<CONF
NFS_CORE_PARAM { NFS_Port = $port; Protocols = 4; Bind_addr = 127.0.0.1; Enable_NLM = false; Enable_RQUOTA = false; }
NFSV4 { Graceless = true; Lease_Lifetime = 10; }
NFS_KRB5 { Active_krb5 = false; }
EXPORT { Export_Id = 1; Path = $tmp/export; Pseudo = /export; Access_Type = RW; Squash = No_Root_Squash; SecType = sys; Protocols = 4; Transports = TCP; FSAL { Name = VFS; } }
CONF
ganesha.nfsd -F -f "$tmp/ganesha.conf" -L "$tmp/ganesha.log" -p "$tmp/ganesha.pid" -N NIV_EVENT &
gpid=$!
for _ in $(seq 50); do grep -q 'NFS SERVER INITIALIZED' "$tmp/ganesha.log" 2>/dev/null && break; sleep 0.2; done
grep -q 'NFS SERVER INITIALIZED' "$tmp/ganesha.log" || { cat "$tmp/ganesha.log" >&2; fail "nfs-ganesha did not start"; }

make_job_disk "$tmp/job.img" ICNFS job.sh <<JOB
#!/bin/sh
set -u
ironclone share mount 10.0.2.2:/export /mnt/nfs --port $port --net-wait 40 || { dmesg | tail -n 15; exit 21; }
grep ' nfs4 ' /proc/mounts
ironclone backup /dev/vdb /mnt/nfs/repo --name nfsimg </dev/null || exit 23
ironclone share umount /mnt/nfs || exit 25
if ironclone share mount 10.0.2.2:/nosuchexport /mnt/bad --port $port --net-wait 5 2>/tmp/bad.err; then
	echo "job: a wrong export mounted"; exit 27
fi
echo "NFS-NEGATIVE: \$(cat /tmp/bad.err)"
echo "NFS-JOB-DONE"
JOB

log="$LOGDIR/live-nfs.log"
start=$(date +%s)
"$RUNVM" --timeout 150 --log "$log" --nic virtio-net-pci \
	--append " ironclone.job=LABEL=ICNFS:job.sh" \
	--disk "$tmp/job.img,if=virtio,serial=JOB" \
	--disk "$tmp/src.img,if=virtio,serial=NFSSRC,readonly" ||
	fail "NFS job failed (serial log: $log; server log: kept below)" 
echo "boot+DHCP+NFS mount+backup+negative took $(($(date +%s) - start)) s"
grep -aq '^NFS-JOB-DONE' "$log" || fail "job did not reach its end (serial log: $log)"
expect_in "$(grep -a '^NFS-NEGATIVE:' "$log")" '/nosuchexport' "wrong export error"

"$BIN" verify "$tmp/export/repo" >"$tmp/verify.out" 2>&1 || { cat "$tmp/verify.out" >&2; fail "ironclone verify on the export's repository"; }
truncate -s 48M "$tmp/restored.img"
"$BIN" restore "$tmp/export/repo" nfsimg "$tmp/restored.img" --yes >"$tmp/restore.out" 2>&1 ||
	{ cat "$tmp/restore.out" >&2; fail "restore from the export's repository"; }
dd if="$tmp/restored.img" of="$tmp/p1" bs=1M skip=1 status=none
e2fsck -fn "$tmp/p1" >"$tmp/fsck.out" 2>&1 || { cat "$tmp/fsck.out" >&2; fail "e2fsck -fn on the restored partition"; }
[[ "$(disk_cat "$tmp/p1" blob.bin | sha256sum)" == "$(sha256sum <"$tmp/files/blob.bin")" ]] || fail "restored blob.bin differs"
echo "PASS: live NFS: DHCP, NFSv4 mount, backup onto 10.0.2.2:/export; host verify ok, restore fsck clean, file matches; wrong export named in the error"
