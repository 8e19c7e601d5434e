#!/usr/bin/env bash
# Writes an LVM2 PV made by lvm2 (pvcreate, vgcreate, then LVs added by vgcfgrestore
# from edited metadata, as the host has no device-mapper for lvcreate) with an ext4
# and a swap LV inside, and its metadata text, into the corpus dir $1. Needs root
# (a loop device), as `make fuzz` has.
set -euo pipefail
# lvm2 warns of every inherited descriptor; the harness has a few.
export LVM_SUPPRESS_FD_WARNINGS=1
out=$1
mkdir -p "$out"
[[ -s $out/seed-pv && -s $out/seed-text ]] && exit 0
t=$(mktemp -d)
lo=
cleanup() { [[ -n $lo ]] && losetup -d "$lo"; rm -rf "$t"; }
trap cleanup EXIT
# 6 MiB: the 1 MiB label and metadata area, then five 1 MiB extents.
truncate -s 6M "$t/pv"
lo=$(losetup -f --show "$t/pv")
cfg="devices { filter = [ \"a|^$lo\$|\", \"r|.*|\" ] } backup { backup = 0 archive = 0 }"
lvm pvcreate --config "$cfg" -q -ff -y "$lo" >/dev/null
lvm vgcreate --config "$cfg" -q -s 1m icfuzzvg "$lo" >/dev/null
lvm vgcfgbackup --config "$cfg" -q -f "$t/vg" icfuzzvg >/dev/null
python3 - "$t/vg" >"$t/vg2" <<'PY'
import sys
s = open(sys.argv[1]).read()
lvs = """logical_volumes {
root { id = "rootLV-aaaa-bbbb-cccc-dddd-eeee-ffffff" status = ["READ", "WRITE", "VISIBLE"]
segment_count = 2
segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 1 stripes = ["pv0", 2] }
segment2 { start_extent = 2 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 0] }
}
swap { id = "swapLV-aaaa-bbbb-cccc-dddd-eeee-ffffff" status = ["READ", "WRITE", "VISIBLE"]
segment_count = 1
segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 4] }
}
}
"""
end = s.rindex("}")
print(s[:end] + lvs + s[end:])
PY
lvm vgcfgrestore --config "$cfg" -q -f "$t/vg2" icfuzzvg >/dev/null 2>&1
losetup -d "$lo"
lo=
truncate -s 3M "$t/root"
mkfs.ext4 -q -F -b 1024 "$t/root"
dd if="$t/root" of="$t/pv" bs=1M count=2 seek=3 conv=notrunc status=none
dd if="$t/root" of="$t/pv" bs=1M skip=2 count=1 seek=1 conv=notrunc status=none
truncate -s 1M "$t/swap"
mkswap "$t/swap" >/dev/null 2>&1
dd if="$t/swap" of="$t/pv" bs=1M seek=5 conv=notrunc status=none
cp "$t/vg2" "$out/seed-text"
mv "$t/pv" "$out/seed-pv"
