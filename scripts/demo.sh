#!/usr/bin/env bash
# `make demo`: the main job end to end, on disk images.
#  1. build a "dead machine": an MBR disk that boots Linux with GRUB in the post-MBR
#     gap, ext4 /boot, an NTFS data partition and a logical partition; boot it once;
#  2. back it up (used blocks only) into a repository, list and verify it;
#  3. restore it onto a replacement disk 1.5x the size and onto one 0.6x the size;
#  4. boot both restored disks under QEMU and print a summary.
# `make demo` (scripts/demo-live.sh) runs the same through the live ISO; this is `make demo-files`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${IRONCLONE:-$ROOT/target/x86_64-unknown-linux-musl/release/ironclone}"
D="$ROOT/build/demo"
rm -rf "$D"; mkdir -p "$D"
MARK="IRONCLONE-MACHINE-OK mbr-bios"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now() { date +%s.%N; }
el() { python3 -c "print(f'{$(now) - $1:.1f}')"; }
declare -A R

say "1. the dead machine (MBR, BIOS, GRUB in the gap, ext4 + NTFS + logical)"
bash "$ROOT/qemu/machines/mk-mbr-bios.sh" "$D/dead.img"
bash "$ROOT/qemu/boot-disk.sh" "$D/dead.img" --firmware bios --marker "$MARK" --timeout 120 \
  --log "$D/boot-dead.log" --snapshot && R[dead]=boots || R[dead]="DOES NOT BOOT"
"$BIN" inspect "$D/dead.img"

say "2. backup"
t=$(now)
"$BIN" backup "$D/dead.img" "$D/repo" --name demo-first
R[backup_s]=$(el "$t")
"$BIN" backup "$D/dead.img" "$D/repo" --name demo-second >/dev/null
"$BIN" images "$D/repo"
"$BIN" verify "$D/repo"
src_size=$(stat -c %s "$D/dead.img")

for f in 1.5 0.6; do
  tgt="$D/restored-$f.img"
  say "3. restore onto a disk ${f}x the size"
  truncate -s "$(python3 -c "print(int($src_size * $f) // 1048576 * 1048576)")" "$tgt"
  "$BIN" restore "$D/repo" demo-first "$tgt" --dry-run
  t=$(now)
  "$BIN" restore "$D/repo" demo-first "$tgt" --yes
  R[restore_$f]=$(el "$t")
  "$BIN" inspect "$tgt"
  sgdisk -v "$tgt" >/dev/null 2>&1 || true
  say "4. boot the ${f}x disk"
  if bash "$ROOT/qemu/boot-disk.sh" "$tgt" --firmware bios --marker "$MARK" --timeout 120 \
      --log "$D/boot-$f.log"; then R[boot_$f]=boots; else R[boot_$f]="DOES NOT BOOT (log $D/boot-$f.log)"; fi
done

say "summary"
printf '%-28s %s\n' "source disk" "$(numfmt --to=iec "$src_size") (${R[dead]})"
printf '%-28s %s\n' "repository size (2 images)" "$(du -sh --apparent-size "$D/repo" | cut -f1)"
printf '%-28s %s s\n' "backup time" "${R[backup_s]}"
for f in 1.5 0.6; do
  printf '%-28s %s s, %s\n' "restore ${f}x" "${R[restore_$f]}" "${R[boot_$f]}"
done
[[ ${R[boot_1.5]} == boots && ${R[boot_0.6]} == boots ]]
