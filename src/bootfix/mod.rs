//! Boot repair after a restore: the small, exact byte patches that make a disk boot
//! again once its partitions moved or it landed on other hardware.
//!
//! Each file owns one on-disk structure (GRUB's boot.img and diskboot blocklist, the
//! NTFS and FAT boot sectors, EFI load options) or one place the firmware looks
//! (efivarfs, the ESP's fallback path). The functions work on `&dyn BlockDevice` or
//! byte slices and report what they changed, so the restore can print the repairs
//! line by line and the tests can check them without a disk.

pub mod efi_load_option;
pub mod efivars;
mod error;
pub mod esp_fallback;
pub mod fat_geometry;
pub mod grub_bios;
pub mod ntfs_geometry;

pub use error::BootfixError;

/// Little-endian readers over a slice that fail with the field name instead of panicking.
pub(crate) fn le_u16(buf: &[u8], at: usize, field: &'static str) -> Result<u16, BootfixError> {
    buf.get(at..at.saturating_add(2))
        .and_then(|b| b.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or(BootfixError::Truncated { field, at })
}

pub(crate) fn le_u32(buf: &[u8], at: usize, field: &'static str) -> Result<u32, BootfixError> {
    buf.get(at..at.saturating_add(4))
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(BootfixError::Truncated { field, at })
}

pub(crate) fn le_u64(buf: &[u8], at: usize, field: &'static str) -> Result<u64, BootfixError> {
    buf.get(at..at.saturating_add(8))
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or(BootfixError::Truncated { field, at })
}

/// Overwrites `bytes.len()` bytes at `at`, failing (not panicking) when out of range.
pub(crate) fn put(
    buf: &mut [u8],
    at: usize,
    bytes: &[u8],
    field: &'static str,
) -> Result<(), BootfixError> {
    let end = at
        .checked_add(bytes.len())
        .ok_or(BootfixError::Truncated { field, at })?;
    buf.get_mut(at..end)
        .ok_or(BootfixError::Truncated { field, at })?
        .copy_from_slice(bytes);
    Ok(())
}
