//! Refusing the wrong target. A restore overwrites a whole disk, so the disk is
//! chosen by what it is (serial, WWN, model, size), not by its kernel name, which
//! changes between boots (Clonezilla #95, #129); and the disk holding the running
//! system, a mounted filesystem, or a read-only medium is refused outright.

use super::Disk;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What identifies a physical disk across reboots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskIdentity {
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub model: Option<String>,
    pub size: u64,
}

impl DiskIdentity {
    /// True when `other` is the same disk: the same size, and every identifier that
    /// both sides know (WWN, serial, model) is equal. Without a WWN or serial on
    /// both sides the match is weak (see [`DiskIdentity::is_strong`]).
    ///
    /// The two sides may come from udev (an installed system) and from sysfs alone
    /// (the live system), which write the same facts differently: blanks inside a
    /// serial are `_` to udev, and a SATA disk's model in sysfs is the first 16
    /// characters of the ATA model (the SCSI INQUIRY product field libata fills), so a
    /// model agrees when one is the start of the other.
    pub fn matches(&self, other: &DiskIdentity) -> bool {
        fn norm(s: &str) -> String {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join("_")
                .to_ascii_lowercase()
        }
        fn agree(a: &Option<String>, b: &Option<String>, prefix: bool) -> bool {
            match (a, b) {
                (Some(x), Some(y)) => {
                    let (x, y) = (norm(x), norm(y));
                    x == y
                        || (prefix
                            && !x.is_empty()
                            && !y.is_empty()
                            && (x.starts_with(&y) || y.starts_with(&x)))
                }
                // One side knowing an identifier the other lacks means a different
                // source of facts or a different disk: refuse.
                (None, None) => true,
                _ => false,
            }
        }
        self.size == other.size
            && agree(&self.wwn, &other.wwn, false)
            && agree(&self.serial, &other.serial, false)
            && agree(&self.model, &other.model, true)
    }

    /// True when a WWN or serial is known, so a match names one physical disk.
    pub fn is_strong(&self) -> bool {
        self.wwn.is_some() || self.serial.is_some()
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("refusing {disk}: it is the disk the running system booted from")]
    BootDisk { disk: String },
    #[error("refusing {disk}: it has mounted filesystems ({mounts}); unmount them first")]
    Mounted { disk: String, mounts: String },
    #[error(
        "refusing {disk}: it is in use by {holders} (device-mapper, RAID or LVM); stop them first"
    )]
    InUse { disk: String, holders: String },
    #[error("refusing {disk}: it holds {what} ({path})")]
    HoldsPath {
        disk: String,
        what: String,
        path: String,
    },
    #[error("refusing {disk}: the device is read-only")]
    ReadOnly { disk: String },
}

/// Whether `disk` may be written as a restore or clone target.
pub fn check_target_allowed(disk: &Disk) -> Result<(), Refusal> {
    let name = disk.describe();
    if disk.is_boot {
        return Err(Refusal::BootDisk { disk: name });
    }
    if disk.has_mounted {
        let mut mounts: Vec<String> = disk
            .mountpoints
            .iter()
            .map(|m| format!("{} on {}", disk.path.display(), m.display()))
            .collect();
        for p in &disk.partitions {
            for m in &p.mountpoints {
                mounts.push(format!("{} on {}", p.path.display(), m.display()));
            }
        }
        return Err(Refusal::Mounted {
            disk: name,
            mounts: mounts.join(", "),
        });
    }
    let holders: Vec<&str> = disk
        .holders
        .iter()
        .chain(disk.partitions.iter().flat_map(|p| p.holders.iter()))
        .map(String::as_str)
        .collect();
    if !holders.is_empty() {
        return Err(Refusal::InUse {
            disk: name,
            holders: holders.join(", "),
        });
    }
    if disk.read_only {
        return Err(Refusal::ReadOnly { disk: name });
    }
    Ok(())
}

/// Refuses `disk` when it is `holder`, the disk found by
/// [`super::disk_holding_path`] for something that must survive the write (the
/// image repository); `what` names it in the message.
pub fn check_target_not_holding(
    disk: &Disk,
    holder: Option<&Disk>,
    what: &str,
    path: &std::path::Path,
) -> Result<(), Refusal> {
    match holder {
        Some(h) if h.major == disk.major && h.minor == disk.minor => Err(Refusal::HoldsPath {
            disk: disk.describe(),
            what: what.to_string(),
            path: path.display().to_string(),
        }),
        _ => Ok(()),
    }
}

/// Why a restore or clone target was refused, or could not be checked.
#[derive(Debug, Error)]
pub enum TargetCheckError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Discover(#[from] super::DiscoverError),
}

/// Every rule for writing `disk` while `keep` (the image repository, a clone's
/// scratch folder; named `what`) must survive: not the boot medium, nothing mounted
/// or stacked on it, not read-only, and not the disk that holds `keep`. The CLI and
/// the TUI both call this just before they open a target for writing.
pub fn check_restore_target(
    paths: &super::SysPaths,
    disk: &Disk,
    what: &str,
    keep: &std::path::Path,
) -> Result<(), TargetCheckError> {
    check_target_allowed(disk)?;
    let disks = super::list_disks(paths)?;
    let holder = super::disk_holding_path(paths, &disks, keep)?;
    check_target_not_holding(disk, holder, what, keep)?;
    Ok(())
}
