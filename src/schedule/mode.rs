//! How a configured disk can be imaged consistently while the system runs:
//! - nothing on it mounted read-write (a data disk, an image file): directly;
//! - an LVM logical volume mounted read-write: from a temporary snapshot LV;
//! - a plain partition mounted read-write: the upstream kernel cannot snapshot it and
//!   a copy of a filesystem being written is not one, so it is imaged by the rescue
//!   entry, after a reboot into the live system (docs/SCHEDULE.md; `rescue_entry`).
//!
//! The kernel's view is read straight from /proc/self/mountinfo (the `rw` option) and
//! sysfs (partitions, holders, a dm device's `dm/uuid`, which lvm2 starts with `LVM-`).

use super::error::ScheduleError;
use super::snapshot::{self, LvRef};
use crate::discover::mountinfo;
use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Direct,
    LvmSnapshot(LvRef),
    /// Only the rescue entry can image it; the text says what is mounted where.
    Rescue(String),
}

/// Why a disk cannot be imaged where it is.
enum Busy {
    /// A plain partition (or a non-LVM mapping on one) mounted read-write.
    NeedsRescue(String),
    Refused(String),
}

/// (major, minor) → mount point of every read-write mount.
fn rw_mounts() -> Result<HashMap<(u32, u32), PathBuf>, ScheduleError> {
    let p = Path::new("/proc/self/mountinfo");
    Ok(mountinfo::load(p)
        .map_err(ScheduleError::io(p))?
        .into_iter()
        .filter(|m| m.read_write)
        .map(|m| ((m.major, m.minor), m.mount_point))
        .collect())
}

fn dev_of(sys: &Path) -> Option<(u32, u32)> {
    let t = std::fs::read_to_string(sys.join("dev")).ok()?;
    let (a, b) = t.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn is_lvm_dm(sys: &Path) -> bool {
    std::fs::read_to_string(sys.join("dm/uuid")).is_ok_and(|u| u.starts_with("LVM-"))
}

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Chooses the mode for `disk` (as configured; resolved here).
pub fn choose(disk: &Path) -> Result<Mode, ScheduleError> {
    let err = |why: String| ScheduleError::Disk {
        disk: disk.display().to_string(),
        why,
    };
    let canon =
        std::fs::canonicalize(disk).map_err(|e| err(format!("{e} (is the disk attached?)")))?;
    let meta = std::fs::metadata(&canon).map_err(ScheduleError::io(&canon))?;
    let rw = rw_mounts()?;
    if meta.file_type().is_file() {
        // An image file is in use when a loop device over it is mounted read-write.
        for loopdev in names_in(Path::new("/sys/block")) {
            let sys = Path::new("/sys/block").join(&loopdev);
            let back = std::fs::read_to_string(sys.join("loop/backing_file")).unwrap_or_default();
            if Path::new(back.trim()) == canon {
                if let Err(b) = check_mounted(&sys, &loopdev, &rw) {
                    return busy(b).map_err(err);
                }
            }
        }
        return Ok(Mode::Direct);
    }
    if !meta.file_type().is_block_device() {
        return Err(err("neither a block device nor a disk image file".into()));
    }
    let rdev = meta.rdev();
    let (major, minor) = (
        nix::sys::stat::major(rdev) as u32,
        nix::sys::stat::minor(rdev) as u32,
    );
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if is_lvm_dm(&sys) {
        return match rw.get(&(major, minor)) {
            None => Ok(Mode::Direct),
            Some(_) => Ok(Mode::LvmSnapshot(snapshot::describe(
                &canon.to_string_lossy(),
            )?)),
        };
    }
    let name = canon
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match check_mounted(&sys, &name, &rw) {
        Ok(()) => Ok(Mode::Direct),
        Err(b) => busy(b).map_err(err),
    }
}

/// True when the filesystem holding `path` (the repository) is on block device `disk`:
/// the disk itself, one of its partitions, or a device-mapper device stacked on one of
/// them (LVM, LUKS). Imaging a disk directly while the run writes its repository to it
/// makes an image of a filesystem being written (and of the repository in it); a
/// `uuid=` repository is mounted by the run itself, after the modes were chosen.
pub fn holds_path(disk: &Path, path: &Path) -> bool {
    let Ok(repo) = std::fs::metadata(path) else {
        return false;
    };
    let dev = repo.dev();
    let want = (
        nix::sys::stat::major(dev) as u32,
        nix::sys::stat::minor(dev) as u32,
    );
    let Ok(meta) = std::fs::metadata(disk) else {
        return false;
    };
    if !meta.file_type().is_block_device() {
        return false;
    }
    let rdev = meta.rdev();
    let sys = PathBuf::from(format!(
        "/sys/dev/block/{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    ));
    let mut devs = vec![sys.clone()];
    for n in names_in(&sys) {
        if sys.join(&n).join("partition").exists() {
            devs.push(sys.join(n));
        }
    }
    let holders: Vec<PathBuf> = devs
        .iter()
        .flat_map(|d| names_in(&d.join("holders")))
        .map(|h| Path::new("/sys/block").join(h))
        .collect();
    devs.into_iter()
        .chain(holders)
        .any(|d| dev_of(&d) == Some(want))
}

fn busy(b: Busy) -> Result<Mode, String> {
    match b {
        Busy::NeedsRescue(why) => Ok(Mode::Rescue(why)),
        Busy::Refused(why) => Err(why),
    }
}

/// Errors when the device at `sys`, a partition of it, or an LV stacked on one is
/// mounted read-write; says which mode it needs.
fn check_mounted(sys: &Path, name: &str, rw: &HashMap<(u32, u32), PathBuf>) -> Result<(), Busy> {
    let mut parts: Vec<(String, PathBuf)> = vec![(name.to_string(), sys.to_path_buf())];
    for n in names_in(sys) {
        if sys.join(&n).join("partition").exists() {
            parts.push((n.clone(), sys.join(n)));
        }
    }
    for (pname, psys) in &parts {
        if let Some(mp) = dev_of(psys).and_then(|d| rw.get(&d)) {
            return Err(Busy::NeedsRescue(format!(
                "{pname} is mounted read-write at {}; a plain partition cannot be snapshotted while mounted, \
                 so it needs the rescue-entry mode",
                mp.display()
            )));
        }
        for holder in names_in(&psys.join("holders")) {
            let hsys = Path::new("/sys/block").join(&holder);
            if let Some(mp) = dev_of(&hsys).and_then(|d| rw.get(&d)) {
                let dm_name = std::fs::read_to_string(hsys.join("dm/name")).unwrap_or_default();
                return Err(if is_lvm_dm(&hsys) {
                    Busy::Refused(format!(
                        "{pname} holds the LVM volume {} mounted read-write at {}; list the \
                         logical volume (/dev/<vg>/<lv>) in the schedule's disks to image it from a snapshot",
                        dm_name.trim(),
                        mp.display()
                    ))
                } else {
                    Busy::NeedsRescue(format!(
                        "{pname} holds {} mounted read-write at {}; it needs the rescue-entry mode",
                        dm_name.trim(),
                        mp.display()
                    ))
                });
            }
        }
    }
    Ok(())
}
