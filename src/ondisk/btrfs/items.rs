//! The leaf items the used map reads: ROOT_ITEM (where a tree's root block is),
//! EXTENT_ITEM / METADATA_ITEM (an allocated extent: data, or a tree block with
//! skinny metadata) and BLOCK_GROUP_ITEM (bytes used in a chunk, to cross-check).

use super::DecodeError;
use crate::bytes::{le64, u8_at};

/// `btrfs_root_item`: `bytenr` and `level` of the tree's root block.
const ROOT_ITEM_BYTENR: usize = 176;
const ROOT_ITEM_LEVEL: usize = 238;
/// `btrfs_extent_item`: refs, generation, flags.
const EXTENT_ITEM_FLAGS: usize = 16;
pub const BTRFS_EXTENT_FLAG_DATA: u64 = 1;
pub const BTRFS_EXTENT_FLAG_TREE_BLOCK: u64 = 2;
/// `btrfs_block_group_item`: used, chunk_objectid, flags.
const BLOCK_GROUP_USED: usize = 0;
const BLOCK_GROUP_FLAGS: usize = 16;

fn err(item: &'static str, bytenr: u64, slot: usize, why: &'static str) -> DecodeError {
    DecodeError::Item {
        item,
        bytenr,
        slot,
        why,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootItem {
    pub bytenr: u64,
    pub level: u8,
}

impl RootItem {
    /// `leaf` and `slot` name the item in errors.
    pub fn parse(b: &[u8], leaf: u64, slot: usize) -> Result<Self, DecodeError> {
        Ok(RootItem {
            bytenr: le64(b, ROOT_ITEM_BYTENR).ok_or(err("ROOT_ITEM", leaf, slot, "too short"))?,
            level: u8_at(b, ROOT_ITEM_LEVEL).ok_or(err("ROOT_ITEM", leaf, slot, "too short"))?,
        })
    }
}

/// The `flags` of an EXTENT_ITEM or METADATA_ITEM: data or tree block, one of them.
pub fn extent_flags(b: &[u8], leaf: u64, slot: usize) -> Result<u64, DecodeError> {
    let flags = le64(b, EXTENT_ITEM_FLAGS).ok_or(err("EXTENT_ITEM", leaf, slot, "too short"))?;
    let kind = flags & (BTRFS_EXTENT_FLAG_DATA | BTRFS_EXTENT_FLAG_TREE_BLOCK);
    if kind != BTRFS_EXTENT_FLAG_DATA && kind != BTRFS_EXTENT_FLAG_TREE_BLOCK {
        return Err(err(
            "EXTENT_ITEM",
            leaf,
            slot,
            "flags say neither data nor tree block",
        ));
    }
    Ok(flags)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockGroupItem {
    pub used: u64,
    pub flags: u64,
}

impl BlockGroupItem {
    pub fn parse(b: &[u8], leaf: u64, slot: usize) -> Result<Self, DecodeError> {
        let short = || err("BLOCK_GROUP_ITEM", leaf, slot, "too short");
        Ok(BlockGroupItem {
            used: le64(b, BLOCK_GROUP_USED).ok_or_else(short)?,
            flags: le64(b, BLOCK_GROUP_FLAGS).ok_or_else(short)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_odd_items_are_errors() {
        assert!(RootItem::parse(&[0; 200], 0, 0).is_err());
        let mut r = vec![0u8; 239];
        r[176..184].copy_from_slice(&(30u64 << 20).to_le_bytes());
        r[238] = 1;
        assert_eq!(
            RootItem::parse(&r, 0, 0).unwrap(),
            RootItem {
                bytenr: 30 << 20,
                level: 1
            }
        );
        let mut e = vec![0u8; 24];
        assert!(extent_flags(&e, 0, 3).is_err());
        e[16] = 2;
        assert_eq!(extent_flags(&e, 0, 3).unwrap(), 2);
        e[16] = 3;
        assert!(extent_flags(&e, 0, 3).is_err());
        assert!(BlockGroupItem::parse(&[0; 23], 0, 0).is_err());
    }
}
