#!/usr/bin/env bash
# Clonezilla images as a source (issue 21), on the bench's 4 GiB ext4 and NTFS fixtures
# (scripts/bench-fixtures.sh), each as the one partition of a GPT disk:
# - restore: `ironclone restore DIR IMAGE TARGET` (checks every checksum first, then
#   plans, writes, verifies) against Clonezilla's own pipeline `zstd -d | partclone.<fs>
#   -r` (and `ntfsclone -r` for NTFS) into the same partition of a same-size disk file;
#   also with `--no-verify` (still checked first, but what was written is not read back,
#   as partclone does not);
# - import: `ironclone import` of the folder against `ironclone backup` of the disk;
# - verify: `ironclone verify DIR IMAGE` (checksum lists and every image decoded, nothing
#   written) against `zstd -d | partclone.chkimg` (partclone's own image check).
# The folder is made the way ocs-sr makes it: partclone image through `zstd`, the
# sfdisk dump, the saved GPT head and tail. Fastest of BENCH_REPEAT runs.
# BENCH_FIXTURES=DIR takes the fixtures from DIR (another tree's build/bench) as they are.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${IRONCLONE:-$ROOT/target/x86_64-unknown-linux-musl/release/ironclone}"
B="${BENCH_FIXTURES:-$ROOT/build/bench}"
W="$(mktemp -d "${TMPDIR:-/tmp}/ironclone-bench-cz.XXXXXX")"
trap 'rm -rf "$W"' EXIT
[[ -n "${BENCH_FIXTURES:-}" ]] || bash "$ROOT/scripts/bench-fixtures.sh" >/dev/null
REPEAT="${BENCH_REPEAT:-3}"
ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }
row() { printf '%-46s %10s %14s\n' "$@"; }
declare -A T S C
run() { # run KEY CMD...: the fastest seconds in T[KEY], that run's CPU seconds (user + system) in C[KEY]
  local key=$1; shift
  sync
  /usr/bin/time -f '%e %U %S' -o "$W/time" "$@"
  local t u s; read -r t u s <"$W/time"
  if [[ -z "${T[$key]:-}" ]] || python3 -c "import sys; sys.exit(0 if $t < ${T[$key]} else 1)"; then
    T[$key]=$t
    C[$key]=$(python3 -c "print(f'{$u + $s:.2f}')")
  fi
}

START=2048
DISK_BYTES=$(((START + 34) * 512 + (4 << 30) + 1024 * 1024))
# make_folder FS: build/bench/FS.img as sda1 of a GPT disk, saved like ocs-sr savedisk.
make_folder() {
  local fs=$1 disk="$W/$1-disk.img" img="$W/partimag/$1-img"
  truncate -s "$DISK_BYTES" "$disk"
  sgdisk -Z -n "1:$START:+4G" -t 1:0700 "$disk" >/dev/null
  dd if="$B/$fs.img" of="$disk" bs=4M seek=$((START * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
  mkdir -p "$img"
  local tool=partclone.extfs; [[ $fs == ntfs ]] && tool=partclone.ntfs
  "$tool" -q -c -s "$B/$fs.img" -o - 2>/dev/null | zstd -T0 -q -3 > "$img/sda1.$fs-ptcl-img.zst"
  sfdisk -d "$disk" | sed "s#$disk#/dev/sda#" > "$img/sda-pt.sf"
  local sectors=$((DISK_BYTES / 512))
  dd if="$disk" of="$img/sda-mbr" bs=512 count=1 status=none
  dd if="$disk" of="$img/sda-gpt-1st" bs=512 count=34 status=none
  dd if="$disk" of="$img/sda-gpt-2nd" bs=512 skip=$((sectors - 33)) count=33 status=none
  echo sda > "$img/disk"; echo sda1 > "$img/parts"
  printf 'Disk /dev/sda: %ss\nPartition Table: gpt\n' "$sectors" > "$img/sda-pt.parted"
  printf '### Image created time: 2026-1201-0000\n' > "$img/clonezilla-img"
}

for fs in ext4 ntfs; do cat "$B/$fs.img" >/dev/null; make_folder "$fs"; done
for _ in $(seq "$REPEAT"); do
  for fs in ext4 ntfs; do
    img="$W/partimag/$fs-img"
    z="$img/sda1.$fs-ptcl-img.zst"
    tool=partclone.extfs; [[ $fs == ntfs ]] && tool=partclone.ntfs
    # Clonezilla's restore of the partition: into a partition-sized file.
    truncate -s 4G "$W/part.out"
    run "pc_$fs" sh -c "zstd -d -q -c '$z' | $tool -r -s - -O '$W/part.out' >/dev/null 2>&1"
    rm -f "$W/part.out"
    truncate -s "$DISK_BYTES" "$W/disk.out"
    run "ic_$fs" "$BIN" restore "$W/partimag" "$fs-img" "$W/disk.out" --yes --scratch "$W" >/dev/null 2>&1
    rm -f "$W/disk.out"
    truncate -s "$DISK_BYTES" "$W/disk.out"
    run "icn_$fs" "$BIN" restore "$W/partimag" "$fs-img" "$W/disk.out" --yes --no-verify --scratch "$W" >/dev/null 2>&1
    rm -f "$W/disk.out"
    run "ck_$fs" sh -c "zstd -d -q -c '$z' | partclone.chkimg -s - >/dev/null 2>&1"
    run "icv_$fs" "$BIN" verify "$W/partimag" "$fs-img" >/dev/null 2>&1
    rm -rf "$W/repo-i.$fs" "$W/repo-b.$fs"
    run "imp_$fs" "$BIN" import "$W/partimag" "$fs-img" "$W/repo-i.$fs" --scratch "$W" >/dev/null 2>&1
    run "bk_$fs" "$BIN" backup "$W/$fs-disk.img" "$W/repo-b.$fs" >/dev/null 2>&1
    # The decode an import does on top of a backup's work (one thread: one zstd frame).
    run "zd_$fs" sh -c "zstd -d -q -c '$z' >/dev/null"
    # browse: the first call unpacks the partition into the cache, the second reads it
    rm -rf "$W/cache"
    run "br1_$fs" "$BIN" browse "$W/partimag" "$fs-img" p1 ls / --cache "$W/cache" >/dev/null 2>&1
    run "br2_$fs" "$BIN" browse "$W/partimag" "$fs-img" p1 ls / --cache "$W/cache" >/dev/null 2>&1
    # allocated bytes: the cache file is sparse, its apparent size is the partition's
    S[cache_$fs]=$(du -s --block-size=1 "$W/cache" | cut -f1)
  done
done

echo
echo "Clonezilla images (4 GiB fs, ~1.5 GiB used, zstd partclone image); fastest of $REPEAT"
row "job" "seconds" "ratio"
for fs in ext4 ntfs; do
  tool=partclone.extfs; [[ $fs == ntfs ]] && tool=partclone.ntfs
  row "$fs restore: zstd -d | $tool -r" "${T[pc_$fs]}" ""
  row "$fs restore: ironclone restore (folder)" "${T[ic_$fs]}" "$(ratio "${T[pc_$fs]}" "${T[ic_$fs]}") faster"
  row "$fs restore: same, --no-verify (no read-back)" "${T[icn_$fs]}" "$(ratio "${T[pc_$fs]}" "${T[icn_$fs]}") faster"
  row "$fs verify: zstd -d | partclone.chkimg" "${T[ck_$fs]}" ""
  row "$fs verify: ironclone verify (folder)" "${T[icv_$fs]}" "$(ratio "${T[ck_$fs]}" "${T[icv_$fs]}") faster"
  row "$fs import into a repository" "${T[imp_$fs]}" "${C[imp_$fs]} cpu s"
  row "$fs backup of the same disk" "${T[bk_$fs]}" "$(ratio "${T[bk_$fs]}" "${T[imp_$fs]}") import speed"
  row "$fs backup: cpu seconds" "${C[bk_$fs]}" ""
  row "$fs zstd -d of the partclone image alone" "${T[zd_$fs]}" "${C[zd_$fs]} cpu s"
  # An import does a backup's hashing and compression after decoding the image: its
  # plan (used blocks, and the files' runs that steer dedup) needs metadata from the
  # whole partition, which one zstd frame yields only in order, on one thread. So at
  # best it takes the decode's time plus the backup's.
  row "$fs import speed bound (decode, then backup)" "" "$(python3 -c "print(f'{${T[bk_$fs]} / (${T[zd_$fs]} + ${T[bk_$fs]}):.2f}x')")"
  row "$fs browse ls /: first (unpacks)" "${T[br1_$fs]}" "$(( ${S[cache_$fs]} / 1048576 )) MiB cache"
  row "$fs browse ls /: later (cached)" "${T[br2_$fs]}" ""
done
