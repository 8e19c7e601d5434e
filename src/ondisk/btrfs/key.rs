//! `btrfs_disk_key`: objectid, type, offset (17 bytes), and the item types read here.

use crate::bytes::{le64, u8_at};

pub const LEN: usize = 17;

pub const BTRFS_ROOT_ITEM_KEY: u8 = 132;
pub const BTRFS_EXTENT_ITEM_KEY: u8 = 168;
pub const BTRFS_METADATA_ITEM_KEY: u8 = 169;
pub const BTRFS_BLOCK_GROUP_ITEM_KEY: u8 = 192;
pub const BTRFS_CHUNK_ITEM_KEY: u8 = 228;

/// Object ids of the trees the map reads.
pub const BTRFS_EXTENT_TREE_OBJECTID: u64 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub objectid: u64,
    pub item_type: u8,
    pub offset: u64,
}

impl Key {
    pub fn parse(b: &[u8], at: usize) -> Option<Key> {
        Some(Key {
            objectid: le64(b, at)?,
            item_type: u8_at(b, at.checked_add(8)?)?,
            offset: le64(b, at.checked_add(9)?)?,
        })
    }
}
