//! ext2/3/4 on-disk structures, fields named as in the kernel's `fs/ext4/ext4.h`: the
//! superblock (and where its backups are), the group descriptors and the feature flags.
//! Every read goes through `crate::bytes`; a short or invalid buffer is an
//! `ExtDecodeError`, never a zero.

pub mod backup;
mod error;
pub mod features;
pub mod group_desc;
pub mod layout;
pub mod superblock;

pub use error::ExtDecodeError;
pub use group_desc::GroupDesc;
pub use superblock::{Check, Superblock};
