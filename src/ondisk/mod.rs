//! On-disk structures, one file per structure, each decoded in exactly one place and
//! shared by probe, usedmap, rescue and bootfix. Every field is read through
//! `crate::bytes`, so a short or crafted buffer is an error, never a panic.

pub mod btrfs;
pub mod exfat;
pub mod ext;
pub mod fat;
pub mod luks;
pub mod lvm;
pub mod ntfs;
pub mod xfs;
