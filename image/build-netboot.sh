#!/usr/bin/env bash
# Builds a network boot root (TFTP or HTTP) for the live system: the same kernel,
# initramfs and GRUB menu as the ISO, behind GRUB's network boot images for BIOS (PXE)
# and UEFI. Serve OUT with any TFTP server (dnsmasq, `ironclone serve-boot`, QEMU's
# -netdev user,tftp=) and give clients the file names printed at the end as the DHCP
# boot file.
#
# Why GRUB and not iPXE: the ISO already boots through GRUB on both firmwares, so one
# menu (image/grub.cfg) and one set of modules serve both media; grub-mknetdir (Debian's
# grub-common) builds the PXE and EFI network images offline. The menu finds the kernel
# at /boot/vmlinuz on the server exactly as on the ISO, and a site may add
# boot/grub/site.cfg (ic_extra, ic_timeout, default) to choose the clients' mode.
#
# usage: build-netboot.sh KERNEL INITRD OUT
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KERNEL="${1:?usage: build-netboot.sh KERNEL INITRD OUT}"
INITRD="${2:?usage: build-netboot.sh KERNEL INITRD OUT}"
OUT="${3:?usage: build-netboot.sh KERNEL INITRD OUT}"
command -v grub-mknetdir >/dev/null || { echo "build-netboot: grub-mknetdir missing (run scripts/setup.sh)" >&2; exit 1; }
for f in "$KERNEL" "$INITRD"; do
	[[ -f $f ]] || { echo "build-netboot: $f missing (make iso)" >&2; exit 1; }
done
declare -A IMAGE=([i386-pc]=core.0 [x86_64-efi]=core.efi)
for plat in "${!IMAGE[@]}"; do
	[[ -d /usr/lib/grub/$plat ]] || { echo "build-netboot: /usr/lib/grub/$plat missing (grub-pc-bin / grub-efi-amd64-bin)" >&2; exit 1; }
done

rm -rf "$OUT"
mkdir -p "$OUT/boot/grub"
for plat in i386-pc x86_64-efi; do
	log=$(grub-mknetdir --net-directory="$OUT" --subdir=boot/grub -d "/usr/lib/grub/$plat" 2>&1) \
		|| { echo "build-netboot: grub-mknetdir for $plat failed: $log" >&2; exit 1; }
	[[ -f $OUT/boot/grub/$plat/${IMAGE[$plat]} ]] || { echo "build-netboot: no $plat/${IMAGE[$plat]} made: $log" >&2; exit 1; }
done
cp "$KERNEL" "$OUT/boot/vmlinuz"
cp "$INITRD" "$OUT/boot/initrd.img"
cp "$ROOT/image/grub.cfg" "$OUT/boot/grub/grub.cfg"
cat >"$OUT/boot/grub/site.cfg" <<'CFG'
# This network boot server's settings for its clients (GRUB script, read after the
# menu's defaults). For example, every client unattended after 2 s with more kernel
# arguments:
#   set default=unattended
#   set ic_timeout=2
#   set ic_extra="ironclone.example=1"
CFG
echo "build-netboot: $OUT ($(du -sh "$OUT" | cut -f1)), kernel $(stat -c %s "$KERNEL") bytes, initramfs $(stat -c %s "$INITRD") bytes"
echo "bios: boot/grub/i386-pc/core.0"
echo "uefi: boot/grub/x86_64-efi/core.efi"
