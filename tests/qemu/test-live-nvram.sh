#!/usr/bin/env bash
# The UEFI NVRAM repair inside a real restore (issue 6: "write a Boot#### entry ... and put it
# first in BootOrder; remove entries that point to partitions that no longer exist").
#   host   the gpt-uefi-nvram machine (loader only at \EFI\ironclone\grubx64.efi, booted through
#          an NVRAM entry the firmware itself wrote with `bcfg`) is backed up into a repository
#          on an ext4 disk labelled IRONCLONE-JOB.
#   boot 1 the live ISO under OVMF (fresh VARS). Before the restore the job puts into NVRAM,
#          through efivarfs, the old machine's entry byte for byte as its firmware wrote it
#          (taken from the source VARS) and a short-form entry for an ESP on a second disk
#          of the machine, both first in BootOrder. Then it restores the image with
#          --new-ids onto a 1.5x disk, NVRAM repair on (the default): the old entry names a
#          partition GUID that no longer exists and must go, the second disk's must stay,
#          a new one must come first. `efi-list` runs before and after; the repair lines
#          are on serial.
#   host   the VARS file as the firmware left it, read by an independent parser
#          (ovmf-vars.py): the stale entry is gone, the new entry is first in BootOrder and
#          names the target's ESP (number, start, size, GUID as sgdisk reads them), the
#          second disk's entry is still there. The fallback loader the restore also wrote
#          is deleted, so the disk can only boot through NVRAM.
#   boot 2 the restored disk alone, with those VARS: OVMF starts the restore's entry and the
#          machine prints its marker.
#   boot 3 negative control: the same disk with fresh VARS must not boot.
# The same live boot then does it for an MBR disk (UEFI boots an MBR disk whose ESP has
# type 0xEF; its entries are HD(N,MBR,<disk signature at 0x1B8>,start,size)): an
# mbr-uefi-nvram machine built here (loader only at \EFI\ironclone\grubx64.efi) is
# backed up on the host; after the GPT restore the job seeds the old MBR machine's entry
# and one for an MBR disk of the machine, and restores with --new-ids (a new signature)
# and --no-fallback onto TARGET2. The host checks that the stale MBR entry is gone, the
# other MBR disk's and the GPT restore's entries are kept, the new one names TARGET2's
# signature/start/size (sfdisk), and that no \EFI\BOOT\BOOTX64.EFI was written.
#   boot 4 TARGET2 alone with those VARS prints its marker (OVMF starts HD(1,MBR,...)).
#   boot 5 negative control: TARGET2 with fresh VARS must not boot.
# The machine's own build boots OVMF once more (its UEFI shell writes the source entry).
# About 2-2.5 min on a quiet 2-core machine.
set -euo pipefail
source "$(dirname "$0")/lib-live.sh"
ISO="${IRONCLONE_ISO:-$ROOT/build/ironclone.iso}"
BIN="${IRONCLONE_STATIC:-$ROOT/target/x86_64-unknown-linux-musl/release/ironclone}"
BOOT="$ROOT/qemu/boot-disk.sh"
VARSLS="$(dirname "$0")/ovmf-vars.py"
[[ -f "$ISO" ]] || fail "$ISO missing (make iso)"
[[ -x "$BIN" ]] || fail "$BIN missing (make build)"
for t in python3 sgdisk mdir mdel; do
	command -v "$t" >/dev/null || fail "$t missing (run scripts/setup.sh)"
done
# The host backs up with the binary the ISO was built from, so both read the same repository format.
[[ "$ISO" -nt "$BIN" ]] || fail "$BIN is newer than $ISO (make iso)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
total_start=$SECONDS

bash "$ROOT/qemu/machines/mk-gpt-uefi-nvram.sh" "$tmp/src.img" "$tmp/src-vars.fd" >/dev/null || fail "mk-gpt-uefi-nvram.sh"
SRC_ESP_GUID=1c0ec1a5-0003-4000-8000-000000000001
python3 "$VARSLS" "$tmp/src-vars.fd" >"$tmp/vars-before.json" || fail "ovmf-vars.py on the source VARS"
python3 - "$tmp/vars-before.json" "$SRC_ESP_GUID" <<'EOF' || fail "the source VARS have no firmware-written entry for the source ESP"
import json, sys
v = json.load(open(sys.argv[1]))
assert any(e.get("partition_guid") == sys.argv[2] for e in v["entries"]), v
EOF

mkdir -p "$tmp/jobfs/ironclone"
"$BIN" backup "$tmp/src.img" "$tmp/jobfs/repo" --name nvram >"$tmp/backup.log" 2>&1 ||
	{ cat "$tmp/backup.log" >&2; fail "host backup of the gpt-uefi-nvram machine"; }
# The old machine's NVRAM entry, byte for byte as its firmware wrote it. It cannot simply be
# left in the VARS: with QEMU's bootindex list OVMF prunes PciRoot() entries it was not told
# about at every start, so the live system puts it back through efivarfs (plain cat, as
# Linux documents) before the restore, first in BootOrder (efibootmgr).
old_num="$(python3 - "$tmp/vars-before.json" "$SRC_ESP_GUID" <<'EOF2'
import json, sys
v = json.load(open(sys.argv[1]))
print(next(e["number"] for e in v["entries"] if e.get("partition_guid") == sys.argv[2]))
EOF2
)"
python3 "$VARSLS" "$tmp/src-vars.fd" --efivarfs "Boot$old_num" "$tmp/jobfs/ironclone/old-entry.var" >/dev/null ||
	fail "extracting Boot$old_num from the source VARS"
# A second disk of the machine with its own ESP, and a short-form HD() entry for it (as
# efibootmgr writes them; encoded here in python): not stale, the restore must keep it.
OTHER_GUID=1c0ec1a5-0777-4000-8000-000000000001
truncate -s 8M "$tmp/other.img"
sgdisk -o -n 1:2048:0 -t 1:EF00 -u "1:$OTHER_GUID" "$tmp/other.img" >/dev/null || fail "sgdisk other.img"
python3 - "$OTHER_GUID" "$tmp/jobfs/ironclone/other-entry.var" <<'EOF2' || fail "encoding the other disk's entry"
import struct, sys, uuid
def ucs2(s): return (s + "\0").encode("utf-16-le")
hd = struct.pack("<BBHIQQ16sBB", 4, 1, 42, 1, 2048, 14336, uuid.UUID(sys.argv[1]).bytes_le, 2, 2)
f = ucs2("\\EFI\\other\\grubx64.efi")
path = hd + struct.pack("<BBH", 4, 4, 4 + len(f)) + f + bytes([0x7F, 0xFF, 4, 0])
opt = struct.pack("<IH", 1, len(path)) + ucs2("other disk") + path
open(sys.argv[2], "wb").write(struct.pack("<I", 7) + opt)
EOF2

# The MBR UEFI machine: p1 a 64 MiB FAT32 ESP (type 0xEF) holding the loader only at the
# distribution path, p2 the ext4 root; disk signature 0x1c0ec1a5.
source "$ROOT/qemu/machines/lib.sh"
MBR_SIG=1c0ec1a5 MBR_ROOT_UUID=6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e0004
truncate -s 192M "$tmp/mbr.img"
printf 'label: dos\nlabel-id: 0x%s\n2048,131072,ef\n133120,,83\n' "$MBR_SIG" | sfdisk -q "$tmp/mbr.img" ||
	fail "sfdisk mbr.img"
m_boot_fs "$tmp/mbr-root.ext4" $(((393216 - 133120) / 2048)) "$MBR_ROOT_UUID" mbr-uefi-nvram
m_place "$tmp/mbr.img" "$tmp/mbr-root.ext4" 133120
m_efi_img "$tmp/mbr-grubx64.efi" "$MBR_ROOT_UUID"
m_esp "$tmp/mbr-esp.fat" 64 2048 "$tmp/mbr-grubx64.efi" ::/EFI/ironclone/grubx64.efi
m_place "$tmp/mbr.img" "$tmp/mbr-esp.fat" 2048
rm -f "$tmp/mbr-root.ext4" "$tmp/mbr-esp.fat"
"$BIN" backup "$tmp/mbr.img" "$tmp/jobfs/repo" --name nvram-mbr >"$tmp/backup-mbr.log" 2>&1 ||
	{ cat "$tmp/backup-mbr.log" >&2; fail "host backup of the mbr-uefi-nvram machine"; }
# An MBR disk of the machine with its own ESP (signature 0x0777beef).
OTHER_MBR_SIG=0777beef
truncate -s 8M "$tmp/other-mbr.img"
printf 'label: dos\nlabel-id: 0x%s\n2048,,ef\n' "$OTHER_MBR_SIG" | sfdisk -q "$tmp/other-mbr.img" || fail "sfdisk other-mbr.img"
# Short-form MBR entries as efibootmgr writes them (UEFI spec 10.3.5.1: signature type 1,
# MBR type 1, the u32 signature then 12 zero bytes): the old machine's ESP, which the
# restore with --new-ids leaves on no disk, and the other MBR disk's.
python3 - "$tmp/jobfs/ironclone" "$MBR_SIG" "$OTHER_MBR_SIG" <<'EOF2' || fail "encoding the MBR entries"
import struct, sys
def ucs2(s): return (s + "\0").encode("utf-16-le")
def entry(out, desc, sig, start, size, path):
    hd = struct.pack("<BBHIQQI12xBB", 4, 1, 42, 1, start, size, int(sig, 16), 1, 1)
    f = ucs2(path)
    dp = hd + struct.pack("<BBH", 4, 4, 4 + len(f)) + f + bytes([0x7F, 0xFF, 4, 0])
    opt = struct.pack("<IH", 1, len(dp)) + ucs2(desc) + dp
    open(f"{sys.argv[1]}/{out}", "wb").write(struct.pack("<I", 7) + opt)
entry("old-mbr-entry.var", "old mbr machine", sys.argv[2], 2048, 131072, "\\EFI\\ironclone\\grubx64.efi")
entry("other-mbr-entry.var", "other mbr disk", sys.argv[3], 2048, 14336, "\\EFI\\other\\grubx64.efi")
EOF2

STALE=0100 OTHER=0101 STALE_MBR=0102 OTHER_MBR=0103
cp "$ROOT/qemu/jobs/steps.sh" "$tmp/jobfs/ironclone/steps.sh"
# Two rounds of steps.sh: the MBR entries are seeded only after the GPT restore, whose
# cleanup would rightly remove the old MBR machine's entry (its disk is nowhere).
cat >"$tmp/jobfs/ironclone/job.sh" <<JOB
#!/bin/sh
V=/sys/firmware/efi/efivars
G=8be4df61-93ca-11d2-aa0d-00e098032b8c
J="\$IRONCLONE_JOB_DIR/ironclone"
cat "\$J/old-entry.var" >"\$V/Boot$STALE-\$G" || exit 30
cat "\$J/other-entry.var" >"\$V/Boot$OTHER-\$G" || exit 30
efibootmgr -o "$STALE,$OTHER,\$(efibootmgr | sed -n 's/^BootOrder: //p')" || exit 31
sh "\$J/steps.sh" || exit \$?
cat "\$J/old-mbr-entry.var" >"\$V/Boot$STALE_MBR-\$G" || exit 32
cat "\$J/other-mbr-entry.var" >"\$V/Boot$OTHER_MBR-\$G" || exit 32
efibootmgr -o "$STALE_MBR,$OTHER_MBR,\$(efibootmgr | sed -n 's/^BootOrder: //p')" || exit 33
cp "\$J/plan-mbr" "\$J/plan" || exit 34
exec sh "\$J/steps.sh"
JOB
cat >"$tmp/jobfs/ironclone/plan" <<'PLAN'
efi-list
restore nvram TARGET1 --new-ids
efi-list
PLAN
cat >"$tmp/jobfs/ironclone/plan-mbr" <<'PLAN'
efi-list
restore nvram-mbr TARGET2 --new-ids --no-fallback
efi-list
PLAN
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$tmp/vars.fd"
truncate -s 128M "$tmp/repo.img"
mkfs.ext4 -q -F -L IRONCLONE-JOB -d "$tmp/jobfs" "$tmp/repo.img" || fail "mkfs.ext4 repo"
src_size=$(stat -c %s "$tmp/src.img")
truncate -s $((src_size * 3 / 2 / 1048576 * 1048576)) "$tmp/target.img"
truncate -s 288M "$tmp/target-mbr.img"

# Boot 1: the live ISO (GRUB picks the unattended entry: IRONCLONE-JOB is present).
log="$LOGDIR/live-nvram-restore.log"
start=$SECONDS
"$RUNVM" --iso "$ISO" --boot usb --firmware uefi --vars "$tmp/vars.fd" --timeout 300 --log "$log" \
	--disk "$tmp/repo.img,if=virtio,serial=REPO" \
	--disk "$tmp/target.img,if=virtio,serial=TARGET1" \
	--disk "$tmp/other.img,if=virtio,serial=OTHER,readonly" \
	--disk "$tmp/target-mbr.img,if=virtio,serial=TARGET2" \
	--disk "$tmp/other-mbr.img,if=virtio,serial=OTHERMBR,readonly" ||
	fail "live restore under OVMF failed (serial log: $log)"
echo "boot 1 (live ISO, OVMF, restore with NVRAM repair): $((SECONDS - start)) s"
grep -aq 'UEFI boot, efivarfs mounted' "$log" || fail "the live system did not mount efivarfs ($log)"
[[ $(grep -ac 'job: plan done' "$log") == 2 ]] || fail "job did not reach the end of both rounds ($log)"
# The restores' reports as the job printed them on the serial console (also in results/ on the disk).
result="$(grep -a '"event":"result"' "$log" | tr -d '\r' | sed -n 1p)"
[[ "$result" == "$(disk_cat "$tmp/repo.img" results/restore-TARGET1.json)" ]] ||
	fail "the restore result on serial differs from results/restore-TARGET1.json ($log)"
mbr_result="$(grep -a '"event":"result"' "$log" | tr -d '\r' | sed -n 2p)"
[[ "$mbr_result" == "$(disk_cat "$tmp/repo.img" results/restore-TARGET2.json)" ]] ||
	fail "the MBR restore result on serial differs from results/restore-TARGET2.json ($log)"
expect_in "$result" 'NVRAM: Boot' "restore result: NVRAM repair line"
expect_in "$result" 'put first in BootOrder' "restore result: BootOrder"
grep -aq "^Boot$STALE\* ironclone" "$log" || fail "efi-list in the VM did not show the seeded old entry Boot$STALE ($log)"
grep -aq "^Boot$OTHER\* other disk" "$log" || fail "efi-list in the VM did not show the other disk's entry Boot$OTHER ($log)"
expect_in "$result" "removed stale Boot$STALE" "restore result: stale entry removed"
expect_in "$result" "1 stale entry removed" "restore result: only the stale entry removed"
expect_in "$result" "HD(1,GPT,${SRC_ESP_GUID^^}" "restore result: the removed entry is the source ESP's"
expect_in "$result" 'fallback loader \\EFI\\BOOT\\BOOTX64.EFI copied from' "restore result: fallback loader"

# The target as sgdisk reads it: a new ESP GUID (--new-ids), its start and size.
info="$(sgdisk -i 1 "$tmp/target.img")"
esp_guid="$(sed -n 's/^Partition unique GUID: //p' <<<"$info" | tr 'A-F' 'a-f')"
esp_start="$(sed -n 's/^First sector: \([0-9]*\).*/\1/p' <<<"$info")"
esp_last="$(sed -n 's/^Last sector: \([0-9]*\).*/\1/p' <<<"$info")"
[[ -n "$esp_guid" && -n "$esp_start" && -n "$esp_last" ]] || fail "sgdisk -i 1 on the target: $info"
[[ "$esp_guid" != "$SRC_ESP_GUID" ]] || fail "the target ESP kept the source GUID despite --new-ids"

# The VARS as the firmware left them, read without ironclone.
python3 "$VARSLS" "$tmp/vars.fd" >"$tmp/vars-after.json" || fail "ovmf-vars.py on the VARS after the restore"
new_entry="$(python3 - "$tmp/vars-after.json" "$SRC_ESP_GUID" "$esp_guid" "$esp_start" "$((esp_last - esp_start + 1))" "$OTHER_GUID" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
old, guid, start, size, other = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
def die(msg):
    sys.exit(f"{msg}\n{json.dumps(v, indent=1)}")
if any(e.get("partition_guid") == old for e in v["entries"]):
    die(f"an entry for the old ESP {old} is still in NVRAM")
if not any(e.get("partition_guid") == other for e in v["entries"]):
    die(f"the entry for the other disk's ESP {other} was removed")
new = [e for e in v["entries"] if e.get("partition_guid") == guid]
if len(new) != 1:
    die(f"want exactly one entry for the new ESP {guid}, found {len(new)}")
e = new[0]
# The MBR round ran after this restore and put its entries in front: apart from those,
# this entry is first.
mbr = {x["number"] for x in v["entries"] if "mbr_signature" in x}
order = [n for n in v["boot_order"] if n not in mbr]
if not order or order[0] != e["number"]:
    die(f"Boot{e['number']} is not first in BootOrder (MBR entries aside)")
if (e["partition_number"], e["start"], e["size"]) != (1, start, size) or not e["active"]:
    die(f"Boot{e['number']} names HD({e['partition_number']},{e['start']},{e['size']}), want HD(1,{start},{size}), active")
if e["file"] != "\\EFI\\ironclone\\grubx64.efi":
    die(f"Boot{e['number']} loads {e['file']}")
print(e["number"], e["description"])
EOF
)" || fail "NVRAM after the restore (serial log: $log)"
read -r new_num new_desc <<<"$new_entry"
echo "NVRAM after the restore: Boot$new_num \"$new_desc\" -> HD(1,GPT,$esp_guid,$esp_start,...); old entry gone, other disk's entry kept"

# The MBR restore: its report, the target as sfdisk reads it, and the VARS.
expect_in "$mbr_result" "removed stale Boot$STALE_MBR" "MBR restore: stale entry removed"
expect_in "$mbr_result" "HD(1,MBR,0x$MBR_SIG,0x800,0x20000): that partition no longer exists" "MBR restore: the removed entry is the source ESP's"
expect_in "$mbr_result" "1 stale entry removed" "MBR restore: only the stale entry removed"
expect_in "$mbr_result" 'fallback loader \\EFI\\BOOT\\BOOTX64.EFI left untouched (--no-fallback; absent)' "MBR restore: --no-fallback"
grep -aq "^Boot$STALE_MBR\* old mbr machine" "$log" || fail "efi-list in the VM did not show the seeded MBR entry Boot$STALE_MBR ($log)"
sf="$(sfdisk --json "$tmp/target-mbr.img")"
read -r mbr_sig mbr_start mbr_size <<<"$(python3 -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
p = t["partitions"][0]
print(t["id"].lower(), p["start"], p["size"])' <<<"$sf")"
[[ -n "$mbr_size" && "$mbr_sig" != "0x$MBR_SIG" ]] || fail "TARGET2 kept the signature 0x$MBR_SIG despite --new-ids: $sf"
mdir -i "$tmp/target-mbr.img@@$((mbr_start * 512))" ::/EFI/ironclone/grubx64.efi >/dev/null 2>&1 || fail "TARGET2's ESP has no loader"
if mdir -i "$tmp/target-mbr.img@@$((mbr_start * 512))" ::/EFI/BOOT/BOOTX64.EFI >/dev/null 2>&1; then
	fail "--no-fallback: the restore wrote \\EFI\\BOOT\\BOOTX64.EFI on TARGET2"
fi
mbr_num="$(python3 - "$tmp/vars-after.json" "$MBR_SIG" "$mbr_sig" "$mbr_start" "$mbr_size" "$OTHER_MBR_SIG" "$new_num" <<'EOF2'
import json, sys
v = json.load(open(sys.argv[1]))
old, sig, start, size, other, gpt_num = "0x" + sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), "0x" + sys.argv[6], sys.argv[7]
def die(msg):
    sys.exit(f"{msg}\n{json.dumps(v, indent=1)}")
if any(e.get("mbr_signature") == old for e in v["entries"]):
    die(f"an entry for the old MBR disk {old} is still in NVRAM")
if not any(e.get("mbr_signature") == other for e in v["entries"]):
    die(f"the entry for the other MBR disk {other} was removed")
if not any(e["number"] == gpt_num for e in v["entries"]):
    die(f"the GPT restore's Boot{gpt_num} was removed by the MBR restore")
new = [e for e in v["entries"] if e.get("mbr_signature") == sig]
if len(new) != 1:
    die(f"want exactly one entry for TARGET2's signature {sig}, found {len(new)}")
e = new[0]
if not v["boot_order"] or v["boot_order"][0] != e["number"]:
    die(f"Boot{e['number']} is not first in BootOrder")
if (e["partition_number"], e["start"], e["size"]) != (1, start, size) or not e["active"]:
    die(f"Boot{e['number']} names HD({e['partition_number']},{e['start']},{e['size']}), want HD(1,{start},{size}), active")
if e["file"] != "\\EFI\\ironclone\\grubx64.efi":
    die(f"Boot{e['number']} loads {e['file']}")
print(e["number"])
EOF2
)" || fail "NVRAM after the MBR restore (serial log: $log)"
echo "NVRAM after the MBR restore: Boot$mbr_num -> HD(1,MBR,$mbr_sig,$mbr_start,$mbr_size) first; old MBR entry gone, other MBR disk's and Boot$new_num kept"

# Only NVRAM may make it boot now: drop the fallback loader the restore added.
esp_off=$((esp_start * 512))
mdir -i "$tmp/target.img@@$esp_off" ::/EFI/BOOT/BOOTX64.EFI >/dev/null 2>&1 || fail "the restore did not write \\EFI\\BOOT\\BOOTX64.EFI"
mdel -i "$tmp/target.img@@$esp_off" ::/EFI/BOOT/BOOTX64.EFI || fail "mdel BOOTX64.EFI"

# Boot 2: the restored disk alone with the VARS the live system left.
MK="IRONCLONE-MACHINE-OK gpt-uefi-nvram"
blog="$LOGDIR/live-nvram-boot.log"
start=$SECONDS
bash "$BOOT" "$tmp/target.img" --firmware uefi --vars "$tmp/vars.fd" --marker "$MK" --timeout 120 \
	--log "$blog" --snapshot --fail-on 'Shell> ' || fail "the restored disk did not boot with the repaired NVRAM ($blog)"
echo "boot 2 (restored disk, repaired VARS): $((SECONDS - start)) s"
grep -aq "BdsDxe: starting Boot$new_num \"$new_desc\" from HD(1,GPT,${esp_guid^^}" "$blog" ||
	fail "OVMF did not start Boot$new_num \"$new_desc\" on HD(1,GPT,$esp_guid) ($blog)"

# Boot 3, negative control: without the entry (fresh VARS) the same disk must not boot.
nlog="$LOGDIR/live-nvram-fresh-vars.log"
start=$SECONDS
if bash "$BOOT" "$tmp/target.img" --firmware uefi --marker "$MK" --timeout 90 \
	--log "$nlog" --snapshot --fail-on 'Shell> ' >/dev/null 2>&1; then
	fail "the restored disk booted with fresh VARS and no fallback loader: the NVRAM check proves nothing ($nlog)"
fi
grep -aq 'BdsDxe' "$nlog" || fail "negative control: the firmware never tried a boot option ($nlog)"
echo "boot 3 (fresh VARS, negative control): did not boot, $((SECONDS - start)) s"

# Boot 4: TARGET2 (MBR, never given a fallback loader) alone with the VARS.
MK2="IRONCLONE-MACHINE-OK mbr-uefi-nvram"
mlog="$LOGDIR/live-nvram-mbr-boot.log"
start=$SECONDS
bash "$BOOT" "$tmp/target-mbr.img" --firmware uefi --vars "$tmp/vars.fd" --marker "$MK2" --timeout 120 \
	--log "$mlog" --snapshot --fail-on 'Shell> ' || fail "the restored MBR disk did not boot with the repaired NVRAM ($mlog)"
echo "boot 4 (restored MBR disk, repaired VARS): $((SECONDS - start)) s"
grep -aiq "BdsDxe: starting Boot$mbr_num \"ironclone restored\" from HD(1,MBR,$mbr_sig," "$mlog" ||
	fail "OVMF did not start Boot$mbr_num on HD(1,MBR,$mbr_sig) ($mlog)"

# Boot 5, negative control: TARGET2 with fresh VARS must not boot.
nlog="$LOGDIR/live-nvram-mbr-fresh-vars.log"
start=$SECONDS
if bash "$BOOT" "$tmp/target-mbr.img" --firmware uefi --marker "$MK2" --timeout 90 \
	--log "$nlog" --snapshot --fail-on 'Shell> ' >/dev/null 2>&1; then
	fail "the restored MBR disk booted with fresh VARS and no fallback loader: the MBR NVRAM check proves nothing ($nlog)"
fi
grep -aq 'BdsDxe' "$nlog" || fail "MBR negative control: the firmware never tried a boot option ($nlog)"
echo "boot 5 (MBR disk, fresh VARS, negative control): did not boot, $((SECONDS - start)) s"
echo "PASS: live restores under OVMF wrote Boot$new_num (GPT) and Boot$mbr_num (MBR, --no-fallback), removed the sources' stale entries, kept the other disks'; each disk boots through its entry alone ($((SECONDS - total_start)) s)"
