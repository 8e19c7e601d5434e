//! Which bytes of a partition a restore must write, read from the filesystem's own
//! allocation metadata (ext block bitmaps, NTFS `$Bitmap`, FAT tables, XFS free-space B+trees).
//!
//! Imaging only these bytes is what makes a backup fast and small. A map must cover
//! everything the filesystem needs to be whole after restore: metadata, journal,
//! backup superblocks and data. When a filesystem is not understood or fails
//! validation, the whole partition is imaged (`raw`) and the reason is kept.

pub mod btrfs;
pub mod exfat;
pub(crate) mod ext;
mod extents;
pub mod fat;
mod files;
pub mod lvm;
pub mod ntfs;
mod primary;
pub mod swap;
pub mod xfs;

pub use btrfs::{map_btrfs, BtrfsError};
pub use exfat::{map_exfat, ExfatError};
pub use ext::{map_ext, mark_tails_unzeroed, ExtError};
pub use extents::{merged, ByteExtent, ExtentBuilder};
pub use fat::{map_fat, FatError};
pub use files::{file_runs, FileRun, FileRuns, MAX_RUNS};
pub use lvm::{map_lvm, LvLayout, LvmLayout};
pub use ntfs::{map_ntfs, NtfsError};
pub use primary::{primary_from_backup, PrimaryLost};
pub use swap::{map_swap, SwapError};
pub use xfs::{map_xfs, XfsError};

use serde::{Deserialize, Serialize};

/// The used-block map of one filesystem. Offsets are bytes from the partition start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsedMap {
    /// The filesystem's allocation unit (block or cluster) in bytes; the sector size for raw.
    pub block_size: u64,
    /// The filesystem's size in bytes (the partition size for raw).
    pub total_bytes: u64,
    /// Allocation units marked used, times `block_size` (metadata included). This is the
    /// figure compared with `dumpe2fs` and partclone.
    pub used_bytes: u64,
    /// Sorted, merged, non-overlapping byte ranges to copy. May include bytes outside
    /// the allocation grid (e.g. the NTFS backup boot sector).
    pub extents: Vec<ByteExtent>,
    /// True when the map is the whole partition because the filesystem was not understood.
    pub raw: bool,
    pub raw_reason: Option<String>,
    /// Things a person should know: free-count mismatches, unreplayed journals, hibernation.
    pub warnings: Vec<String>,
    /// Set when the primary superblock / boot sector was lost and the map was read
    /// through a backup copy (absent in images made before this field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_lost: Option<PrimaryLost>,
    /// An LVM2 PV's volume group and what each LV held (absent for anything else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lvm: Option<LvmLayout>,
    /// The sector size the filesystem itself is built on (`sb_sectsize` for XFS,
    /// `BytesPerSectorShift` for exFAT): the largest logical sector a target may have
    /// for it to be copied as is. It can be larger than the source disk's sector (an
    /// XFS made with 4096-byte sectors on a 512e disk fits a 4Kn disk). Absent where
    /// the source disk's sector is the limit (and in images made before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_sector: Option<u32>,
}

impl UsedMap {
    /// The whole device, for filesystems that are not understood.
    pub fn raw(size: u64, sector_size: u32, reason: impl Into<String>) -> Self {
        UsedMap {
            block_size: u64::from(sector_size.max(1)),
            total_bytes: size,
            used_bytes: size,
            extents: if size > 0 {
                vec![ByteExtent {
                    offset: 0,
                    len: size,
                }]
            } else {
                vec![]
            },
            raw: true,
            raw_reason: Some(reason.into()),
            warnings: vec![],
            primary_lost: None,
            lvm: None,
            fs_sector: None,
        }
    }

    /// Sum of the extents' lengths: how many bytes a backup actually reads.
    pub fn copy_bytes(&self) -> u64 {
        self.extents.iter().map(|e| e.len).sum()
    }
}

/// Why a filesystem is imaged whole. The text is kept in the image (`raw_reason`).
#[derive(Debug, thiserror::Error)]
enum Unmapped {
    #[error(transparent)]
    Ext(Box<ExtError>),
    #[error(transparent)]
    Ntfs(#[from] NtfsError),
    #[error(transparent)]
    Fat(#[from] FatError),
    #[error(transparent)]
    Exfat(#[from] ExfatError),
    #[error(transparent)]
    Btrfs(#[from] BtrfsError),
    #[error(transparent)]
    Swap(#[from] SwapError),
    #[error(transparent)]
    Lvm(#[from] crate::ondisk::lvm::LvmError),
    #[error(transparent)]
    Xfs(#[from] XfsError),
    #[error("no filesystem recognised")]
    Unknown,
    #[error("{0} is encrypted: its used blocks cannot be known without the key")]
    Encrypted(crate::probe::FsKind),
    /// Worded to stand alone in the backup summary and `inspect` (no "raw (...)" around it).
    #[error("encrypted (LUKS{0}), imaged raw: no key given")]
    Locked(u16),
    #[error("encrypted (LUKS), imaged raw: {0}")]
    LuksHeader(#[from] crate::ondisk::luks::LuksError),
    #[error("{0} has no used-block map yet")]
    NoMap(crate::probe::FsKind),
}

/// Maps the used blocks of a filesystem of `kind` on `dev`, or says why it cannot.
fn try_map_filesystem(
    dev: &dyn crate::device::BlockDevice,
    kind: crate::probe::FsKind,
) -> Result<UsedMap, Unmapped> {
    use crate::probe::FsKind;
    Ok(match kind {
        k if k.is_ext() => map_ext(dev).map_err(|e| Unmapped::Ext(Box::new(e)))?,
        FsKind::Ntfs => map_ntfs(dev)?,
        k if k.is_fat() => map_fat(dev)?,
        FsKind::Exfat => map_exfat(dev)?,
        FsKind::Btrfs => map_btrfs(dev)?,
        FsKind::Swap => map_swap(dev)?,
        FsKind::Lvm2 => map_lvm(dev)?,
        FsKind::Xfs => map_xfs(dev)?,
        FsKind::Unknown => return Err(Unmapped::Unknown),
        FsKind::Luks => {
            let h = crate::ondisk::luks::read_header(dev)?;
            return Err(Unmapped::Locked(h.version));
        }
        FsKind::Bitlocker => return Err(Unmapped::Encrypted(kind)),
        other => return Err(Unmapped::NoMap(other)),
    })
}

/// Maps the used blocks of a filesystem of `kind` on `dev`. Never fails: a filesystem
/// that is not understood, or whose metadata fails validation, is imaged whole, and
/// the reason is kept so the person sees why the image is larger than expected.
pub fn map_filesystem(dev: &dyn crate::device::BlockDevice, kind: crate::probe::FsKind) -> UsedMap {
    try_map_filesystem(dev, kind)
        .unwrap_or_else(|why| UsedMap::raw(dev.size(), dev.logical_sector_size(), why.to_string()))
}
