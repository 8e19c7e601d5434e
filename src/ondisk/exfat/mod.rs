//! exFAT on-disk structures, named as in Microsoft's "exFAT file system
//! specification": the main boot sector, the boot checksum sector that guards the
//! boot region, the FAT entries with cluster chain following, and the directory
//! entries the used map needs (allocation bitmap 0x81, up-case table 0x82, volume
//! label 0x83). Every field comes from a possibly damaged or crafted disk, so every
//! read is checked and every error names the structure and the field.
//!
//! Hand-written rather than taken from a crate: the exFAT crates on crates.io are
//! read-write filesystem implementations that want the whole volume behind their own
//! I/O trait and panic on malformed input, while imaging needs only these few
//! fields, decoded without trusting them.

pub mod boot_checksum;
pub mod boot_sector;
pub mod dir_entry;
mod error;
pub mod fat;

pub use boot_checksum::{boot_checksum, BOOT_REGION_SECTORS};
pub use boot_sector::BootSector;
pub use dir_entry::DirEntry;
pub use error::DecodeError;
pub use fat::{follow_chain, FatEntry};
