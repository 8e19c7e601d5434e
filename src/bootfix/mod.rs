//! Boot repair after a restore: the small, exact byte patches that make a disk boot
//! again once its partitions moved or it landed on other hardware.
//!
//! Each file owns one on-disk structure (GRUB's boot.img and diskboot blocklist, the
//! NTFS and FAT boot sectors, EFI load options) or one place the firmware looks
//! (efivarfs, the ESP's fallback path). The functions work on `&dyn BlockDevice` or
//! byte slices and report what they changed, so the restore can print the repairs
//! line by line and the tests can check them without a disk.

pub mod bcd;
pub mod efi_load_option;
pub mod efivars;
mod error;
pub mod esp_fallback;
pub mod exfat_geometry;
pub mod fat_geometry;
pub mod grub_bios;
mod hive_check;
pub mod ntfs_geometry;

pub use error::BootfixError;

use crate::bytes;

/// `crate::bytes`'s checked readers, failing with the field's name instead of `None`.
pub(crate) fn le_u16(buf: &[u8], at: usize, field: &'static str) -> Result<u16, BootfixError> {
    bytes::le16(buf, at).ok_or(BootfixError::Truncated { field, at })
}

pub(crate) fn le_u32(buf: &[u8], at: usize, field: &'static str) -> Result<u32, BootfixError> {
    bytes::le32(buf, at).ok_or(BootfixError::Truncated { field, at })
}

pub(crate) fn le_u64(buf: &[u8], at: usize, field: &'static str) -> Result<u64, BootfixError> {
    bytes::le64(buf, at).ok_or(BootfixError::Truncated { field, at })
}

/// Overwrites `data.len()` bytes at `at`, failing (not panicking) when out of range.
pub(crate) fn put(
    buf: &mut [u8],
    at: usize,
    data: &[u8],
    field: &'static str,
) -> Result<(), BootfixError> {
    if bytes::put(buf, at, data) {
        Ok(())
    } else {
        Err(BootfixError::Truncated { field, at })
    }
}
