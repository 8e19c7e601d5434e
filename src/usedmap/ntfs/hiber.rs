//! Hibernation / Fast Startup and dirty-volume detection.
//!
//! Windows with Fast Startup hibernates the kernel instead of shutting down, leaving
//! cached metadata in `hiberfil.sys` that is not on the volume. Such a volume can be
//! imaged (the image is crash-consistent), but a person must be told, and it must
//! never be "fixed" on the source (running ntfsfix on it broke Windows for
//! rescuezilla#466 users). Walking the root directory's B+tree just to find one name is
//! a lot of parser for a warning, so the first MFT records are scanned for a
//! `$FILE_NAME` of `hiberfil.sys` whose parent is the root (record 5): Windows creates
//! it early, at install time.

use super::attribute::{AttrValue, AT_DATA, AT_FILE_NAME, AT_VOLUME_INFORMATION};
use super::mft_record::MftRecord;
use crate::bytes::{le16, le64, u8_at};

/// MFT records scanned for `hiberfil.sys` (16 MiB of records at 1 KiB each).
pub const HIBER_SCAN_RECORDS: u64 = 16384;

/// The root directory's MFT record number.
const FILE_ROOT: u64 = 5;

/// VOLUME_IS_DIRTY in `$VOLUME_INFORMATION.flags`.
pub const VOLUME_IS_DIRTY: u16 = 0x0001;

/// Offset of `flags` inside the `$VOLUME_INFORMATION` value.
pub const VOLUME_FLAGS_OFFSET: usize = 0x0A;

/// `$VOLUME_INFORMATION.flags` of the `$Volume` record (3), if present.
pub fn volume_flags(rec: &MftRecord) -> Option<u16> {
    match rec.unnamed(AT_VOLUME_INFORMATION).ok()??.value {
        AttrValue::Resident(v) => le16(v, VOLUME_FLAGS_OFFSET),
        AttrValue::NonResident { .. } => None,
    }
}

/// True when `rec` is an in-use file named `hiberfil.sys` in the root directory.
pub fn is_root_hiberfil(rec: &MftRecord) -> bool {
    if !rec.in_use() {
        return false;
    }
    let Ok(attrs) = rec.attributes() else {
        return false;
    };
    attrs.iter().any(|a| {
        if a.type_code != AT_FILE_NAME {
            return false;
        }
        let AttrValue::Resident(v) = a.value else {
            return false;
        };
        // parent_directory is a file reference: low 48 bits are the record number.
        let parent = le64(v, 0).unwrap_or(0) & 0x0000_FFFF_FFFF_FFFF;
        let n = usize::from(u8_at(v, 0x40).unwrap_or(0));
        let Some(name) = v.get(0x42..0x42 + 2 * n) else {
            return false;
        };
        let name: Vec<u16> = name
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        parent == FILE_ROOT && String::from_utf16_lossy(&name).eq_ignore_ascii_case("hiberfil.sys")
    })
}

/// The hiberfil header magics: "hibr"/"HIBR" (hibernated), "wake"/"WAKE" (resumed,
/// not yet cleared). ntfs-3g refuses to mount read-write on these.
pub fn is_hibernated_magic(head: &[u8]) -> bool {
    matches!(head.get(0..4), Some(b"hibr" | b"HIBR" | b"wake" | b"WAKE"))
}

/// The unnamed `$DATA` of `rec` as either resident bytes or (data_size, runs source).
pub fn data_attr(rec: &MftRecord) -> Option<super::attribute::Attribute<'_>> {
    rec.unnamed(AT_DATA).ok()?
}
