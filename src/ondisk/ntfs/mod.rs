//! NTFS on-disk structures: the boot sector, MFT (FILE) records with their update
//! sequence fixups, attribute headers, run lists and `$FILE_NAME` values. Field names
//! follow ntfs-3g's `layout.h`; the split follows the `ntfs` crate (one file per
//! structure). Offsets come from a possibly damaged or crafted disk, so every read is
//! checked and every error names the structure and the field or byte.
//!
//! Two strictnesses, chosen by the caller, over one parser: imaging (usedmap) wants
//! `Strict`, where every field must be consistent with the volume, because a wrong map
//! loses data silently; rescue and probing want `Lenient`, where only what is needed
//! to locate records is checked, because a damaged volume must still be named.

pub mod attribute;
pub mod boot_sector;
mod error;
pub mod file_name;
pub mod record;
pub mod runlist;

pub use attribute::{AttrValue, Attribute};
pub use boot_sector::BootSector;
pub use error::{AttrFault, DecodeError, RecordFault, RunFault};
pub use file_name::FileName;
pub use record::MftRecord;
pub use runlist::Run;

/// How much a decoder insists on: see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every field must be consistent with the volume (imaging, boot repair).
    Strict,
    /// Only what locating records and runs needs (rescue of damaged metadata, probing).
    Lenient,
}

/// Well-known MFT record numbers (ntfs-3g `NTFS_SYSTEM_FILES`).
pub const FILE_MFT: u64 = 0;
pub const FILE_VOLUME: u64 = 3;
pub const FILE_ROOT: u64 = 5;
pub const FILE_BITMAP: u64 = 6;
