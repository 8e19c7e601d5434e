//! XFS on-disk structures, fields named as in the kernel's `fs/xfs/libxfs/xfs_format.h`:
//! the superblock, the AG free-space header (AGF), the AG free list (AGFL) and the
//! short-form B+tree blocks of the by-block-number free-space tree, and the internal
//! log's record headers (to tell a clean log from a dirty one). Everything is big-endian except the v5 CRC
//! fields, which the kernel stores little-endian.
//!
//! The CRC is checked with the `crc` crate already used for ext4's crc32c (the
//! Castagnoli polynomial, `CRC_32_ISCSI`): XFS stores the standard finalised crc32c of
//! the buffer with its own CRC field taken as zero.

pub mod agf;
pub mod agfl;
pub mod btree;
mod crc;
mod error;
pub mod log;
pub mod superblock;

pub use agf::Agf;
pub use btree::{AllocRec, BtreeBlock};
pub use error::XfsDecodeError;
pub use superblock::Superblock;
