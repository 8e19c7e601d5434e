//! Naming the damage: which files and which filesystem structures own the bytes a
//! rescue read could not recover.
//!
//! "12 KiB unreadable at byte 734003200" tells a user nothing; "/home/ann/thesis.odt
//! lost 4 KiB" or "the inode table of group 3 is hit" tells them what to check. The
//! walks here (ext2/3/4 inode tables and directories, NTFS MFT records) decode their
//! structures through `crate::ondisk` in its lenient mode, are bounded everywhere, and
//! read the source with read errors tolerated (it is a damaged disk, after all).

pub mod bad;
pub mod ext;
pub mod ntfs;

use crate::device::BlockDevice;
use crate::rescue::BadRange;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A file (inode or MFT record) that owns unreadable bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamagedFile {
    /// Inode number (ext) or MFT record number (NTFS).
    pub id: u64,
    /// Full path from the root, when a directory walk found one.
    pub path: Option<String>,
    /// Unreadable bytes inside the file's data (or its mapping blocks).
    pub bad_bytes: u64,
    /// The file's own record (inode / MFT record) is unreadable: its data is lost
    /// even if its blocks are fine.
    pub record_hit: bool,
}

/// A filesystem structure that owns unreadable bytes, said plainly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamagedMeta {
    /// e.g. "superblock", "group descriptors", "inode table of group 3 (inodes 24577-32768)",
    /// "journal (inode 8)", "$MFT record 0..15".
    pub what: String,
    pub bad_bytes: u64,
}

/// Who owns the unreadable bytes of one filesystem.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamageReport {
    pub fs: String,
    pub files: Vec<DamagedFile>,
    pub metadata: Vec<DamagedMeta>,
    /// Unreadable bytes nobody owns (free space, or ownership not determinable).
    pub unowned_bytes: u64,
    /// What could not be examined (unreadable tables, limits reached).
    pub warnings: Vec<String>,
}

#[derive(Debug, Error)]
pub enum OwnerError {
    #[error("{device}: not an {fs} filesystem: {why}")]
    NotFs {
        device: String,
        fs: &'static str,
        why: String,
    },
    #[error("{device}: {fs} {field} = {value} is not usable")]
    BadField {
        device: String,
        fs: &'static str,
        field: &'static str,
        value: u64,
    },
    #[error(transparent)]
    Ext(#[from] crate::ondisk::ext::ExtDecodeError),
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
}

/// Names the owners of `bad` (byte ranges relative to the partition `dev`) for the
/// filesystems that are understood (ext2/3/4, NTFS). `None` for other filesystems.
pub fn map_owners(
    dev: &dyn BlockDevice,
    bad: &[BadRange],
) -> Result<Option<DamageReport>, OwnerError> {
    if ext::looks_like_ext(dev) {
        return ext::ext_owners(dev, bad).map(Some);
    }
    if ntfs::looks_like_ntfs(dev) {
        return ntfs::ntfs_owners(dev, bad).map(Some);
    }
    Ok(None)
}

/// Warnings, capped: a garbage table could otherwise produce millions of them.
#[derive(Default)]
pub(crate) struct Warnings {
    list: Vec<String>,
    dropped: u64,
}

const MAX_WARNINGS: usize = 100;

impl Warnings {
    pub(crate) fn push(&mut self, s: String) {
        if self.list.len() < MAX_WARNINGS {
            self.list.push(s);
        } else {
            self.dropped += 1;
        }
    }

    pub(crate) fn into_vec(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.list.push(format!(
                "{} not shown",
                crate::units::count(self.dropped, "more warning", "more warnings")
            ));
        }
        self.list
    }
}
