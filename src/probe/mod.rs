//! Recognising what a partition holds from its superblock, without mounting it.
//!
//! The kind decides how a partition is imaged (used-block map or raw) and what a
//! person sees in the disk picker, so probes must never guess: each checks magic
//! numbers and basic sanity, and an unrecognised partition is `Unknown`, imaged raw.

use serde::{Deserialize, Serialize};

/// The filesystem (or container) kinds ironclone recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    Ext2,
    Ext3,
    Ext4,
    Ntfs,
    Fat12,
    Fat16,
    Fat32,
    Exfat,
    Swap,
    Luks,
    Lvm2,
    Btrfs,
    Xfs,
    Bitlocker,
    Unknown,
}

impl FsKind {
    pub fn is_ext(self) -> bool {
        matches!(self, FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4)
    }
    pub fn is_fat(self) -> bool {
        matches!(self, FsKind::Fat12 | FsKind::Fat16 | FsKind::Fat32)
    }
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext2 => "ext2",
            FsKind::Ext3 => "ext3",
            FsKind::Ext4 => "ext4",
            FsKind::Ntfs => "ntfs",
            FsKind::Fat12 => "fat12",
            FsKind::Fat16 => "fat16",
            FsKind::Fat32 => "fat32",
            FsKind::Exfat => "exfat",
            FsKind::Swap => "swap",
            FsKind::Luks => "luks",
            FsKind::Lvm2 => "lvm2",
            FsKind::Btrfs => "btrfs",
            FsKind::Xfs => "xfs",
            FsKind::Bitlocker => "bitlocker",
            FsKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for FsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a superblock probe learned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsInfo {
    pub kind: FsKind,
    pub label: Option<String>,
    /// In the form `blkid` prints (e.g. `1b2c...-...` for ext4, `A1B2C3D4E5F6A7B8` for NTFS,
    /// `ABCD-1234` for FAT).
    pub uuid: Option<String>,
}
