#!/usr/bin/env bash
# `make demo`: the main job end to end, THROUGH THE LIVE ISO, the way a rescuer does it.
#  1. a "dead machine" disk: MBR, GRUB in the post-MBR gap, ext4 /boot, an NTFS data
#     partition and a logical ext4 (qemu/machines/mk-mbr-bios.sh); boot it once;
#  2. boot build/ironclone.iso as a USB stick (SeaBIOS) with that disk attached read-only and
#     a repository disk labelled IRONCLONE-JOB: GRUB sees the label, boots unattended, the job
#     (qemu/jobs/steps.sh) backs the disk up (twice, to show dedup), verifies, powers off;
#  3. a "replacement machine": the ISO as a CD, the repository disk + a blank disk 1.5x the
#     size (NVMe) -> restore; again with a blank disk 0.6x the size (virtio) -> restore;
#  4. boot both restored disks, print a summary (sizes, speeds, dedup, boot results).
# Disks are picked inside the VM by serial number, never by kernel name.
# `make demo-files` (scripts/demo.sh) is the same without the ISO, with the host CLI.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ISO="${ISO:-$ROOT/build/ironclone.iso}"
D="$ROOT/build/demo-live"
MARK="IRONCLONE-MACHINE-OK mbr-bios"
for t in qemu-system-x86_64 mkfs.ext4 debugfs python3 sfdisk; do
	command -v "$t" >/dev/null || { echo "demo: $t missing (make setup)" >&2; exit 1; }
done
[[ -f "$ISO" ]] || { echo "demo: $ISO missing (make iso)" >&2; exit 1; }
rm -rf "$D"
mkdir -p "$D"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
T0=$(date +%s)
declare -A R

# set_plan TEXT: the plan the next unattended boot runs, written into the repo disk's ext4
# with debugfs (no mount needed on the host).
set_plan() {
	printf '%s\n' "$1" >"$D/plan"
	debugfs -w -R "rm /ironclone/plan" "$D/repo.img" >/dev/null 2>&1 || true
	debugfs -w -R "write $D/plan /ironclone/plan" "$D/repo.img" >/dev/null 2>&1
	[[ "$(debugfs -R "cat /ironclone/plan" "$D/repo.img" 2>/dev/null)" == "$1" ]] ||
		{ echo "demo: could not write the plan into $D/repo.img" >&2; exit 1; }
}
# live BOOT NAME DISK...: boot the ISO unattended; the job's console is in $D/live-NAME.log.
live() {
	local boot="$1" name="$2" t
	shift 2
	local args=()
	for d in "$@"; do args+=(--disk "$d"); done
	t=$(date +%s)
	if bash "$ROOT/qemu/run-vm.sh" --iso "$ISO" --boot "$boot" --firmware bios --timeout 420 \
		--log "$D/live-$name.log" "${args[@]}"; then
		R[vm_$name]=$(($(date +%s) - t))
	else
		echo "demo: the live job '$name' failed; serial log $D/live-$name.log:" >&2
		tail -n 30 "$D/live-$name.log" | tr -d '\r' >&2
		exit 1
	fi
	grep -a -E '^job: |^IRONCLONE-' "$D/live-$name.log" | cut -c1-160 | tr -d '\r'
}
result() { debugfs -R "cat /results/$1.json" "$D/repo.img" 2>/dev/null; }
bootdisk() {
	local img="$1" key="$2" t
	t=$(date +%s)
	if bash "$ROOT/qemu/boot-disk.sh" "$img" --firmware bios --marker "$MARK" --timeout 120 \
		--log "$D/boot-$key.log" "${@:3}"; then
		R[boot_$key]="boots ($(($(date +%s) - t)) s to the login marker)"
	else
		R[boot_$key]="DOES NOT BOOT (log $D/boot-$key.log)"
	fi
}

say "1. the dead machine: MBR, BIOS, GRUB in the gap, ext4 /boot + NTFS data + logical ext4"
bash "$ROOT/qemu/machines/mk-mbr-bios.sh" "$D/dead.img"
bootdisk "$D/dead.img" dead --snapshot
echo "dead machine: ${R[boot_dead]}"
src_size=$(stat -c %s "$D/dead.img")
src_sum=$(sha256sum <"$D/dead.img")

say "2. boot the live ISO as a USB stick with the dead disk (read-only) + a repository disk"
mkdir -p "$D/jobfs/ironclone"
cp "$ROOT/qemu/jobs/steps.sh" "$D/jobfs/ironclone/job.sh"
printf '# written by demo-live.sh\n' >"$D/jobfs/ironclone/plan"
truncate -s 1G "$D/repo.img"
mkfs.ext4 -q -F -L IRONCLONE-JOB -d "$D/jobfs" "$D/repo.img"
set_plan "backup DEADDISK dead-machine
backup DEADDISK dead-machine-again
verify
images"
live usb backup "$D/repo.img,if=virtio,serial=REPODISK" \
	"$D/dead.img,if=virtio,serial=DEADDISK,readonly"
[[ "$(sha256sum <"$D/dead.img")" == "$src_sum" ]] || { echo "demo: the source disk changed!" >&2; exit 1; }

for f in 1.5 0.6; do
	case $f in 1.5) serial=NEWDISK-BIG bus=nvme ;; 0.6) serial=NEWDISK-SMALL bus=virtio ;; esac
	tgt="$D/restored-$f.img"
	truncate -s "$(python3 -c "print(int($src_size * $f) // 1048576 * 1048576)")" "$tgt"
	say "3. replacement machine: the ISO as a CD, the repository + a blank $bus disk ${f}x the size"
	set_plan "restore dead-machine $serial"
	live cd "restore-$f" "$D/repo.img,if=virtio,serial=REPODISK" "$tgt,if=$bus,serial=$serial"
	sfdisk -l "$tgt" | sed -n '/^Device/,$p'
	say "4. boot the ${f}x disk"
	bootdisk "$tgt" "$f"
	echo "${f}x disk: ${R[boot_$f]}"
done

say "summary"
python3 - "$src_size" "$(stat -c %s "$D/repo.img")" "$(du -sb "$D/repo.img" | cut -f1)" \
	"$(result backup-dead-machine)" "$(result backup-dead-machine-again)" \
	"$(result restore-NEWDISK-BIG)" "$(result restore-NEWDISK-SMALL)" <<'PY'
import json, sys
size = int(sys.argv[1])
b1, b2, rb, rs = (json.loads(a) for a in sys.argv[4:8])
M = 1 << 20
def mib(n): return f"{n / M:.1f} MiB"
def speed(n, s): return f"{n / M / s:.0f} MiB/s" if s > 0 else "-"
used = sum(p["used_bytes"] for p in b1["partitions"])
st = b1["stats"]
print(f"{'dead machine disk':34} {mib(size)}, {len(b1['partitions'])} filesystems, {mib(used)} in use")
print(f"{'backup (read only used blocks)':34} read {mib(st['bytes_read'])} in {b1['seconds']:.2f} s = {speed(st['bytes_read'], b1['seconds'])} (inside TCG)")
print(f"{'  stored (zstd, new chunks)':34} {mib(st['new_stored_bytes'])} for {mib(st['new_bytes'])} new, {mib(st['zero_bytes'])} zeros skipped, {mib(st['dedup_bytes'])} deduplicated")
s2 = b2["stats"]
print(f"{'second backup of the same disk':34} {mib(s2['dedup_bytes'])} deduplicated, {mib(s2['new_stored_bytes'])} new stored")
for name, r in (("restore onto 1.5x (NVMe)", rb), ("restore onto 0.6x (virtio)", rs)):
    rep = r["report"]
    print(f"{name:34} wrote {mib(rep['bytes_written'])} in {r['seconds']:.2f} s = {speed(rep['bytes_written'], r['seconds'])}, verified {mib(rep['bytes_verified'])}")
    for s in rep["steps"]:
        print(f"{'':36}- {s}")
PY
printf '%-34s %s\n' "boot the dead machine" "${R[boot_dead]}"
printf '%-34s %s\n' "boot the 1.5x restored disk" "${R[boot_1.5]}"
printf '%-34s %s\n' "boot the 0.6x restored disk" "${R[boot_0.6]}"
printf '%-34s %s s (USB, backup), %s s (CD, restore 1.5x), %s s (CD, restore 0.6x)\n' "live ISO boots, power-on to off" \
	"${R[vm_backup]}" "${R[vm_restore-1.5]}" "${R[vm_restore-0.6]}"
printf '%-34s %s s\n' "demo total (after the build)" "$(($(date +%s) - T0))"
printf '%-34s %s\n' "serial logs" "$D/*.log"
[[ ${R[boot_1.5]} == boots* && ${R[boot_0.6]} == boots* ]]
