//! One MFT FILE record: magic check and update-sequence fixups.
//!
//! NTFS writes the last two bytes of every 512-byte stride of a record into the update
//! sequence array and stamps the update sequence number there instead, so a torn write
//! shows as a mismatch. A record must be fixed up before any attribute in it is read,
//! and a mismatch means the record cannot be trusted.

use super::NtfsError;
use crate::bytes::{le16, le32};

/// Fixups always work on 512-byte strides, whatever the sector size.
const NTFS_BLOCK_SIZE: usize = 512;

/// MFT_RECORD_IN_USE in `flags`.
pub const MFT_RECORD_IN_USE: u16 = 0x0001;

/// A fixed-up FILE record.
pub struct MftRecord {
    pub number: u64,
    pub data: Vec<u8>,
    pub flags: u16,
    pub attrs_offset: usize,
    pub bytes_in_use: usize,
}

impl MftRecord {
    /// Validates the magic and applies fixups to `data` (one whole record).
    pub fn parse(number: u64, mut data: Vec<u8>) -> Result<Self, NtfsError> {
        let bad = |reason: String| NtfsError::MftRecord {
            record: number,
            reason,
        };
        if data.get(0..4) != Some(b"FILE".as_slice()) {
            return Err(bad(format!(
                "magic is {:02x?}, not FILE",
                data.get(0..4).unwrap_or(&[])
            )));
        }
        let size = data.len();
        let usa_ofs = usize::from(le16(&data, 0x04).unwrap_or(0));
        let usa_count = usize::from(le16(&data, 0x06).unwrap_or(0));
        let strides = size / NTFS_BLOCK_SIZE;
        if usa_count != strides + 1 || usa_ofs % 2 != 0 {
            return Err(bad(format!(
                "update sequence array offset {usa_ofs} count {usa_count} does not fit a {size}-byte record"
            )));
        }
        let usa_end = usa_ofs
            .checked_add(usa_count * 2)
            .filter(|e| *e <= NTFS_BLOCK_SIZE - 2)
            .ok_or_else(|| {
                bad(format!(
                    "update sequence array at {usa_ofs} runs past the first stride"
                ))
            })?;
        let usn = le16(&data, usa_ofs).unwrap_or(0);
        for i in 0..strides {
            let pos = (i + 1) * NTFS_BLOCK_SIZE - 2;
            let found = le16(&data, pos).unwrap_or(!usn);
            if found != usn {
                return Err(bad(format!(
                    "fixup mismatch in stride {i}: found {found:#06x}, expected {usn:#06x} (torn write)"
                )));
            }
            let src = usa_ofs + 2 + i * 2;
            if src + 2 > usa_end {
                return Err(bad("update sequence array too short".into()));
            }
            let (a, b) = (data[src], data[src + 1]);
            data[pos] = a;
            data[pos + 1] = b;
        }
        let flags = le16(&data, 0x16).unwrap_or(0);
        let attrs_offset = usize::from(le16(&data, 0x14).unwrap_or(0));
        let bytes_in_use = le32(&data, 0x18).unwrap_or(0) as usize;
        if bytes_in_use > size || attrs_offset < usa_end || attrs_offset >= bytes_in_use {
            return Err(bad(format!(
                "attrs_offset {attrs_offset} / bytes_in_use {bytes_in_use} do not fit a {size}-byte record"
            )));
        }
        Ok(MftRecord {
            number,
            data,
            flags,
            attrs_offset,
            bytes_in_use,
        })
    }

    pub fn in_use(&self) -> bool {
        self.flags & MFT_RECORD_IN_USE != 0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 1 KiB record with fixups applied as NTFS writes them and `attrs` at 0x38.
    pub(crate) fn build(attrs: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; 1024];
        r[0..4].copy_from_slice(b"FILE");
        r[0x04..0x06].copy_from_slice(&0x30u16.to_le_bytes());
        r[0x06..0x08].copy_from_slice(&3u16.to_le_bytes());
        r[0x14..0x16].copy_from_slice(&0x38u16.to_le_bytes());
        r[0x16..0x18].copy_from_slice(&1u16.to_le_bytes());
        let used = 0x38 + attrs.len() + 8;
        r[0x18..0x1C].copy_from_slice(&(used as u32).to_le_bytes());
        r[0x1C..0x20].copy_from_slice(&1024u32.to_le_bytes());
        r[0x38..0x38 + attrs.len()].copy_from_slice(attrs);
        r[0x38 + attrs.len()..0x38 + attrs.len() + 4]
            .copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        let usn = 0x0007u16;
        r[0x30..0x32].copy_from_slice(&usn.to_le_bytes());
        for i in 0..2 {
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
            Err(NtfsError::MftRecord { record: 9, .. })
        ));
        let mut nomagic = raw.clone();
        nomagic[0] = b'B';
        assert!(MftRecord::parse(1, nomagic).is_err());
        let mut badusa = raw;
        badusa[0x04..0x06].copy_from_slice(&0x1FEu16.to_le_bytes());
        assert!(MftRecord::parse(1, badusa).is_err());
        assert!(MftRecord::parse(1, b"FILE".to_vec()).is_err());
    }
}
