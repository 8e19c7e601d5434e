#!/usr/bin/env bash
# Writes small disks partitioned by the real tools into the corpus dir $1: a GPT with both
# copies (sgdisk), a hybrid MBR over a GPT (sgdisk -h), an MBR with an extended partition
# and a chain of logicals (sfdisk, so the EBRs are real), and a GPT on 4096-byte sectors
# (fdisk -b 4096). The table target reads each on 512 and 4096-byte sectors.
set -euo pipefail
out=$1
mkdir -p "$out"
run() { # tool args...: fails loudly with the tool's stderr
  local log
  log=$("$@" 2>&1) || { echo "$log" >&2; echo "seeds/table.sh: $* failed" >&2; exit 1; }
}
new() { # name size: an empty disk at $out/name.tmp unless the seed exists
  [[ -s $out/$1 ]] && return 1
  rm -f "$out/$1.tmp"
  truncate -s "$2" "$out/$1.tmp"
}
if new seed-gpt 1M; then
  run sgdisk -n 1:34:+100K -t 1:ef00 -c 1:esp -n 2:0:+200K -t 2:8300 -n 3:0:0 -t 3:0700 "$out/seed-gpt.tmp"
  mv "$out/seed-gpt.tmp" "$out/seed-gpt"
fi
if new seed-hybrid 1M; then
  run sgdisk -n 1:34:+100K -t 1:ef02 -n 2:0:+300K -t 2:0700 -n 3:0:0 -t 3:8300 -h 2:3 "$out/seed-hybrid.tmp"
  mv "$out/seed-hybrid.tmp" "$out/seed-hybrid"
fi
if new seed-mbr-logicals 1M; then
  printf '%s\n' 'label: dos' 'start=1, size=200, type=83, bootable' 'start=201, size=1800, type=5' \
    'start=203, size=300, type=83' 'start=505, size=300, type=7' 'start=807, size=300, type=82' |
    run sfdisk -q "$out/seed-mbr-logicals.tmp"
  mv "$out/seed-mbr-logicals.tmp" "$out/seed-mbr-logicals"
fi
# Debian 12's sfdisk has no --sector-size; fdisk -b takes its commands on stdin.
if new seed-gpt-4k 1M; then
  printf '%s\n' g n 1 '' +64K t 1 n 2 '' '' w | run fdisk -b 4096 "$out/seed-gpt-4k.tmp"
  mv "$out/seed-gpt-4k.tmp" "$out/seed-gpt-4k"
fi
