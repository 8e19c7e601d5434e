#!/usr/bin/env bash
# suite: all
# test-schedule-systemd.sh on a BIOS machine (issue 23: "the same on a BIOS machine through
# grub-reboot"): an installed Debian 12 with systemd and its own GRUB i386-pc on an MBR
# disk. The timer fires, `schedule run` sets grubenv's next_entry and reboots through
# systemd, GRUB boots the rescue entry the OS's update-grub generated, the rescue run
# images the disk and reboots, GRUB boots Debian again. Each boot is a QEMU process of its
# own (lib-schedule.sh's sched_boot_bios says why). Checks, time and negative control
# (SYSTEMD_BREAK=timer): test-schedule-systemd.sh's header.
exec env SYSTEMD_FIRMWARE=bios bash "$(dirname "$0")/test-schedule-systemd.sh" "$@"
