//! The extent tree: every allocated extent (EXTENT_ITEM: data, or a tree block
//! without skinny metadata; METADATA_ITEM: a tree block, one node long), added at
//! each of its physical copies, and counted by the type of its chunk. Each
//! BLOCK_GROUP_ITEM's `used` is checked against the extents found in it; a
//! difference is a warning (the filesystem wants `btrfs check`), not a refusal,
//! since the extents themselves are what the copy needs.

use super::chunk_map::ChunkMap;
use super::tree::Walker;
use super::BtrfsError;
use crate::ondisk::btrfs::chunk_item::{BTRFS_BLOCK_GROUP_DATA, BTRFS_BLOCK_GROUP_METADATA};
use crate::ondisk::btrfs::items::{extent_flags, BlockGroupItem, RootItem};
use crate::ondisk::btrfs::key::{
    BTRFS_BLOCK_GROUP_ITEM_KEY, BTRFS_EXTENT_ITEM_KEY, BTRFS_METADATA_ITEM_KEY,
};
use crate::usedmap::ExtentBuilder;
use std::collections::BTreeMap;

/// Logical bytes of allocated extents by chunk type (mixed chunks count as data).
pub struct Found {
    pub data_bytes: u64,
    pub metadata_bytes: u64,
    pub system_bytes: u64,
    pub warnings: Vec<String>,
}

pub fn scan(
    walker: &Walker<'_>,
    chunks: &ChunkMap,
    root: RootItem,
    b: &mut ExtentBuilder,
) -> Result<Found, BtrfsError> {
    let nodesize = u64::from(walker.sb.nodesize);
    let mut groups: Vec<(u64, BlockGroupItem)> = Vec::new();
    let mut extents: Vec<(u64, u64)> = Vec::new();
    walker.walk(
        "extent",
        chunks,
        root.bytenr,
        root.level,
        b,
        |leaf, items| {
            for (slot, (key, data)) in items.iter().enumerate() {
                let len = match key.item_type {
                    BTRFS_EXTENT_ITEM_KEY => {
                        extent_flags(data, leaf, slot)?;
                        key.offset
                    }
                    BTRFS_METADATA_ITEM_KEY => {
                        extent_flags(data, leaf, slot)?;
                        nodesize
                    }
                    BTRFS_BLOCK_GROUP_ITEM_KEY => {
                        groups.push((key.objectid, BlockGroupItem::parse(data, leaf, slot)?));
                        continue;
                    }
                    _ => continue,
                };
                extents.push((key.objectid, len));
            }
            Ok(())
        },
    )?;
    let mut found = Found {
        data_bytes: 0,
        metadata_bytes: 0,
        system_bytes: 0,
        warnings: Vec::new(),
    };
    let mut by_chunk: BTreeMap<u64, u64> = BTreeMap::new();
    for &(bytenr, len) in &extents {
        let c = chunks.add_extent(b, bytenr, len)?;
        // Saturating: a corrupt tree can list one extent many times.
        let sum = by_chunk.entry(c.logical).or_default();
        *sum = sum.saturating_add(len);
        let t = c.chunk_type;
        let total = if t & BTRFS_BLOCK_GROUP_DATA != 0 {
            &mut found.data_bytes
        } else if t & BTRFS_BLOCK_GROUP_METADATA != 0 {
            &mut found.metadata_bytes
        } else {
            &mut found.system_bytes
        };
        *total = total.saturating_add(len);
    }
    for (start, g) in &groups {
        let sum = by_chunk.get(start).copied().unwrap_or(0);
        if sum != g.used {
            found.warnings.push(format!(
                "btrfs block group {start}: BLOCK_GROUP_ITEM says {} bytes used, its extents \
                 add up to {sum}",
                g.used
            ));
        }
    }
    Ok(found)
}
