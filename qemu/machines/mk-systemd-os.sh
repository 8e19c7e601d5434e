#!/usr/bin/env bash
# The "installed system" of tests/qemu/test-schedule-systemd.sh: Debian 12 with systemd as
# PID 1 on a UEFI disk, so that the scheduled backup runs the way it does on a user's
# machine: `ironclone schedule init` installs the service and timer and starts the timer
# through systemctl, systemd fires it, and `schedule run` (from the service) sets BootNext
# through efivarfs and reboots with `systemctl reboot`. mk-rescue-os.sh's system stands in
# for an init with a shell script; this one is the real thing.
#  - The root is debootstrap's minbase of bookworm plus systemd-sysv, udev and kmod, from
#    the Debian mirror apt uses; cached as a tarball in build/cache/ (a few minutes once).
#  - The kernel is the live system's (build/kernel), with the modules this disk needs
#    (AHCI, ext4, vfat, efivarfs) in the root and in a small busybox initramfs that mounts
#    the root by UUID and switch_roots into systemd.
#  - GPT: ESP (GRUB as the fallback loader, room for the rescue entry's kernel and
#    initramfs), root ext4. /boot holds vmlinuz, the OS's initramfs and the live
#    initramfs (what `rescue install` copies onto the ESP).
#  - Two test units print on the console: ironclone-test-first (first boot: schedule
#    init, rescue install, then it waits for the timer; a transient systemd timer powers
#    off after FIRST_BOOT_LIMIT s if the schedule never fired) and ironclone-test-again
#    (every later boot, ordered before the backup timer: print the status and the
#    previous boot's journal of the backup service, then power off).
#  - Drop-ins stand for "a shortened calendar": RandomizedDelaySec=0 and AccuracySec=1s
#    on the timer, the service's output also on the console. SYSTEMD_BREAK=timer moves
#    the calendar to 2099 instead (a negative control: the timer never fires).
#  - --bios: an MBR disk for SeaBIOS with the distribution's own GRUB: the root also gets
#    grub-common, grub2-common and grub-pc-bin (update-grub, grub-mkconfig and
#    /etc/grub.d, grub-editenv, the i386-pc modules), laid down as grub-install does
#    (boot.img in the MBR, core.img from those modules in the post-MBR gap, the modules
#    in /boot/grub/i386-pc); /etc/default/grub puts GRUB and the kernel on the serial
#    console. The first grub.cfg is a stand-in; the OS's own update-grub (run by
#    `rescue install`) replaces it with the real one from /etc/grub.d. The kernel and
#    the OS's initramfs are /boot/vmlinuz-<version> and /boot/initrd.img-<version>, the
#    names 10_linux looks for. No ESP; the root is partition 1.
# Usage: mk-systemd-os.sh [--bios] OUT.img BINARY LIVE_INITRD ROOT_UUID REPO_UUID
set -euo pipefail
source "$(dirname "$0")/lib.sh"
FW=uefi
[[ ${1:-} == --bios ]] && { FW=bios; shift; }
[[ $# -eq 5 ]] || m_die "usage: $0 [--bios] OUT.img BINARY LIVE_INITRD ROOT_UUID REPO_UUID"
OUT=$1 BIN=$2 LIVE_INITRD=$3 ROOT_UUID=$4 REPO_UUID=$5
NAME=installed-os
FIRST_BOOT_LIMIT=${FIRST_BOOT_LIMIT:-240}
m_need_tools
command -v debootstrap >/dev/null || m_die "missing debootstrap (run scripts/setup.sh)"
for f in "$BIN" "$LIVE_INITRD"; do [[ -f $f ]] || m_die "no file $f"; done
KDIR="$M_ROOT/build/kernel"
KVER=$(cat "$KDIR/version")
MODULES="ahci sd_mod ext4 vfat nls_cp437 nls_ascii efivarfs crc32c_intel"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- the Debian root, cached --------------------------------------------------------------
PKGS=systemd-sysv,udev,kmod
CACHE="$M_ROOT/build/cache/debian12-systemd.tar"
if [[ $FW == bios ]]; then
  PKGS+=,grub-common,grub2-common,grub-pc-bin
  CACHE="$M_ROOT/build/cache/debian12-systemd-bios.tar"
fi
MIRROR=http://deb.debian.org/debian
if [[ ! -f $CACHE || "$(cat "$CACHE.key" 2>/dev/null)" != "$PKGS $MIRROR" ]]; then
  mkdir -p "$(dirname "$CACHE")"
  echo "machine $NAME: debootstrap bookworm ($PKGS), once"
  debootstrap --variant=minbase --include="$PKGS" bookworm "$work/deb" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; m_die "debootstrap failed"; }
  rm -rf "$work/deb/var/cache/apt/archives/"*.deb "$work/deb/var/lib/apt/lists/"*
  tar -C "$work/deb" -cf "$CACHE.tmp" . || m_die "tar of the root failed"
  mv "$CACHE.tmp" "$CACHE"
  echo "$PKGS $MIRROR" >"$CACHE.key"
  rm -rf "$work/deb"
fi
d=$work/root
mkdir -p "$d"
tar -C "$d" -xf "$CACHE" || m_die "unpacking $CACHE failed"

# --- kernel modules: the closure of what this disk needs, in the root and the initramfs --
mods=()
for m in $MODULES; do
  while read -r kind path _; do
    [[ $kind == insmod ]] && mods+=("${path#"$KDIR"/lib/modules/"$KVER"/}")
  done < <(modprobe -d "$KDIR" -S "$KVER" --show-depends "$m") || m_die "no module $m in $KDIR"
done
put_modules() { # DEST_ROOT
  local dst="$1/lib/modules/$KVER" f
  mkdir -p "$dst"
  for f in "${mods[@]}"; do
    mkdir -p "$dst/$(dirname "$f")"
    cp "$KDIR/lib/modules/$KVER/$f" "$dst/$f"
  done
  cp "$KDIR/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$dst/"
  depmod -b "$1" "$KVER" || m_die "depmod in $1 failed"
}
put_modules "$d"

# The OS's initramfs: load the disk's modules, mount the root, hand over to systemd.
ird=$work/initrd
mkdir -p "$ird/bin" "$ird/dev" "$ird/proc" "$ird/sys" "$ird/newroot"
cp "$(command -v busybox)" "$ird/bin/busybox"
ln -s busybox "$ird/bin/sh"
put_modules "$ird"
cat >"$ird/init" <<INIT
#!/bin/sh
export PATH=/bin
busybox mount -t devtmpfs dev /dev
busybox mount -t proc proc /proc
busybox mount -t sysfs sys /sys
for m in ahci sd_mod ext4 crc32c_intel; do busybox modprobe \$m; done
i=0
until root=\$(busybox findfs UUID=$ROOT_UUID 2>/dev/null); do
  i=\$((i + 1))
  [ \$i -gt 60 ] && { echo "os-initrd: no root UUID=$ROOT_UUID"; busybox sleep 5; busybox poweroff -f; }
  busybox sleep 0.5
done
busybox mount -o ro "\$root" /newroot || { echo "os-initrd: cannot mount \$root"; busybox poweroff -f; }
busybox umount /sys /proc
busybox mount --move /dev /newroot/dev
exec busybox switch_root /newroot /sbin/init
INIT
chmod 755 "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/os-initrd.img"

# --- the installed system's files --------------------------------------------------------
mkdir -p "$d/boot/grub" "$d/var/log/journal" "$d/usr/local/sbin"
OS_ARGS="console=ttyS0,115200 loglevel=4 no_timer_check systemd.show_status=1"
if [[ $FW == uefi ]]; then
  mkdir -p "$d/boot/efi"
  KERNEL_FILE=vmlinuz OS_INITRD=os-initrd.img
  printf 'UUID=%s / ext4 rw,errors=remount-ro 0 1\nPARTUUID=1c0ec1a5-000c-4000-8000-000000000001 /boot/efi vfat umask=0077 0 2\n' \
    "$ROOT_UUID" >"$d/etc/fstab"
else
  KERNEL_FILE=vmlinuz-$KVER OS_INITRD=initrd.img-$KVER
  printf 'UUID=%s / ext4 rw,errors=remount-ro 0 1\n' "$ROOT_UUID" >"$d/etc/fstab"
  mkdir -p "$d/etc/default"
  cat >"$d/etc/default/grub" <<DEF
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="$OS_ARGS"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB_DISABLE_RECOVERY=true
GRUB_DISABLE_SUBMENU=y
DEF
  # What grub-install puts in /boot/grub: the modules grub.cfg's insmod lines load.
  mkdir -p "$d/boot/grub/i386-pc"
  cp "$d/usr/lib/grub/i386-pc/"*.mod "$d/usr/lib/grub/i386-pc/"*.lst "$d/boot/grub/i386-pc/"
fi
cp "$KDIR/vmlinuz" "$d/boot/$KERNEL_FILE"
cp "$work/os-initrd.img" "$d/boot/$OS_INITRD"
cp "$LIVE_INITRD" "$d/boot/ironclone-live.img"
cp "$BIN" "$d/usr/local/sbin/ironclone"
echo "$NAME" >"$d/etc/hostname"
# A file whose bytes the test finds again in the restored image.
head -c 65536 /dev/urandom | base64 >"$d/etc/os-marker"
# The first boot's grub.cfg (on BIOS until the OS's update-grub writes the real one).
cat >"$d/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
menuentry 'Debian (installed system $NAME)' {
  search --no-floppy --fs-uuid --set=root $ROOT_UUID
  linux /boot/$KERNEL_FILE root=UUID=$ROOT_UUID ro $OS_ARGS
  initrd /boot/$OS_INITRD
}
CFG

sd=$d/etc/systemd/system
mkdir -p "$sd/multi-user.target.wants" "$sd/ironclone-backup.timer.d" "$sd/ironclone-backup.service.d"
if [[ ${SYSTEMD_BREAK:-} == timer ]]; then
  printf '[Timer]\nOnCalendar=\nOnCalendar=2099-01-01\nRandomizedDelaySec=0\n' >"$sd/ironclone-backup.timer.d/test.conf"
else
  printf '[Timer]\nRandomizedDelaySec=0\nAccuracySec=1s\n' >"$sd/ironclone-backup.timer.d/test.conf"
fi
printf '[Service]\nStandardOutput=journal+console\nStandardError=journal+console\n' \
  >"$sd/ironclone-backup.service.d/console.conf"

if [[ $FW == uefi ]]; then
  RESCUE_TARGET="--esp /boot/efi" RESCUE_APPEND=""
else
  RESCUE_TARGET="--boot /boot" RESCUE_APPEND="--append no_timer_check"
fi
cat >"$d/usr/local/sbin/os-first-boot" <<FIRST
#!/bin/sh
set -u
echo "IRONCLONE-OS: first boot, \$(systemctl --version | head -n1)"
rootdev=\$(findmnt -no SOURCE /)
disk=/dev/\$(lsblk -no PKNAME "\$rootdev")
# What a user would give: the disk's stable name. The rescue entry first: schedule init
# starts the timer, which may fire before anything after it has run.
for l in /dev/disk/by-id/*; do
  case "\$l" in *-part*) continue ;; esac
  [ "\$(readlink -f "\$l")" = "\$disk" ] && { disk=\$l; break; }
done
echo "IRONCLONE-OS: root \$rootdev on \$disk"
ironclone rescue install $RESCUE_TARGET --kernel /boot/$KERNEL_FILE --initramfs /boot/ironclone-live.img \
  --append console=ttyS0,115200 --append ironclone.net=0 $RESCUE_APPEND --yes
echo "IRONCLONE-OS: rescue install rc=\$?"
if [ -d /boot/grub/i386-pc ]; then
  echo "IRONCLONE-OS: grub.cfg: \$(grep -c '^menuentry' /boot/grub/grub.cfg) entries, rescue \$(grep -c -- '--id ironclone-rescue' /boot/grub/grub.cfg), next_entry \$(grep -c 'next_entry' /boot/grub/grub.cfg)"
fi
ironclone schedule init --repo uuid=$REPO_UUID:/repo --disks "\$disk" --budget 90% --calendar minutely
echo "IRONCLONE-OS: schedule init rc=\$?"
echo "IRONCLONE-OS: timer \$(systemctl is-enabled ironclone-backup.timer) \$(systemctl is-active ironclone-backup.timer)"
systemctl list-timers --all --no-pager ironclone-backup.timer
# If the schedule never fires, do not wait for the test's timeout.
systemd-run --quiet --on-active=$FIRST_BOOT_LIMIT --unit=ironclone-test-limit \
  /bin/sh -c 'echo "IRONCLONE-OS: the timer did not fire in $FIRST_BOOT_LIMIT s" >/dev/console; systemctl poweroff'
echo "IRONCLONE-OS: waiting for the timer"
FIRST
cat >"$d/usr/local/sbin/os-booted-again" <<AGAIN
#!/bin/sh
set -u
echo "IRONCLONE-OS: booted again"
# In brackets: journald drops the trailing blank "next_entry= " would end with.
[ -f /boot/grub/grubenv ] && echo "IRONCLONE-OS: grubenv after: [\$(grub-editenv /boot/grub/grubenv list | paste -sd ' ')]"
ironclone schedule status --json >/run/status.json
rc=\$?
ironclone schedule status
echo "IRONCLONE-OS-STATUS rc=\$rc pending=\$(grep -c '"pending_rescue": {' /run/status.json) rescue=\$(grep -c '"rescue": true' /run/status.json)"
journalctl -b -1 --no-pager -o cat _SYSTEMD_UNIT=ironclone-backup.service | sed 's/^/IRONCLONE-OS-JOURNAL: /'
journalctl -b -1 --no-pager -o cat -u ironclone-backup.timer -u ironclone-backup.service | grep -i 'start' | sed 's/^/IRONCLONE-OS-JOURNAL: /'
systemctl --no-block poweroff
AGAIN
chmod 755 "$d/usr/local/sbin/os-first-boot" "$d/usr/local/sbin/os-booted-again"
cat >"$sd/ironclone-test-first.service" <<'UNIT'
[Unit]
Description=ironclone test: first boot sets up the schedule
ConditionPathExists=!/etc/ironclone/schedule.json
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/os-first-boot
StandardOutput=journal+console
StandardError=journal+console
[Install]
WantedBy=multi-user.target
UNIT
# Before the timer: with Persistent=true, a timer that last fired a boot ago fires at once.
cat >"$sd/ironclone-test-again.service" <<'UNIT'
[Unit]
Description=ironclone test: after the rescue run, report and power off
DefaultDependencies=no
After=local-fs.target
Before=ironclone-backup.timer
ConditionPathExists=/etc/ironclone/schedule.json
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/os-booted-again
StandardOutput=journal+console
StandardError=journal+console
[Install]
WantedBy=multi-user.target
UNIT
ln -s ../ironclone-test-first.service "$sd/multi-user.target.wants/ironclone-test-first.service"
ln -s ../ironclone-test-again.service "$sd/multi-user.target.wants/ironclone-test-again.service"
if [[ $FW == bios ]]; then
  # grubenv as each boot ends (what grub-reboot left for GRUB), from a unit stopped at
  # shutdown; straight to the console, as journald may be gone by then.
  cat >"$d/usr/local/sbin/os-grubenv-at-shutdown" <<'STOP'
#!/bin/sh
echo "IRONCLONE-OS: grubenv at shutdown: [$(grub-editenv /boot/grub/grubenv list | paste -sd ' ')]" >/dev/console
STOP
  chmod 755 "$d/usr/local/sbin/os-grubenv-at-shutdown"
  cat >"$sd/ironclone-test-grubenv.service" <<'UNIT'
[Unit]
Description=ironclone test: print grubenv at shutdown
After=local-fs.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=/usr/local/sbin/os-grubenv-at-shutdown
[Install]
WantedBy=multi-user.target
UNIT
  ln -s ../ironclone-test-grubenv.service "$sd/multi-user.target.wants/ironclone-test-grubenv.service"
fi

# --- the disk ---------------------------------------------------------------------------
used_mib=$(($(du -sm "$d" | cut -f1)))
ROOT_MIB=$((used_mib + used_mib / 3 + 64))
if [[ $FW == bios ]]; then
  # Room for the rescue entry's copy of the kernel and the live initramfs in /boot.
  ROOT_MIB=$((ROOT_MIB + ($(stat -c %s "$KDIR/vmlinuz") + $(stat -c %s "$LIVE_INITRD")) / 1048576 + 16))
  ROOT_START=2048
  SECTORS=$((ROOT_START + ROOT_MIB * 2048 + 2048))
  rm -f "$OUT"
  truncate -s $((SECTORS * 512)) "$OUT"
  sfdisk -q --no-reread --no-tell-kernel "$OUT" <<SF || m_die "sfdisk failed"
label: dos
label-id: 0x1c0ec1a6
start=$ROOT_START, size=$((ROOT_MIB * 2048)), type=83, bootable
SF
  # GRUB 2.06 reads no ext4 with metadata_csum_seed or orphan_file (e2fsprogs 1.47's).
  truncate -s "${ROOT_MIB}M" "$work/root.ext4"
  mkfs.ext4 -q -F -U "$ROOT_UUID" -L "$NAME" -O ^metadata_csum_seed,^orphan_file -d "$d" "$work/root.ext4" ||
    m_die "mkfs.ext4 failed"
  m_place "$OUT" "$work/root.ext4" "$ROOT_START"
  # core.img from the OS's own modules, so that its insmod lines load matching ones.
  cfg=$work/early.cfg
  m_early_cfg "$cfg" "$ROOT_UUID"
  # shellcheck disable=SC2086
  grub-mkimage -O i386-pc -d "$d/usr/lib/grub/i386-pc" -c "$cfg" -p /boot/grub -o "$work/core.img" \
    biosdisk $M_GRUB_MODS_COMMON loadenv || m_die "grub-mkimage i386-pc failed"
  M_GRUB_PC=$d/usr/lib/grub/i386-pc m_install_bios_grub "$OUT" "$work/core.img" 1 $((ROOT_START - 1))
  cp "$d/etc/os-marker" "$OUT.marker"
  echo "machine $NAME: $OUT (MBR, BIOS, GRUB i386-pc, root ${ROOT_MIB} MiB UUID $ROOT_UUID, Debian 12 + systemd, kernel $KVER)"
  exit 0
fi
ESP_MIB=$((($(stat -c %s "$KDIR/vmlinuz") + $(stat -c %s "$LIVE_INITRD")) / 1048576 + 48))
ESP_START=2048
ESP_END=$((ESP_START + ESP_MIB * 2048 - 1))
ROOT_START=$((ESP_END + 1))
ROOT_END=$((ROOT_START + ROOT_MIB * 2048 - 1))
SECTORS=$((ROOT_END + 1 + 2048))
rm -f "$OUT"
truncate -s $((SECTORS * 512)) "$OUT"
sgdisk -o -U 1C0EC1A5-0000-4000-8000-00000000000C \
  -n 1:$ESP_START:$ESP_END -t 1:EF00 -c 1:esp -u 1:1C0EC1A5-000C-4000-8000-000000000001 \
  -n 2:$ROOT_START:$ROOT_END -t 2:8300 -c 2:root -u 2:1C0EC1A5-000C-4000-8000-000000000002 \
  "$OUT" >/dev/null || m_die "sgdisk failed"
truncate -s "${ROOT_MIB}M" "$work/root.ext4"
mkfs.ext4 -q -F -U "$ROOT_UUID" -L "$NAME" -d "$d" "$work/root.ext4" || m_die "mkfs.ext4 failed"
m_place "$OUT" "$work/root.ext4" "$ROOT_START"
m_efi_img "$work/grubx64.efi" "$ROOT_UUID"
m_esp "$work/esp.fat" "$ESP_MIB" "$ESP_START" "$work/grubx64.efi" ::/EFI/BOOT/BOOTX64.EFI
m_place "$OUT" "$work/esp.fat" "$ESP_START"
cp "$d/etc/os-marker" "$OUT.marker"
echo "machine $NAME: $OUT (GPT, ESP ${ESP_MIB} MiB, root ${ROOT_MIB} MiB UUID $ROOT_UUID, Debian 12 + systemd, kernel $KVER)"
