#!/usr/bin/env bash
# suite: all
# Scheduled backup on an installed Debian 12 whose init is systemd (issue 23: "the timer
# fires"). test-schedule-rescue.sh covers the same rescue-entry path in CI with a shell
# script standing in for the init; this one proves the parts only systemd can: the units
# `schedule init` writes and starts with systemctl, the timer firing on its calendar, the
# service's `schedule run` setting BootNext and rebooting through `systemctl reboot`.
# The machine is qemu/machines/mk-systemd-os.sh's (debootstrap once, cached in build/cache/),
# with a second disk for the repository. One QEMU process under OVMF, three boots:
#  1. Debian: its first-boot unit runs `schedule init --calendar minutely` (the timer's
#     drop-in sets RandomizedDelaySec=0, the "shortened calendar") and `rescue install`;
#     within a minute systemd starts ironclone-backup.service, whose `schedule run` finds
#     the root mounted read-write, sets BootNext and reboots;
#  2. OVMF boots the rescue entry: the live system images the disk and reboots;
#  3. Debian again: a unit ordered before the timer prints `schedule status` and the first
#     boot's journal of the service, then powers off.
# On the host: the repository verifies, and the image restored to a file passes e2fsck -fn
# with the OS's marker file intact.
# Takes about 6-8 min under TCG (plus a few minutes of debootstrap the first time), hence
# `suite: all`. Negative control: SYSTEMD_BREAK=timer moves the timer's calendar to 2099;
# the first boot powers off after waiting, and the test must FAIL.
# SYSTEMD_FIRMWARE=bios (test-schedule-systemd-bios.sh) is the same on a BIOS machine
# (mk-systemd-os.sh --bios: MBR, SeaBIOS, Debian's own GRUB i386-pc): `rescue install
# --boot /boot` runs the OS's real update-grub, the timer's run sets grubenv's next_entry
# (grub-reboot), GRUB boots the rescue entry once and clears it; a unit stopped at each
# shutdown prints grubenv, so the test sees next_entry set as the OS went down and
# cleared when it came back.
# Under SeaBIOS each boot is a QEMU process of its own (sched_boot_bios): in one process
# across the reboot, TCG's translations of the installed system's code made the rescue
# kernel's decompression take minutes to hours. 188 s for the three boots and the host's
# checks, measured at a load of 4-10 (plus about 2 min of debootstrap the first time).
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
source "$(dirname "$0")/lib-schedule.sh"
BUILD="${IRONCLONE_BUILD:-$ROOT/build}"
BIN="${IRONCLONE_BIN:-$ROOT/target/x86_64-unknown-linux-musl/release/ironclone}"
INITRD="$BUILD/initramfs.img"
[[ -f "$INITRD" ]] || fail "$INITRD missing (make iso)"
[[ -x "$BIN" ]] || fail "$BIN missing (make build)"
FW=${SYSTEMD_FIRMWARE:-uefi}
ROOT_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e002a
REPO_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e002b
case $FW in
	uefi)
		OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
		[[ -f $OVMF_CODE && -f $OVMF_VARS ]] || fail "OVMF missing (scripts/setup.sh)"
		NAME=test-schedule-systemd MK_ARGS=() ROOT_PART=2 HOW="BootNext=Boot"
		;;
	bios)
		# Its own UUIDs: the two machines' images may sit side by side in a repository.
		ROOT_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e003a REPO_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e003b
		NAME=test-schedule-systemd-bios MK_ARGS=(--bios) ROOT_PART=1 HOW="grub-reboot ironclone-rescue"
		;;
	*) fail "SYSTEMD_FIRMWARE is uefi or bios" ;;
esac

tmp="$(mktemp -d)"
mnt=""
cleanup() {
	[[ -n $mnt ]] && umount "$mnt" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
t0=$SECONDS

bash "$ROOT/qemu/machines/mk-systemd-os.sh" "${MK_ARGS[@]}" "$tmp/os.img" "$BIN" "$INITRD" "$ROOT_UUID" "$REPO_UUID" ||
	fail "building the installed system failed"
sched_repo_disk 1G "$REPO_UUID" "${NAME#test-}"
echo "machine built in $((SECONDS - t0)) s; booting (log: $log)"
if [[ $FW == uefi ]]; then
	cp "$OVMF_VARS" "$tmp/vars.fd"
	sched_boot_uefi 1200 1536
else
	# One QEMU process per boot (see sched_boot_bios): about 3 min for the three at a load
	# of 4-10; the limit leaves room for a host at a load of 20.
	sched_boot_bios 2400 1536
fi
echo "QEMU ran $((SECONDS - t0)) s"
out="$(tr -d '\r' <"$log")"

fails=0
check "systemd booted the installed system" "IRONCLONE-OS: first boot, systemd"
check "schedule init succeeded under systemd" "IRONCLONE-OS: schedule init rc=0"
check "rescue install succeeded" "IRONCLONE-OS: rescue install rc=0"
check "schedule init enabled and started the timer" "IRONCLONE-OS: timer enabled active"
check "the timer's service asked for the rescue entry ($HOW)" "rescue run requested ($HOW"
if [[ $FW == bios ]]; then
	check "the OS's update-grub put the rescue entry in a grub.cfg honouring next_entry" \
		"IRONCLONE-OS: grub.cfg: 2 entries, rescue 1, next_entry"
	check "grubenv held next_entry as the OS went down for the rescue boot" \
		"IRONCLONE-OS: grubenv at shutdown: [next_entry=ironclone-rescue]" 1
	# BOOT_IMAGE= (GRUB's): `rescue install` prints the same command line without it.
	check "GRUB booted the rescue entry (the live kernel's command line)" \
		"BOOT_IMAGE=/boot/ironclone/vmlinuz ironclone.run=schedule+run+--rescue+$ROOT_UUID"
	check "GRUB cleared next_entry itself (save_env): the next boot is Debian's" "IRONCLONE-OS: grubenv after: [next_entry=]"
	if grep -qF "GRUB left next_entry" <<<"$out"; then
		echo "FAIL: the rescue run had to clear next_entry (GRUB's save_env did not)"; fails=$((fails + 1)); fi
fi
check "the firmware booted the rescue entry, which ran the backup" "unattended: ironclone schedule run --rescue $ROOT_UUID"
check "the rescue run imaged the disk" "(rescue): read"
check "the rescue run ended ok" "IRONCLONE-RESULT: ok rc=0"
check "the installed system booted again" "IRONCLONE-OS: booted again"
check "its state records the rescue run as ok, nothing pending" "IRONCLONE-OS-STATUS rc=0 pending=0 rescue=1"
check "the first boot's journal has the timer-started service's run" "IRONCLONE-OS-JOURNAL: rescue run requested"
if grep -qF "scheduled run failed" <<<"$out"; then
	echo "FAIL: a scheduled run failed: $(grep -F "scheduled run failed" <<<"$out" | head -n1)"; fails=$((fails + 1))
else echo "PASS: no scheduled run failed"; fi
n_first=$(grep -c "IRONCLONE-OS: first boot" <<<"$out" || true)
if [[ $n_first == 1 ]]; then echo "PASS: one first boot (no boot loop)"; else
	echo "FAIL: $n_first first boots"; fails=$((fails + 1)); fi

# The repository on the host: verify, restore, e2fsck, the marker file.
mnt="$tmp/repo-mnt"
mkdir -p "$mnt"
if mount -o ro,loop "$tmp/repo.img" "$mnt" 2>/dev/null && [[ -d $mnt/repo ]]; then
	img=$("$BIN" images "$mnt/repo" --json | sed -n 's/.*"name": *"\(installed-os-[^"]*\)".*/\1/p' | head -n1)
	if [[ -n $img ]]; then
		echo "PASS: the repository holds $img"
		if "$BIN" verify "$mnt/repo" >"$tmp/verify.out" 2>&1; then echo "PASS: ironclone verify"; else
			sed 's/^/  | /' "$tmp/verify.out"; echo "FAIL: ironclone verify"; fails=$((fails + 1)); fi
		if sched_restored_root "$mnt/repo" "$img" "$ROOT_PART" "$tmp/rootfs.img"; then
			sched_check_root "$tmp/rootfs.img" "the restored root" /etc/os-marker "$tmp/os.img.marker"
		else
			echo "FAIL: ironclone restore"; fails=$((fails + 1))
		fi
	else
		echo "FAIL: no installed-os-* image in the repository"; fails=$((fails + 1))
	fi
	umount "$mnt"
else
	echo "FAIL: no repository on the repository disk"; fails=$((fails + 1))
fi
# Mounted but without a repository (a failed run): unmounted here too.
mountpoint -q "$mnt" && umount "$mnt"
mnt=""
echo "total $((SECONDS - t0)) s"
if ((fails > 0)); then
	tail -n 60 "$log" | sed 's/^/  | /'
	echo "FAIL: $NAME ($fails checks failed)"
	exit 1
fi
echo "PASS: $NAME"
