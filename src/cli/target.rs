//! Finding out what a path names before anything is written to it: a real disk
//! (identified by model, serial and size, checked against the safety rules), a
//! partition of one (for an image without a partition table: one filesystem, or a
//! LUKS partition, saved alone; the disk's rules apply), or a disk-image file.

use anyhow::Context;
use ironclone::discover::{self, DiscoverError, Disk, Partition, SysPaths, TargetCheckError};
use ironclone::units::human_bytes;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why the planned target disk is no longer the one to write, checked just before the
/// first write.
#[derive(Debug, Error)]
pub enum Recheck {
    #[error("{}: cannot list the disks again: {source}; nothing was written", path.display())]
    Discover {
        path: PathBuf,
        #[source]
        source: DiscoverError,
    },
    #[error("{} is now {now}, not the disk that was planned ({planned}); nothing was written", path.display())]
    Replaced {
        path: PathBuf,
        now: String,
        planned: String,
    },
    #[error("{} has gone away; nothing was written", path.display())]
    Gone { path: PathBuf },
    #[error("{}: partition {number} is no longer the one that was planned ({planned}); nothing was written", path.display())]
    PartitionChanged {
        path: PathBuf,
        number: u32,
        planned: String,
    },
}

pub enum Target {
    Disk(Box<Disk>),
    /// A partition of `disk`: only an image without a partition table goes there
    /// (`restore::run_planned` refuses the others), written from the partition's byte
    /// 0; the table and the disk's other partitions are left as they are.
    Partition {
        disk: Box<Disk>,
        part: Box<Partition>,
    },
    File(PathBuf),
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Disk(d) => d.describe(),
            Target::Partition { disk, part } => format!(
                "partition {} ({}, {}) of {}",
                part.number,
                part.path.display(),
                human_bytes(part.size_bytes),
                disk.describe()
            ),
            Target::File(p) => format!("image file {}", p.display()),
        }
    }

    /// What the person must type to confirm: the serial when the disk has one,
    /// else its kernel name; the file name for an image file.
    pub fn confirm_word(&self) -> String {
        match self {
            Target::Disk(d) => d.serial.clone().unwrap_or_else(|| d.name.clone()),
            Target::Partition { disk, part } => {
                disk.serial.clone().unwrap_or_else(|| part.name.clone())
            }
            Target::File(p) => p
                .file_name()
                .map_or("yes".into(), |n| n.to_string_lossy().into_owned()),
        }
    }
}

/// Resolves `path`; a block device is looked up among the discovered disks.
pub fn resolve(path: &Path) -> anyhow::Result<Target> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if !meta.file_type().is_block_device() {
        return Ok(Target::File(path.to_path_buf()));
    }
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let disks = discover::list_disks(&SysPaths::default())?;
    for d in disks {
        if d.path == canon {
            return Ok(Target::Disk(Box::new(d)));
        }
        if let Some(p) = d.partitions.iter().find(|p| p.path == canon) {
            return Ok(Target::Partition {
                part: Box::new(p.clone()),
                disk: Box::new(d),
            });
        }
    }
    anyhow::bail!(
        "{} is neither a disk nor a partition of one that was found",
        path.display()
    )
}

/// The safety rules for a restore target: not the boot medium, nothing mounted,
/// not read-only, and not the disk holding the repository.
pub fn check_allowed(t: &Target, repo: &Path) -> Result<(), TargetCheckError> {
    let d = match t {
        Target::Disk(d) | Target::Partition { disk: d, .. } => d,
        Target::File(_) => return Ok(()),
    };
    discover::check_restore_target(&SysPaths::default(), d, "the image repository", repo)
}

/// Re-reads the disk's identity just before writing: kernel names move between
/// boots and hotplugs (clonezilla#95), so a target is trusted by serial and size.
pub fn recheck(t: &Target) -> Result<(), Recheck> {
    let (d, part) = match t {
        Target::Disk(d) => (d, None),
        Target::Partition { disk, part } => (disk, Some(part)),
        Target::File(_) => return Ok(()),
    };
    let disks = discover::list_disks(&SysPaths::default()).map_err(|source| Recheck::Discover {
        path: d.path.clone(),
        source,
    })?;
    let now = disks.iter().find(|x| x.path == d.path);
    // A partition target must still be that partition: same number, start and size.
    let same_part = |n: &Disk| {
        part.is_none_or(|p| {
            n.partitions.iter().any(|q| {
                q.path == p.path && q.start_bytes == p.start_bytes && q.size_bytes == p.size_bytes
            })
        })
    };
    match now {
        Some(n) if n.identity().matches(&d.identity()) && !same_part(n) => {
            Err(Recheck::PartitionChanged {
                path: d.path.clone(),
                number: part.map_or(0, |p| p.number),
                planned: t.describe(),
            })
        }
        Some(n) if n.identity().matches(&d.identity()) => Ok(()),
        Some(n) => Err(Recheck::Replaced {
            path: d.path.clone(),
            now: n.describe(),
            planned: d.describe(),
        }),
        None => Err(Recheck::Gone {
            path: d.path.clone(),
        }),
    }
}
