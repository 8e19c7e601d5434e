//! Browsing a filesystem inside a stored image without restoring it: list
//! directories, read files and links (partclone#86: "let me get one file back").
//!
//! The filesystems are read by well-kept crates (`ext4-view` for ext2/3/4, `ntfs`
//! for NTFS, `fatfs` for FAT and EFI system partitions) over any `BlockDevice`,
//! normally a `repo::ImageDevice`; this module only gives them one small common
//! face, so the CLI does not care which it is.

mod cursor;
mod ext;
mod fat;
mod ntfs;

pub(crate) use cursor::Cursor;
pub(crate) use fat::open_fatfs;

use crate::device::BlockDevice;
use crate::probe::FsKind;
use serde::Serialize;
use std::io::Write;
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BrowseError {
    #[error("{device}: cannot browse this filesystem ({fs}); supported: ext2/3/4, NTFS, FAT")]
    Unsupported { device: String, fs: String },
    #[error("{device}: {path}: no such file or directory")]
    NotFound { device: String, path: String },
    #[error("{device}: {path}: not a directory")]
    NotADirectory { device: String, path: String },
    #[error("{device}: {path}: not a regular file")]
    NotAFile { device: String, path: String },
    #[error("{device}: {path}: not a symbolic link")]
    NotALink { device: String, path: String },
    /// A link Linux cannot follow (an NTFS junction onto another drive, ...).
    #[error("{device}: {path}: link to {target} ({why}): it cannot be made here")]
    LinkElsewhere {
        device: String,
        path: String,
        target: String,
        why: &'static str,
    },
    #[error("{device}: {path}: {what}")]
    Fs {
        device: String,
        path: String,
        what: String,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = BrowseError> = std::result::Result<T, E>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::Other => "other",
        }
    }
}

/// One directory entry (or the object a path names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
    /// Last modification, seconds since the Unix epoch (UTC).
    pub mtime_unix: Option<i64>,
    /// A symlink's target, as `get` makes it (or, when `skip` says it cannot be
    /// made, as the filesystem stores it: `D:\Users` for an NTFS junction).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Why `get` leaves this entry out (a link Linux cannot follow, data only
    /// Windows can read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
}

/// A read-only filesystem. Paths are absolute or relative to the root, `/`-separated.
pub trait Browse {
    /// What the filesystem is ("ext4", "ntfs").
    fn fs_name(&self) -> &'static str;
    /// The object `path` names, symlinks not followed.
    fn stat(&mut self, path: &str) -> Result<Entry>;
    /// The entries of directory `path`, without `.` and `..`, sorted by name.
    fn list(&mut self, path: &str) -> Result<Vec<Entry>>;
    /// Copies regular file `path` to `out`; returns the bytes copied.
    fn copy_to(&mut self, path: &str, out: &mut dyn Write) -> Result<u64>;
    /// Where symlink `path` points.
    fn read_link(&mut self, path: &str) -> Result<String>;
}

/// Copies a file to `out` in 1 MiB pieces: `read` fills the buffer from the file
/// (0 at its end) and maps its own errors; returns the bytes copied.
fn copy_stream(
    path: &str,
    out: &mut dyn Write,
    mut read: impl FnMut(&mut [u8]) -> Result<usize>,
) -> Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = read(&mut buf)?;
        let Some(piece) = buf.get(..got).filter(|p| !p.is_empty()) else {
            return Ok(n);
        };
        out.write_all(piece).map_err(|e| BrowseError::Write {
            path: path.to_string(),
            source: e,
        })?;
        n += got as u64;
    }
}

/// Opens the filesystem on `dev`, or says why not.
pub fn open(dev: Arc<dyn BlockDevice>) -> Result<Box<dyn Browse>> {
    let kind = crate::probe::probe(dev.as_ref()).map_or(FsKind::Unknown, |i| i.kind);
    // A filesystem whose primary was lost is read through one rebuilt in memory.
    let patches = crate::usedmap::primary_from_backup(dev.as_ref(), kind);
    let dev: Arc<dyn BlockDevice> = if patches.is_empty() {
        dev
    } else {
        Arc::new(crate::device::Patched::new(dev, patches))
    };
    match kind {
        FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4 => Ok(Box::new(ext::ExtFs::open(dev)?)),
        FsKind::Ntfs => Ok(Box::new(ntfs::NtfsFs::open(dev)?)),
        FsKind::Fat12 | FsKind::Fat16 | FsKind::Fat32 => Ok(Box::new(fat::FatFs::open(dev)?)),
        other => Err(BrowseError::Unsupported {
            device: dev.describe(),
            fs: other.name().to_string(),
        }),
    }
}

/// Opens the NTFS on `dev`, which may be borrowed: a backup reads the source's
/// Windows boot store while it holds the source only by reference.
pub fn open_ntfs<'a>(dev: Arc<dyn BlockDevice + 'a>) -> Result<Box<dyn Browse + 'a>> {
    Ok(Box::new(ntfs::NtfsFs::open(dev)?))
}

/// Path components, `.` and empty ones dropped.
pub(crate) fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// The last component of `path`, or `/` for the root.
pub(crate) fn base_name(path: &str) -> String {
    components(path)
        .last()
        .map_or("/".into(), |s| s.to_string())
}
