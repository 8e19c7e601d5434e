#!/usr/bin/env bash
# Fetches the Debian kernel (linux-image-amd64's dependency) with `apt-get download`
# and unpacks it into build/kernel/: vmlinuz, and lib/modules/<version>/.
# Idempotent: does nothing when build/kernel/vmlinuz exists for the current version.
# Used by the live ISO (image/) and by the bootable test machines (qemu/).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${KERNEL_DIR:-$ROOT/build/kernel}"
pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')"
if [[ -z "$pkg" ]]; then
  apt-get update -qq
  pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')"
fi
[[ -n "$pkg" ]] || { echo "fetch-kernel: cannot resolve linux-image-amd64" >&2; exit 1; }
kver="${pkg#linux-image-}"
if [[ -f "$OUT/vmlinuz" && -f "$OUT/version" && "$(cat "$OUT/version")" == "$kver" ]]; then
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -qq "$pkg" >/dev/null)
deb="$(ls "$tmp"/*.deb)"
mkdir -p "$tmp/x"
dpkg-deb -x "$deb" "$tmp/x"
rm -rf "$OUT"
mkdir -p "$OUT/lib"
cp "$tmp/x/boot/vmlinuz-$kver" "$OUT/vmlinuz"
cp -a "$tmp/x/lib/modules" "$OUT/lib/" 2>/dev/null || cp -a "$tmp/x/usr/lib/modules" "$OUT/lib/"
depmod -b "$OUT" "$kver"
echo "$kver" > "$OUT/version"
echo "fetch-kernel: $kver in $OUT"
