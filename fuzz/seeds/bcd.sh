#!/usr/bin/env bash
# Writes Windows BCD stores made by hivexsh (libhivex-bin) into the corpus dir $1: the
# boot manager's and a loader's device elements naming MBR partitions of disk 0x1234abcd
# (the signature fuzz_targets/bcd.rs asks for), plus a string element, as in
# tests/restore_windows_mbr.rs. hivex cannot create a hive from nothing, so the empty hive
# (base block, one bin with the root key and its security cell; the bytes that test writes)
# comes from the dump below and hivexsh adds everything else.
set -euo pipefail
out=$1
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The device element (REG_BINARY) naming the MBR partition at byte $1 of disk 0x1234abcd.
element() {
  local d i
  d=$(printf '%032x' 0)                            # no additional-options object
  d+=06000000000000004800000000000000             # partition device, descriptor length 0x48
  for i in 0 1 2 3 4 5 6 7; do d+=$(printf '%02x' $((($1 >> (8 * i)) & 255))); done
  d+=$(printf '%024x' 0)01000000cdab3412          # MBR style, disk signature (LE)
  d+=$(printf '%056x' 0)
  printf 'hex:3:%s' "$(sed 's/../&,/g; s/,$//' <<<"$d")"
}
bcd() { # name objects...: each object gets device elements 11000001 and 21000001
  local name=$1 obj log script="add Objects
cd Objects
" off=$((1 << 20))
  shift
  [[ -s $out/$name ]] && return 0
  rm -f "$tmp/hive"
  truncate -s 8192 "$tmp/hive"
  xxd -r "$tmp/empty.hex" "$tmp/hive"
  for obj in "$@"; do
    script+="add $obj
cd $obj
add Elements
cd Elements
add 11000001
cd 11000001
setval 1
Element
$(element "$off")
cd ..
add 21000001
cd 21000001
setval 1
Element
$(element $((off + (100 << 20))))
cd ..
add 12000004
cd 12000004
setval 1
Element
string:Windows
cd ..
cd ..
cd ..
"
    off=$((off + (300 << 20)))
  done
  log=$(hivexsh -w "$tmp/hive" <<<"${script}commit" 2>&1) || { echo "$log" >&2; echo "seeds/bcd.sh: hivexsh failed" >&2; exit 1; }
  mv "$tmp/hive" "$out/$name"
}
# xxd dump of the empty hive; the lines not given are zeros.
cat >"$tmp/empty.hex" <<'HEX'
00000000: 7265 6766 0100 0000 0100 0000 0000 0000
00000010: 0000 0000 0100 0000 0300 0000 0000 0000
00000020: 0100 0000 2000 0000 0010 0000 0100 0000
000001f0: 0000 0000 0000 0000 0000 0000 5075 6766
00001000: 6862 696e 0000 0000 0010 0000 0000 0000
00001020: a8ff ffff 6e6b 2c00 0000 0000 0000 0000
00001030: 0000 0000 ffff ffff 0000 0000 0000 0000
00001040: ffff ffff ffff ffff 0000 0000 ffff ffff
00001050: 7800 0000 ffff ffff 0000 0000 0000 0000
00001060: 0000 0000 0000 0000 0000 0000 0400 0000
00001070: 524f 4f54 0000 0000 d0ff ffff 736b 0000
00001080: 7800 0000 7800 0000 0100 0000 1400 0000
00001090: 0100 0480 0000 0000 0000 0000 0000 0000
000010a0: 0000 0000 0000 0000 580f 0000 0000 0000
HEX
bcd seed-bcd-bootmgr '{9dea862c-5cdd-4e70-acc1-f32b344d4795}'
bcd seed-bcd-two '{9dea862c-5cdd-4e70-acc1-f32b344d4795}' '{b2721d73-1db4-4c62-bf78-c548a880142d}'
