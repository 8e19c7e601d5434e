//! Attribute headers inside a FILE record (resident and non-resident).
//!
//! What the used map, the probe and rescue need: finding an attribute by type (and
//! name), its resident value, or its non-resident sizes and mapping pairs. Every
//! offset and length is checked against the record's `bytes_in_use` so a corrupt
//! header yields an error.

use super::record::MftRecord;
use super::runlist::{self, Origin, Run};
use super::{AttrFault, DecodeError, Mode};
use crate::bytes::{le16, le32, le64, u8_at};

pub const AT_FILE_NAME: u32 = 0x30;
pub const AT_VOLUME_NAME: u32 = 0x60;
pub const AT_VOLUME_INFORMATION: u32 = 0x70;
pub const AT_DATA: u32 = 0x80;
pub const AT_END: u32 = 0xFFFF_FFFF;

/// `flags` bits (ntfs-3g `ATTR_FLAGS`): a compressed or encrypted stream's clusters do
/// not hold its bytes as they read.
pub const ATTR_COMPRESSION_MASK: u16 = 0x00FF;
pub const ATTR_IS_ENCRYPTED: u16 = 0x4000;

pub enum AttrValue<'a> {
    Resident(&'a [u8]),
    NonResident {
        lowest_vcn: u64,
        highest_vcn: u64,
        data_size: u64,
        initialized_size: u64,
        /// Offset of the mapping pairs inside the record (for error messages).
        mapping_pairs_at: usize,
        mapping_pairs: &'a [u8],
    },
}

pub struct Attribute<'a> {
    pub type_code: u32,
    pub name_length: u8,
    /// The name in UTF-16LE (a named stream's name); empty when `name_length` is 0 or
    /// the name runs past the header.
    pub name: &'a [u8],
    /// `ATTR_FLAGS`: compressed, encrypted, sparse.
    pub flags: u16,
    /// Where the header starts in its record (for error messages).
    pub offset: usize,
    pub value: AttrValue<'a>,
}

impl MftRecord {
    /// All attributes of the record, in order; the first malformed header is an error.
    pub fn attributes(&self) -> Result<Vec<Attribute<'_>>, DecodeError> {
        let rec = self.data.get(..self.bytes_in_use).unwrap_or_default();
        let mut out = Vec::new();
        let mut off = self.attrs_offset;
        let bad = |offset: usize, fault: AttrFault| DecodeError::Attribute {
            record: self.number,
            offset,
            fault,
        };
        loop {
            let type_code = le32(rec, off).ok_or(bad(off, AttrFault::NoEndMarker))?;
            if type_code == AT_END {
                return Ok(out);
            }
            let length = le32(rec, off + 4).unwrap_or(0) as usize;
            // Every header is 8-byte aligned and at least 24 bytes; a zero length would loop.
            let end = off
                .checked_add(length)
                .filter(|_| length >= 24 && length % 8 == 0)
                .ok_or(bad(off, AttrFault::Length { length }))?;
            let a = rec
                .get(off..end)
                .ok_or(bad(off, AttrFault::Length { length }))?;
            let non_resident = u8_at(a, 8).unwrap_or(0);
            let name_length = u8_at(a, 9).unwrap_or(0);
            let name_at = usize::from(le16(a, 0x0A).unwrap_or(0));
            let name = a
                .get(name_at..name_at.saturating_add(usize::from(name_length) * 2))
                .unwrap_or_default();
            let flags = le16(a, 0x0C).unwrap_or(0);
            let value = if non_resident == 0 {
                let vlen = le32(a, 0x10).unwrap_or(0) as usize;
                let voff = usize::from(le16(a, 0x14).unwrap_or(0));
                let v = voff
                    .checked_add(vlen)
                    .and_then(|e| a.get(voff..e))
                    .ok_or(bad(
                        off,
                        AttrFault::ResidentValue {
                            value_offset: voff,
                            value_length: vlen,
                            length,
                        },
                    ))?;
                AttrValue::Resident(v)
            } else {
                let mp = usize::from(le16(a, 0x20).unwrap_or(0));
                let mapping_pairs = a.get(mp..).filter(|_| a.len() >= 0x40 && mp >= 0x40);
                let Some(mapping_pairs) = mapping_pairs else {
                    return Err(bad(
                        off,
                        AttrFault::MappingPairs {
                            mapping_pairs_offset: mp,
                            length,
                        },
                    ));
                };
                AttrValue::NonResident {
                    lowest_vcn: le64(a, 0x10).unwrap_or(0),
                    highest_vcn: le64(a, 0x18).unwrap_or(0),
                    data_size: le64(a, 0x30).unwrap_or(0),
                    initialized_size: le64(a, 0x38).unwrap_or(0),
                    mapping_pairs_at: off + mp,
                    mapping_pairs,
                }
            };
            out.push(Attribute {
                type_code,
                name_length,
                name,
                flags,
                offset: off,
                value,
            });
            off = end;
        }
    }

    /// The unnamed attribute of `type_code` (e.g. the file's main `$DATA`).
    pub fn unnamed(&self, type_code: u32) -> Result<Option<Attribute<'_>>, DecodeError> {
        Ok(self
            .attributes()?
            .into_iter()
            .find(|a| a.type_code == type_code && a.name_length == 0))
    }
}

impl Attribute<'_> {
    /// The runs of a non-resident attribute of record `record` (`None` when resident);
    /// `total_clusters` bounds them in `Strict` mode.
    pub fn runs(
        &self,
        record: u64,
        total_clusters: u64,
        mode: Mode,
    ) -> Option<Result<Vec<Run>, DecodeError>> {
        match self.value {
            AttrValue::Resident(_) => None,
            AttrValue::NonResident {
                lowest_vcn,
                mapping_pairs,
                mapping_pairs_at,
                ..
            } => Some(runlist::decode(
                mapping_pairs,
                lowest_vcn,
                total_clusters,
                mode,
                Origin {
                    record,
                    at: mapping_pairs_at,
                },
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::tests::build;
    use super::*;

    #[test]
    fn zero_length_attribute_is_an_error_not_a_loop() {
        let mut a = vec![0u8; 24];
        a[0..4].copy_from_slice(&AT_DATA.to_le_bytes());
        let rec = MftRecord::parse(0, build(&a)).unwrap();
        assert!(rec.attributes().is_err());
    }

    #[test]
    fn resident_value_past_end() {
        let mut a = vec![0u8; 24];
        a[0..4].copy_from_slice(&AT_DATA.to_le_bytes());
        a[4..8].copy_from_slice(&24u32.to_le_bytes());
        a[0x10..0x14].copy_from_slice(&100u32.to_le_bytes());
        a[0x14..0x16].copy_from_slice(&24u16.to_le_bytes());
        let rec = MftRecord::parse(0, build(&a)).unwrap();
        assert!(rec.attributes().is_err());
        a[0x10..0x14].copy_from_slice(&0u32.to_le_bytes());
        let rec = MftRecord::parse(0, build(&a)).unwrap();
        assert!(
            matches!(rec.unnamed(AT_DATA).unwrap().unwrap().value, AttrValue::Resident(v) if v.is_empty())
        );
    }
}
