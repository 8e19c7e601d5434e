#!/usr/bin/env bash
# suite: all
# (`make test` skips this script to stay in CI's time budget: tests/storage_sftp*.rs cover
# SFTP on the host; `make test-all` runs it.)
# A repository on SFTP from the live system: the host runs Debian's sshd on a free port of
# 127.0.0.1 (reached by the guest as 10.0.2.2 through QEMU's user network; nothing else is
# contacted) with a test host key, a test user key for root and a system user with a
# password made for this test (removed at the end). The live system gets DHCP, puts the
# key and the server's known_hosts line under /root/.ssh, backs up a small GPT+ext4 disk
# to sftp://root@10.0.2.2:PORT/... with the key, and lists a repository of the password
# user with --sftp-password-file (ssh's askpass through ironclone's helper, in the ISO).
# A host whose key is not in known_hosts is refused with an error saying so. The host then
# runs `ironclone verify` on the directory sshd wrote and restores the image to a file:
# e2fsck -fn clean, a file's checksum matches.
# Then a person at the TUI (on the serial console, typed and read by tui-drive.py) backs
# the same disk up to a NEW repository on the server: the typed sftp:// location, the
# key file on the login screen, the server's host key (known_hosts removed first) shown
# by the fingerprint the host computes and accepted by typing yes, the new repository
# encrypted with a passphrase typed twice. The host checks that repository: encrypted
# config, verify and restore with the passphrase, e2fsck, the file's checksum, and that
# the passphrase is nowhere in the serial log.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
[[ -f "$ROOT/build/initramfs.img" ]] || fail "build/initramfs.img missing (make iso)"
BIN="$ROOT/target/x86_64-unknown-linux-musl/release/ironclone"
[[ -x "$BIN" ]] || fail "$BIN missing (make build)"
for t in sfdisk e2fsck mkfs.ext4 sha256sum ssh-keygen useradd chpasswd userdel /usr/sbin/sshd; do
	command -v "$t" >/dev/null || fail "$t missing (run scripts/setup.sh)"
done
tmp="$(mktemp -d)"
chmod 711 "$tmp"
spid=""
user="icsftp$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cleanup() {
	if [[ -n "$spid" ]]; then kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; fi
	userdel "$user" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/files" "$tmp/job" "$tmp/pwhome"
head -c 2M /dev/urandom >"$tmp/files/blob.bin"
echo "hello over SFTP" >"$tmp/files/hello.txt"
truncate -s 48M "$tmp/src.img"
printf 'label: gpt\nstart=2048, type=L\n' | sfdisk -q "$tmp/src.img" || fail "sfdisk"
mkfs.ext4 -q -F -E offset=1048576 -d "$tmp/files" "$tmp/src.img" 45056k || fail "mkfs.ext4 -d"

ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/job/user_key"
cp "$tmp/job/user_key.pub" "$tmp/authorized_keys"
port=$((20000 + RANDOM % 20000))
mkdir -p /run/sshd
cat >"$tmp/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $tmp/host_key
AuthorizedKeysFile $tmp/authorized_keys
PidFile $tmp/sshd.pid
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -D -e -f "$tmp/sshd_config" 2>"$tmp/sshd.log" &
spid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { cat "$tmp/sshd.log" >&2; fail "sshd did not start"; }
# The guest names the server 10.0.2.2: that is the name its known_hosts line carries.
echo "[10.0.2.2]:$port $(cat "$tmp/host_key.pub")" >"$tmp/job/known_hosts"

# The password user's repository, made on the host (one small image), owned by the user.
pw="pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
useradd --system --no-create-home --shell /bin/sh --home-dir "$tmp/pwhome" "$user" || fail "useradd"
printf '%s:%s\n' "$user" "$pw" | chpasswd || fail "chpasswd"
printf '%s\n' "$pw" >"$tmp/job/pw"
head -c 1M /dev/urandom >"$tmp/small.img"
"$BIN" backup "$tmp/small.img" "$tmp/pwhome/repo" --name hostimg >/dev/null 2>&1 || fail "host backup for the password user"
chown -R "$user:" "$tmp/pwhome"

cat >"$tmp/job/job.sh" <<JOB
#!/bin/sh
set -u
i=0
until ip -4 addr show | grep -q 'inet 10\.0\.2\.'; do
	i=\$((i + 1)); [ "\$i" -lt 80 ] || { echo "job: no DHCP address"; exit 21; }
	sleep 0.5
done
mkdir -p /root/.ssh && chmod 700 /root/.ssh
cp "\$IRONCLONE_JOB_DIR/user_key" /root/.ssh/id_sftp && chmod 600 /root/.ssh/id_sftp
repo="sftp://root@10.0.2.2:$port$tmp/repo"
if ironclone images "\$repo" --sftp-key /root/.ssh/id_sftp 2>/tmp/unknown.err; then
	echo "job: an unknown host key was accepted"; exit 22
fi
echo "SFTP-UNKNOWN: \$(tr '\n' ' ' </tmp/unknown.err)"
cp "\$IRONCLONE_JOB_DIR/known_hosts" /root/.ssh/known_hosts
ironclone backup /dev/vdb "\$repo" --name sftpimg --sftp-key /root/.ssh/id_sftp </dev/null || exit 23
ironclone images "sftp://$user@10.0.2.2:$port$tmp/pwhome/repo" --sftp-password-file "\$IRONCLONE_JOB_DIR/pw" >/tmp/pw.out 2>&1 || { cat /tmp/pw.out; exit 24; }
echo "SFTP-PASSWORD: \$(tr '\n' ' ' </tmp/pw.out)"
# The TUI meets the server as new: its host key is shown and accepted there.
rm -f /root/.ssh/known_hosts
dmesg -n 1 2>/dev/null
stty rows 25 cols 80 </dev/ttyS0 2>/dev/null
TERM=linux HOME=/root ironclone </dev/ttyS0 >/dev/ttyS0 2>/tmp/tui.err
echo
echo "SFTP-TUI-RC: \$? \$(tail -n 3 /tmp/tui.err | tr '\n' ' ')"
echo "SFTP-JOB-DONE"
JOB
truncate -s 64M "$tmp/job.img"
mkfs.ext4 -q -F -L ICSFTP -d "$tmp/job" "$tmp/job.img" || fail "mkfs.ext4 -d for the job disk"

# What the person at the TUI types (the backup screen's default image name erased).
pass="tui sftp passphrase $RANDOM$RANDOM"
fpr=$(ssh-keygen -lf "$tmp/host_key.pub" | awk '{print $2}')
sock="$tmp/serial.sock"
erase=$(printf '{Backspace}%.0s' $(seq 80))
trepo="sftp://root@10.0.2.2:$port$tmp/tuirepo"
tui_drive_bg "$tmp/drive.out" "$tmp/qemu.pid" --timeout 120 --fail-on "Something went wrong" "$sock" \
	'wait What do you want to do?' 'keys b' \
	'wait which disk to back up?' 'select SFTPSRC {Down}' 'keys {Enter}' \
	'wait where to store the image?' 'keys /' 'wait Path:' "keys $trepo{Enter}" \
	'wait Connect to an SFTP server' 'keys /root/.ssh/id_sftp{Enter}' \
	"wait Trust this SFTP server? && $fpr" 'keys yes{Enter}' \
	'wait a new repository && Encrypt it?' 'keys {Enter}' \
	"wait the new repository's passphrase" "keys $pass{Enter}$pass{Enter}" \
	'wait name the image' "keys ${erase}tuisftp{Enter}" \
	'wait check and start && SFTPSRC && ENCRYPTED' 'keys {Enter}' \
	'wait Image "tuisftp" stored in && every chunk read back' 'keys {Enter}'

log="$LOGDIR/live-sftp.log"
start=$(date +%s)
"$RUNVM" --timeout 300 --log "$log" --nic virtio-net-pci \
	--serial-sock "$sock" --pidfile "$tmp/qemu.pid" \
	--append " ironclone.job=LABEL=ICSFTP:job.sh" \
	--disk "$tmp/job.img,if=virtio,serial=JOB" \
	--disk "$tmp/src.img,if=virtio,serial=SFTPSRC,readonly" ||
	{
		wait "$TUI_DRIVE" || true
		tail -n 20 "$tmp/sshd.log" >&2
		fail "SFTP job failed (serial log: $log)"
	}
echo "boot+DHCP+SFTP backup+password login+TUI backup took $(($(date +%s) - start)) s"
wait "$TUI_DRIVE"
[[ ! -e "$tmp/drive.out.failed" ]] || { cat "$tmp/drive.out"; fail "the TUI was not driven to its end (tui-drive.py's output above)"; }
expect_in "$(grep -a '^SFTP-TUI-RC:' "$log")" 'SFTP-TUI-RC: 0' "the TUI's exit"
! grep -aqF -- "$pass" "$log" || fail "the passphrase typed at the TUI is in the serial log"
grep -aq '^SFTP-JOB-DONE' "$log" || fail "job did not reach its end (serial log: $log)"
expect_in "$(grep -a '^SFTP-UNKNOWN:' "$log")" 'host key is not trusted' "unknown host key error"
expect_in "$(grep -a '^SFTP-PASSWORD:' "$log")" 'hostimg' "password login listing"
grep -q "Accepted password for $user" "$tmp/sshd.log" || fail "sshd saw no password login for $user"
grep -q "Accepted publickey for root" "$tmp/sshd.log" || fail "sshd saw no key login for root"
! grep -aqF -- "$pw" "$log" || fail "the password is in the serial log"

"$BIN" verify "$tmp/repo" >"$tmp/verify.out" 2>&1 || { cat "$tmp/verify.out" >&2; fail "ironclone verify on the repository sshd wrote"; }
truncate -s 48M "$tmp/restored.img"
"$BIN" restore "$tmp/repo" sftpimg "$tmp/restored.img" --yes >"$tmp/restore.out" 2>&1 ||
	{ cat "$tmp/restore.out" >&2; fail "restore from the repository sshd wrote"; }
dd if="$tmp/restored.img" of="$tmp/p1" bs=1M skip=1 status=none
e2fsck -fn "$tmp/p1" >"$tmp/fsck.out" 2>&1 || { cat "$tmp/fsck.out" >&2; fail "e2fsck -fn on the restored partition"; }
[[ "$(disk_cat "$tmp/p1" blob.bin | sha256sum)" == "$(sha256sum <"$tmp/files/blob.bin")" ]] || fail "restored blob.bin differs"
grep -q '"encryption": {' "$tmp/tuirepo/config" || fail "the TUI's new repository is not encrypted"
IRONCLONE_PASSWORD="$pass" "$BIN" verify "$tmp/tuirepo" >"$tmp/verify.out" 2>&1 ||
	{ cat "$tmp/verify.out" >&2; fail "ironclone verify on the TUI's encrypted repository"; }
! IRONCLONE_PASSWORD="not $pass" "$BIN" images "$tmp/tuirepo" >/dev/null 2>&1 || fail "a wrong passphrase opened the TUI's repository"
IRONCLONE_PASSWORD="$pass" "$BIN" restore "$tmp/tuirepo" tuisftp "$tmp/restored.img" --yes >"$tmp/restore.out" 2>&1 ||
	{ cat "$tmp/restore.out" >&2; fail "restore from the TUI's encrypted repository"; }
dd if="$tmp/restored.img" of="$tmp/p1" bs=1M skip=1 status=none
e2fsck -fn "$tmp/p1" >"$tmp/fsck.out" 2>&1 || { cat "$tmp/fsck.out" >&2; fail "e2fsck -fn on the partition restored from the TUI's repository"; }
[[ "$(disk_cat "$tmp/p1" blob.bin | sha256sum)" == "$(sha256sum <"$tmp/files/blob.bin")" ]] || fail "blob.bin restored from the TUI's repository differs"
echo "PASS: live SFTP: DHCP, unknown host key refused, key backup to sftp://root@10.0.2.2; password login listed the user's images; host verify ok, restore fsck clean, file matches; through the TUI: host key accepted by its fingerprint, a new encrypted repository on the server, verify/restore with the passphrase, fsck clean, file matches, the passphrase not in the log"
