//! One MFT FILE record: magic check and update-sequence fixups.
//!
//! NTFS writes the last two bytes of every 512-byte stride of a record into the update
//! sequence array and stamps the update sequence number there instead, so a torn write
//! shows as a mismatch. A record must be fixed up before any attribute in it is read,
//! and a mismatch means the record cannot be trusted.

use super::{DecodeError, RecordFault};
use crate::bytes::{array, le16, le32, le64, put};

/// Fixups always work on 512-byte strides, whatever the sector size (ntfs-3g
/// `NTFS_BLOCK_SIZE`): a volume with 4096-byte sectors still has 9 entries in a
/// 4 KiB record's update sequence array.
const NTFS_BLOCK_SIZE: usize = 512;

/// MFT_RECORD_IN_USE in `flags`.
pub const MFT_RECORD_IN_USE: u16 = 0x0001;
/// MFT_RECORD_IS_DIRECTORY in `flags` (the record holds a `$I30` index).
pub const MFT_RECORD_IS_DIRECTORY: u16 = 0x0002;

/// The low 48 bits of a file reference (`MREF`) are the record number; the high 16
/// are the sequence number.
pub const MREF_MASK: u64 = 0x0000_FFFF_FFFF_FFFF;

/// A fixed-up FILE record.
pub struct MftRecord {
    pub number: u64,
    pub data: Vec<u8>,
    pub flags: u16,
    /// The base record this extension record belongs to (0 for a base record).
    pub base_mft_record: u64,
    pub attrs_offset: usize,
    pub bytes_in_use: usize,
}

impl MftRecord {
    /// Validates the magic and applies fixups to `data` (one whole record).
    pub fn parse(number: u64, mut data: Vec<u8>) -> Result<Self, DecodeError> {
        let bad = |fault: RecordFault| DecodeError::MftRecord {
            record: number,
            fault,
        };
        let magic = array::<4>(&data, 0).unwrap_or_default();
        if &magic != b"FILE" {
            return Err(bad(RecordFault::Magic { found: magic }));
        }
        let size = data.len();
        let usa_ofs = usize::from(le16(&data, 0x04).unwrap_or(0));
        let usa_count = usize::from(le16(&data, 0x06).unwrap_or(0));
        let strides = size / NTFS_BLOCK_SIZE;
        if strides == 0 || usa_count != strides + 1 || usa_ofs % 2 != 0 {
            return Err(bad(RecordFault::UsaShape {
                usa_ofs,
                usa_count,
                size,
            }));
        }
        // The array must lie in the first stride, before that stride's own fixup.
        let usa_end = usa_ofs
            .checked_add(usa_count * 2)
            .filter(|e| *e <= NTFS_BLOCK_SIZE - 2)
            .ok_or(bad(RecordFault::UsaPastStride { usa_ofs }))?;
        let usn = le16(&data, usa_ofs).unwrap_or(0);
        for stride in 0..strides {
            let at = (stride + 1) * NTFS_BLOCK_SIZE - 2;
            let found = le16(&data, at).unwrap_or(!usn);
            if found != usn {
                return Err(bad(RecordFault::TornWrite {
                    stride,
                    at,
                    found,
                    usn,
                }));
            }
            // Inside the array: checked against usa_end above.
            let saved = array::<2>(&data, usa_ofs + 2 + stride * 2).unwrap_or_default();
            put(&mut data, at, &saved);
        }
        let flags = le16(&data, 0x16).unwrap_or(0);
        let attrs_offset = usize::from(le16(&data, 0x14).unwrap_or(0));
        let bytes_in_use = le32(&data, 0x18).unwrap_or(0) as usize;
        if bytes_in_use > size || attrs_offset < usa_end || attrs_offset >= bytes_in_use {
            return Err(bad(RecordFault::Bounds {
                attrs_offset,
                bytes_in_use,
                size,
            }));
        }
        Ok(MftRecord {
            number,
            flags,
            base_mft_record: le64(&data, 0x20).unwrap_or(0) & MREF_MASK,
            data,
            attrs_offset,
            bytes_in_use,
        })
    }

    pub fn in_use(&self) -> bool {
        self.flags & MFT_RECORD_IN_USE != 0
    }

    pub fn is_directory(&self) -> bool {
        self.flags & MFT_RECORD_IS_DIRECTORY != 0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 1 KiB record with fixups applied as NTFS writes them and `attrs` at 0x38.
    pub(crate) fn build(attrs: &[u8]) -> Vec<u8> {
        build_sized(attrs, 1024)
    }

    /// The same for a record of `size` bytes (4096 on a volume with 4 KiB sectors).
    pub(crate) fn build_sized(attrs: &[u8], size: usize) -> Vec<u8> {
        let strides = size / 512;
        let mut r = vec![0u8; size];
        r[0..4].copy_from_slice(b"FILE");
        r[0x04..0x06].copy_from_slice(&0x30u16.to_le_bytes());
        r[0x06..0x08].copy_from_slice(&(strides as u16 + 1).to_le_bytes());
        let attrs_at = (0x32 + 2 * strides).next_multiple_of(8);
        r[0x14..0x16].copy_from_slice(&(attrs_at as u16).to_le_bytes());
        r[0x16..0x18].copy_from_slice(&1u16.to_le_bytes());
        let used = attrs_at + attrs.len() + 8;
        r[0x18..0x1C].copy_from_slice(&(used as u32).to_le_bytes());
        r[0x1C..0x20].copy_from_slice(&(size as u32).to_le_bytes());
        r[attrs_at..attrs_at + attrs.len()].copy_from_slice(attrs);
        r[attrs_at + attrs.len()..attrs_at + attrs.len() + 4]
            .copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        let usn = 0x0007u16;
        r[0x30..0x32].copy_from_slice(&usn.to_le_bytes());
        for i in 0..strides {
            let pos = (i + 1) * 512 - 2;
            let (a, b) = (r[pos], r[pos + 1]);
            r[0x32 + i * 2] = a;
            r[0x33 + i * 2] = b;
            r[pos..pos + 2].copy_from_slice(&usn.to_le_bytes());
        }
        r
    }

    #[test]
    fn fixups_applied_and_checked() {
        let mut attrs = vec![0u8; 0x200];
        attrs[0x200 - 0x38 - 2] = 0xAB; // lands on the first stride's last two bytes
        let raw = build(&attrs);
        assert_eq!(raw[510], 0x07);
        let rec = MftRecord::parse(0, raw.clone()).unwrap();
        assert_eq!(rec.data[510], 0xAB);
        assert!(rec.in_use());
        let mut torn = raw.clone();
        torn[1022] = 0x99;
        assert!(matches!(
            MftRecord::parse(9, torn),
            Err(DecodeError::MftRecord {
                record: 9,
                fault: RecordFault::TornWrite { stride: 1, .. }
            })
        ));
        let mut nomagic = raw.clone();
        nomagic[0] = b'B';
        assert!(MftRecord::parse(1, nomagic).is_err_and(|e| e.is_not_a_record()));
        let mut badusa = raw;
        badusa[0x04..0x06].copy_from_slice(&0x1FEu16.to_le_bytes());
        assert!(MftRecord::parse(1, badusa).is_err());
        assert!(MftRecord::parse(1, b"FILE".to_vec()).is_err());
    }

    #[test]
    fn a_4k_record_is_fixed_up_in_512_byte_strides() {
        // mkntfs -s 4096: 4 KiB records, 9 update sequence entries (1 + 8 strides).
        let raw = build_sized(&[], 4096);
        assert_eq!(le16(&raw, 0x06), Some(9));
        let rec = MftRecord::parse(0, raw.clone()).unwrap();
        assert_eq!(rec.bytes_in_use, 0x48 + 8);
        let mut torn = raw;
        torn[7 * 512 - 2] ^= 1;
        assert!(matches!(
            MftRecord::parse(0, torn),
            Err(DecodeError::MftRecord {
                fault: RecordFault::TornWrite { stride: 6, .. },
                ..
            })
        ));
    }
}
