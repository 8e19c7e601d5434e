//! Finding out what a path names before anything is written to it: a real disk
//! (identified by model, serial and size, checked against the safety rules) or a
//! disk-image file.

use anyhow::Context;
use ironclone::discover::{self, DiscoverError, Disk, SysPaths, TargetCheckError};
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
}

pub enum Target {
    Disk(Box<Disk>),
    File(PathBuf),
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Disk(d) => d.describe(),
            Target::File(p) => format!("image file {}", p.display()),
        }
    }

    /// What the person must type to confirm: the serial when the disk has one,
    /// else its kernel name; the file name for an image file.
    pub fn confirm_word(&self) -> String {
        match self {
            Target::Disk(d) => d.serial.clone().unwrap_or_else(|| d.name.clone()),
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
    disks
        .into_iter()
        .find(|d| d.path == canon)
        .map(|d| Target::Disk(Box::new(d)))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} is not a whole disk (give the disk, not a partition, as a restore target)",
                path.display()
            )
        })
}

/// The safety rules for a restore target: not the boot medium, nothing mounted,
/// not read-only, and not the disk holding the repository.
pub fn check_allowed(t: &Target, repo: &Path) -> Result<(), TargetCheckError> {
    let Target::Disk(d) = t else {
        return Ok(());
    };
    discover::check_restore_target(&SysPaths::default(), d, "the image repository", repo)
}

/// Re-reads the disk's identity just before writing: kernel names move between
/// boots and hotplugs (clonezilla#95), so a target is trusted by serial and size.
pub fn recheck(t: &Target) -> Result<(), Recheck> {
    let Target::Disk(d) = t else {
        return Ok(());
    };
    let disks = discover::list_disks(&SysPaths::default()).map_err(|source| Recheck::Discover {
        path: d.path.clone(),
        source,
    })?;
    let now = disks.iter().find(|x| x.path == d.path);
    match now {
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
