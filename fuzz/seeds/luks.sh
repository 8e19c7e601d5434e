#!/usr/bin/env bash
# Writes small LUKS1 and LUKS2 volumes made by `cryptsetup luksFormat` on plain files
# (no device-mapper needed) into the corpus dir $1: short key slots and a data offset
# just past them keep each seed near 1 MiB (LUKS1) and 200 KiB (LUKS2).
set -euo pipefail
out=$1
mkdir -p "$out"
key=$(mktemp)
trap 'rm -f "$key"' EXIT
printf 'fuzz seed key' >"$key"
mk() { # name size luksFormat-args...
  local name=$1 size=$2; shift 2
  [[ -s $out/$name ]] && return 0
  rm -f "$out/$name.tmp"
  truncate -s "$size" "$out/$name.tmp"
  cryptsetup luksFormat -q --key-size 256 --pbkdf-force-iterations 1000 --key-file "$key" \
    "$@" "$out/$name.tmp" >/dev/null 2>&1
  mv "$out/$name.tmp" "$out/$name"
}
mk seed-luks1 1100K --type luks1 --align-payload 8
mk seed-luks2 200K --type luks2 --pbkdf pbkdf2 --luks2-metadata-size 16k \
  --luks2-keyslots-size 128k --offset 352 --label seed
