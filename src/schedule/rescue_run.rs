//! The run the rescue entry makes: the live system boots with `ironclone.run=schedule
//! run --rescue <root-uuid>` (rescue_entry::cmdline), finds the installed system's
//! root filesystem by that UUID, mounts it read-only, reads its schedule.json and
//! images the disks, which nothing has mounted read-write now. The outcome is the one
//! write to the installed system: its state file, after the backup (so the image does
//! not contain a half-written state file), through a read-write remount. It stays
//! with the installed system rather than on the ESP so that `schedule status` has one
//! place to read, and FAT has no atomic rename. Then the live /init reboots, and the
//! firmware (BootNext was one-time) or GRUB (grub-reboot was too) boots the installed
//! system again. Where GRUB could not clear grubenv's `next_entry` itself, the
//! rescue run clears it in the same write (no boot loop).
//!
//! A root on device-mapper is out of reach: the entry then says `--rescue-boot
//! <boot-uuid>` ([`run_boot`]), and the schedule, the request and the outcome are in
//! the entry's folder on that partition (`boot_mirror`), which the installed system
//! merges into its state on its next `schedule status` or `run`.

use super::config::ScheduleConfig;
use super::error::ScheduleError;
use super::rescue_entry::{check_uuid, grub, BOOT_DIR, ESP_DIR, GRUB_ID, KERNEL_FILE};
use super::run;
use super::state::{RunRecord, ScheduleState};
use super::{boot_mirror, target, Roots};
use crate::resize::run_tool;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the installed root is mounted.
pub const INSTALLED_ROOT: &str = "installed-root";
/// Where the boot partition holding the mirror is mounted.
pub const BOOT_PARTITION: &str = "boot-partition";

fn err(why: impl Into<String>) -> ScheduleError {
    ScheduleError::Rescue { why: why.into() }
}

/// The device holding the filesystem `uuid` (`what` it is). Disks can still be
/// appearing when the live system starts the run: blkid is asked for up to 10 s.
fn find_uuid(uuid: &str, what: &str) -> Result<PathBuf, ScheduleError> {
    for _ in 0..10 {
        if let Some(dev) = target::device_by_uuid(uuid)? {
            return Ok(dev);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Err(err(format!(
        "no filesystem with UUID {uuid} ({what}) is attached"
    )))
}

fn mount(args: &[&str]) -> Result<(), ScheduleError> {
    run_tool("mount", args, None, &[0])?;
    Ok(())
}

/// Mounts the installed root, runs, records. `Err` when the outcome could not be
/// recorded on the installed system (the console shows it; the installed system's
/// `schedule status` then reports the request as unanswered).
pub fn run(root_uuid: &str) -> Result<RunRecord, ScheduleError> {
    check_uuid(root_uuid)?;
    let dev = find_uuid(root_uuid, "the installed system's root")?;
    let mp = Path::new(target::RUN_DIR).join(INSTALLED_ROOT);
    std::fs::create_dir_all(&mp).map_err(ScheduleError::io(&mp))?;
    let (d, m) = (
        dev.to_string_lossy().into_owned(),
        mp.to_string_lossy().into_owned(),
    );
    mount(&["-o", "ro", &d, &m])
        .map_err(|e| err(format!("mounting the installed root {d}: {e}")))?;
    let roots = Roots::rescue(&mp);
    // What the installed system recorded when it asked for this boot (disk identities).
    let pending = ScheduleState::load(&roots)
        .ok()
        .and_then(|s| s.pending_rescue);
    // The installed system's host name: the images carry the names (and retention) its
    // own runs give them.
    let host = boot_mirror::installed_host(&mp);
    let config = ScheduleConfig::load(&roots.config_path());
    let rec = run::run_rescue(config, &host, pending.as_ref());
    let recorded = rec.and_then(|mut rec| {
        mount(&["-o", "remount,rw", &m])?;
        // /boot on the root filesystem: its grubenv (a separate /boot is not mounted).
        match grub::clear_next_entry(&mp.join("boot"), GRUB_ID) {
            Ok(false) => {}
            Ok(true) => rec.warnings.push(format!(
                "GRUB left next_entry={GRUB_ID} in the installed system's grubenv (it cannot \
                 write grubenv on LVM or RAID); cleared, so the next boot is the installed system"
            )),
            Err(e) => rec
                .warnings
                .push(format!("checking GRUB's next_entry: {e}")),
        }
        ScheduleState::record(&roots, &rec)?;
        Ok(rec)
    });
    // Unmounted in every case: the reboot that follows must find it clean.
    let unmounted = run_tool("umount", &[&m], None, &[0]);
    let rec = recorded?;
    unmounted?;
    Ok(rec)
}

/// The rescue entry's folder on the mounted boot partition `mp`: `EFI/ironclone` on an
/// ESP, `ironclone` on a /boot; the one holding the rescue kernel.
fn entry_dir(mp: &Path) -> Result<PathBuf, ScheduleError> {
    [ESP_DIR, BOOT_DIR]
        .iter()
        .map(|d| mp.join(d))
        .find(|d| d.join(KERNEL_FILE).is_file())
        .ok_or_else(|| {
            err(format!(
                "the boot partition holds neither {ESP_DIR}/{KERNEL_FILE} nor {BOOT_DIR}/{KERNEL_FILE}"
            ))
        })
}

/// The run of an entry that names the boot partition (`--rescue-boot`): mounts it
/// read-only, runs the mirrored schedule, then remounts it read-write for the one
/// write, the outcome (after the backup, which images this partition too), and
/// clears a `next_entry` GRUB left in its grubenv (a /boot of its own). `Err` when the
/// outcome could not be recorded.
pub fn run_boot(boot_uuid: &str) -> Result<RunRecord, ScheduleError> {
    check_uuid(boot_uuid)?;
    let dev = find_uuid(boot_uuid, "the boot partition holding the schedule")?;
    let mp = Path::new(target::RUN_DIR).join(BOOT_PARTITION);
    std::fs::create_dir_all(&mp).map_err(ScheduleError::io(&mp))?;
    let (d, m) = (
        dev.to_string_lossy().into_owned(),
        mp.to_string_lossy().into_owned(),
    );
    mount(&["-o", "ro", &d, &m])
        .map_err(|e| err(format!("mounting the boot partition {d}: {e}")))?;
    let recorded = entry_dir(&mp).and_then(|dir| {
        let rec = match boot_mirror::read_request(&dir) {
            Ok(req) => run::run_rescue(
                boot_mirror::read_config(&dir),
                &req.host,
                req.pending.as_ref(),
            ),
            // Recorded as the outcome: the installed system's status names the file.
            Err(e) => Ok(RunRecord {
                start_unix: run::now_unix(),
                end_unix: run::now_unix(),
                error: Some(e.to_string()),
                rescue: true,
                ..RunRecord::default()
            }),
        };
        let mut rec = rec?;
        mount(&["-o", "remount,rw", &m])?;
        match grub::clear_next_entry(&mp, GRUB_ID) {
            Ok(false) => {}
            Ok(true) => rec.warnings.push(format!(
                "GRUB left next_entry={GRUB_ID} in the grubenv on {d}; cleared, so the next boot is \
                 the installed system"
            )),
            Err(e) => rec.warnings.push(format!("checking GRUB's next_entry: {e}")),
        }
        boot_mirror::write_outcome(&dir, &rec)?;
        Ok(rec)
    });
    let unmounted = run_tool("umount", &[&m], None, &[0]);
    let rec = recorded?;
    unmounted?;
    Ok(rec)
}
