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

use crate::bytes::le16;
use crate::ondisk::ntfs::attribute::{
    AttrValue, Attribute, AT_DATA, AT_FILE_NAME, AT_VOLUME_INFORMATION,
};
use crate::ondisk::ntfs::{FileName, MftRecord, FILE_ROOT};

/// MFT records scanned for `hiberfil.sys` (16 MiB of records at 1 KiB each).
pub const HIBER_SCAN_RECORDS: u64 = 16384;

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
        FileName::parse(v).is_some_and(|f| {
            f.parent_record == FILE_ROOT && f.name.eq_ignore_ascii_case("hiberfil.sys")
        })
    })
}

/// The hiberfil header magics: "hibr"/"HIBR" (hibernated), "wake"/"WAKE" (resumed,
/// not yet cleared). ntfs-3g refuses to mount read-write on these.
pub fn is_hibernated_magic(head: &[u8]) -> bool {
    matches!(head.get(0..4), Some(b"hibr" | b"HIBR" | b"wake" | b"WAKE"))
}

/// The unnamed `$DATA` of `rec` as either resident bytes or (data_size, runs source).
pub fn data_attr(rec: &MftRecord) -> Option<Attribute<'_>> {
    rec.unnamed(AT_DATA).ok()?
}
