//! The 32-byte directory entries of the root directory that describe the volume
//! itself: the allocation bitmap (0x81), the up-case table (0x82) and the volume
//! label (0x83). File entries are not decoded: the used map reads allocation from
//! the bitmap, not from the files.

use super::DecodeError;
use crate::bytes::{le32, le64, u8_at};

pub const LEN: usize = 32;

pub const ENTRY_END_OF_DIRECTORY: u8 = 0x00;
pub const ENTRY_ALLOCATION_BITMAP: u8 = 0x81;
pub const ENTRY_UP_CASE_TABLE: u8 = 0x82;
pub const ENTRY_VOLUME_LABEL: u8 = 0x83;

const ENTRY_TYPE: usize = 0;
const BITMAP_FLAGS: usize = 1;
const CHARACTER_COUNT: usize = 1;
const VOLUME_LABEL: usize = 2;
const FIRST_CLUSTER: usize = 20;
const DATA_LENGTH: usize = 24;
/// The label holds at most 11 UTF-16 characters.
const MAX_LABEL_CHARS: u8 = 11;

/// Where a bitmap or up-case table lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    pub first_cluster: u32,
    pub data_length: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirEntry {
    /// Type 0x00: no entries follow.
    EndOfDirectory,
    /// Type 0x81; `second` is `BitmapFlags` bit 0 (the second bitmap of a TexFAT volume).
    AllocationBitmap { second: bool, stream: Stream },
    /// Type 0x82.
    UpCaseTable(Stream),
    /// Type 0x83: the label's UTF-16LE code units.
    VolumeLabel(Vec<u16>),
    /// Any other type (files, deleted entries, vendor entries): not needed here.
    Other(u8),
}

impl DirEntry {
    /// Decodes the entry at byte `offset` of the volume (for the error) from `b`,
    /// which must hold the 32 bytes. `cluster_count` bounds the cluster fields.
    pub fn parse(b: &[u8], offset: u64, cluster_count: u64) -> Result<Self, DecodeError> {
        let short = |kind, field| DecodeError::DirEntry {
            kind,
            offset,
            field,
            value: b.len() as u64,
            why: "the entry is shorter than 32 bytes",
        };
        if b.len() < LEN {
            return Err(short("entry", "length"));
        }
        let entry_type = u8_at(b, ENTRY_TYPE).ok_or_else(|| short("entry", "EntryType"))?;
        let stream = |kind: &'static str| -> Result<Stream, DecodeError> {
            let first_cluster =
                le32(b, FIRST_CLUSTER).ok_or_else(|| short(kind, "FirstCluster"))?;
            let data_length = le64(b, DATA_LENGTH).ok_or_else(|| short(kind, "DataLength"))?;
            let c = u64::from(first_cluster);
            if c < 2 || c > cluster_count + 1 {
                return Err(DecodeError::DirEntry {
                    kind,
                    offset,
                    field: "FirstCluster",
                    value: c,
                    why: "not a cluster of the heap",
                });
            }
            if data_length == 0 {
                return Err(DecodeError::DirEntry {
                    kind,
                    offset,
                    field: "DataLength",
                    value: 0,
                    why: "empty",
                });
            }
            Ok(Stream {
                first_cluster,
                data_length,
            })
        };
        Ok(match entry_type {
            ENTRY_END_OF_DIRECTORY => DirEntry::EndOfDirectory,
            ENTRY_ALLOCATION_BITMAP => {
                let flags = u8_at(b, BITMAP_FLAGS)
                    .ok_or_else(|| short("allocation bitmap", "BitmapFlags"))?;
                DirEntry::AllocationBitmap {
                    second: flags & 1 != 0,
                    stream: stream("allocation bitmap")?,
                }
            }
            ENTRY_UP_CASE_TABLE => DirEntry::UpCaseTable(stream("up-case table")?),
            ENTRY_VOLUME_LABEL => {
                let n = u8_at(b, CHARACTER_COUNT)
                    .ok_or_else(|| short("volume label", "CharacterCount"))?;
                if n > MAX_LABEL_CHARS {
                    return Err(DecodeError::DirEntry {
                        kind: "volume label",
                        offset,
                        field: "CharacterCount",
                        value: u64::from(n),
                        why: "above 11",
                    });
                }
                let units = (0..usize::from(n))
                    .map(|i| crate::bytes::le16(b, VOLUME_LABEL + 2 * i))
                    .collect::<Option<Vec<u16>>>()
                    .ok_or_else(|| short("volume label", "VolumeLabel"))?;
                DirEntry::VolumeLabel(units)
            }
            other => DirEntry::Other(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(t: u8, flags: u8, first: u32, len: u64) -> Vec<u8> {
        let mut e = vec![0u8; LEN];
        e[0] = t;
        e[1] = flags;
        e[20..24].copy_from_slice(&first.to_le_bytes());
        e[24..32].copy_from_slice(&len.to_le_bytes());
        e
    }

    #[test]
    fn decodes_bitmap_upcase_and_label() {
        let b = entry(0x81, 0, 2, 1984);
        let want = Stream {
            first_cluster: 2,
            data_length: 1984,
        };
        assert_eq!(
            DirEntry::parse(&b, 0, 100).unwrap(),
            DirEntry::AllocationBitmap {
                second: false,
                stream: want
            }
        );
        let b = entry(0x82, 0, 3, 5836);
        assert!(matches!(
            DirEntry::parse(&b, 0, 100),
            Ok(DirEntry::UpCaseTable(_))
        ));
        let mut b = entry(0x83, 2, 0, 0);
        b[2..6].copy_from_slice(&[b'O', 0, b'K', 0]);
        assert_eq!(
            DirEntry::parse(&b, 0, 100).unwrap(),
            DirEntry::VolumeLabel(vec![u16::from(b'O'), u16::from(b'K')])
        );
        assert_eq!(
            DirEntry::parse(&[0; 32], 0, 100).unwrap(),
            DirEntry::EndOfDirectory
        );
        assert_eq!(
            DirEntry::parse(&entry(0x85, 0, 0, 0), 0, 100).unwrap(),
            DirEntry::Other(0x85)
        );
    }

    #[test]
    fn bad_entries_name_the_field() {
        let field = |b: &[u8]| match DirEntry::parse(b, 64, 100) {
            Err(DecodeError::DirEntry { field, offset, .. }) => {
                assert_eq!(offset, 64);
                field
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(field(&entry(0x81, 0, 1, 10)), "FirstCluster");
        assert_eq!(field(&entry(0x81, 0, 102, 10)), "FirstCluster");
        assert_eq!(field(&entry(0x82, 0, 5, 0)), "DataLength");
        assert_eq!(field(&entry(0x83, 12, 0, 0)), "CharacterCount");
        assert_eq!(field(&[0x81; 31]), "length");
    }
}
