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

use super::error::ScheduleError;
use super::rescue_entry::{check_uuid, grub, GRUB_ID};
use super::run::{self, host_name, name_part};
use super::state::{RunRecord, ScheduleState};
use super::{target, Roots};
use crate::resize::run_tool;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the installed root is mounted.
pub const INSTALLED_ROOT: &str = "installed-root";

fn err(why: impl Into<String>) -> ScheduleError {
    ScheduleError::Rescue { why: why.into() }
}

/// The device holding the filesystem `uuid`. Disks can still be appearing when the
/// live system starts the run: blkid is asked for up to 10 s.
fn find_uuid(uuid: &str) -> Result<PathBuf, ScheduleError> {
    for _ in 0..10 {
        if let Some(dev) = target::device_by_uuid(uuid)? {
            return Ok(dev);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Err(err(format!(
        "no filesystem with UUID {uuid} (the installed system's root) is attached"
    )))
}

/// The installed system's host name, so the images carry the same names (and the
/// same retention) as the ones its own runs make.
fn installed_host(root: &Path) -> String {
    std::fs::read_to_string(root.join("etc/hostname"))
        .ok()
        .map(|h| name_part(h.trim()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(host_name)
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
    let dev = find_uuid(root_uuid)?;
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
    let rec = run::run_rescue(&roots, &installed_host(&mp), pending.as_ref());
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
