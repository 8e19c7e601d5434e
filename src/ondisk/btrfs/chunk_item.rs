//! `btrfs_chunk` (CHUNK_ITEM, key (FIRST_CHUNK_TREE, 228, logical)): a logical range
//! and where its stripes are on the devices. Only the profiles a single device can
//! hold are mapped by the caller (SINGLE and DUP); the type bits are decoded here.

use super::DecodeError;
use crate::bytes::{array, le16, le64};

/// Fixed part before the stripes.
const FIXED_LEN: usize = 48;
const STRIPE_LEN: usize = 32;
const LENGTH: usize = 0;
const STRIPE_LEN_FIELD: usize = 16;
const TYPE: usize = 24;
const NUM_STRIPES: usize = 44;
const SUB_STRIPES: usize = 46;

pub const BTRFS_BLOCK_GROUP_DATA: u64 = 1 << 0;
pub const BTRFS_BLOCK_GROUP_SYSTEM: u64 = 1 << 1;
pub const BTRFS_BLOCK_GROUP_METADATA: u64 = 1 << 2;
pub const BTRFS_BLOCK_GROUP_DUP: u64 = 1 << 5;
/// RAID0, RAID1, RAID10, RAID5, RAID6, RAID1C3, RAID1C4: profiles that need several
/// devices (or spread stripes), not mapped here.
pub const BTRFS_BLOCK_GROUP_MULTI_DEVICE: u64 =
    (1 << 3) | (1 << 4) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stripe {
    pub devid: u64,
    pub offset: u64,
    pub dev_uuid: [u8; 16],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkItem {
    pub logical: u64,
    pub length: u64,
    pub stripe_len: u64,
    pub chunk_type: u64,
    pub sub_stripes: u16,
    pub stripes: Vec<Stripe>,
}

impl ChunkItem {
    /// Decodes the chunk at `logical` (its key's offset) from the start of `b`;
    /// returns it and the bytes it spans.
    pub fn parse(b: &[u8], logical: u64) -> Result<(Self, usize), DecodeError> {
        let bad = |field, value, why| DecodeError::ChunkItem {
            logical,
            field,
            value,
            why,
        };
        let short = |field| bad(field, b.len() as u64, "past the end of the item");
        let length = le64(b, LENGTH).ok_or_else(|| short("length"))?;
        if length == 0 {
            return Err(bad("length", 0, "zero"));
        }
        if logical.checked_add(length).is_none() {
            return Err(bad("length", length, "the chunk's end overflows"));
        }
        let stripe_len = le64(b, STRIPE_LEN_FIELD).ok_or_else(|| short("stripe_len"))?;
        let chunk_type = le64(b, TYPE).ok_or_else(|| short("type"))?;
        let num_stripes = le16(b, NUM_STRIPES).ok_or_else(|| short("num_stripes"))?;
        if num_stripes == 0 {
            return Err(bad("num_stripes", 0, "zero"));
        }
        let sub_stripes = le16(b, SUB_STRIPES).ok_or_else(|| short("sub_stripes"))?;
        let n = usize::from(num_stripes);
        let len = FIXED_LEN + n * STRIPE_LEN;
        if b.len() < len {
            return Err(bad(
                "num_stripes",
                n as u64,
                "more stripes than the item holds",
            ));
        }
        let stripes = (0..n)
            .map(|i| {
                let at = FIXED_LEN + i * STRIPE_LEN;
                Some(Stripe {
                    devid: le64(b, at)?,
                    offset: le64(b, at + 8)?,
                    dev_uuid: array(b, at + 16)?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| short("stripes"))?;
        Ok((
            ChunkItem {
                logical,
                length,
                stripe_len,
                chunk_type,
                sub_stripes,
                stripes,
            },
            len,
        ))
    }

    pub fn end(&self) -> u64 {
        // Checked at parse time.
        self.logical + self.length
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn chunk(length: u64, chunk_type: u64, stripes: &[(u64, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; FIXED_LEN + stripes.len() * STRIPE_LEN];
        b[0..8].copy_from_slice(&length.to_le_bytes());
        b[16..24].copy_from_slice(&65536u64.to_le_bytes());
        b[24..32].copy_from_slice(&chunk_type.to_le_bytes());
        b[44..46].copy_from_slice(&(stripes.len() as u16).to_le_bytes());
        for (i, (devid, off)) in stripes.iter().enumerate() {
            let at = FIXED_LEN + i * STRIPE_LEN;
            b[at..at + 8].copy_from_slice(&devid.to_le_bytes());
            b[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
        }
        b
    }

    #[test]
    fn decodes_a_dup_chunk_and_refuses_bad_fields() {
        let b = chunk(
            8 << 20,
            BTRFS_BLOCK_GROUP_SYSTEM | BTRFS_BLOCK_GROUP_DUP,
            &[(1, 1 << 20), (1, 9 << 20)],
        );
        let (c, len) = ChunkItem::parse(&b, 22 << 20).unwrap();
        assert_eq!(len, 48 + 64);
        assert_eq!(c.stripes[1].offset, 9 << 20);
        assert_eq!(c.end(), 30 << 20);
        let field = |b: &[u8], logical| match ChunkItem::parse(b, logical) {
            Err(DecodeError::ChunkItem { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(&b[..100], 0), "num_stripes");
        assert_eq!(field(&chunk(0, 1, &[(1, 0)]), 0), "length");
        assert_eq!(field(&chunk(10, 1, &[(1, 0)]), u64::MAX - 5), "length");
        assert_eq!(field(&chunk(10, 1, &[]), 0), "num_stripes");
        assert_eq!(field(&b[..10], 0), "stripe_len");
    }
}
