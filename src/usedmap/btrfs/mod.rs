//! btrfs used map (single device): every allocated extent, data and metadata, at
//! each of its physical copies (DUP metadata has two), read from the extent tree,
//! plus every superblock copy on the device. Free space
//! inside allocated chunks is not read: a 1 GiB data chunk holding 10 MiB of files
//! costs 10 MiB.
//!
//! The chunk map is bootstrapped from the superblock's `sys_chunk_array`, completed
//! from the chunk tree, then the root tree gives the extent tree. Every tree block
//! is checked (crc32c, address, fsid, level) and the walks are bounded, so a
//! corrupt or cyclic tree ends in an error and the partition is imaged raw.
//!
//! Imaged raw, with the reason: several devices, checksums other than crc32c, an
//! unreplayed log tree (its blocks are not in the extent tree), zoned and
//! extent-tree-v2 volumes.

mod chunk_map;
mod extents;
mod tree;

use crate::device::{BlockDevice, DeviceError};
use crate::ondisk::btrfs::items::RootItem;
use crate::ondisk::btrfs::key::{
    BTRFS_CHUNK_ITEM_KEY, BTRFS_EXTENT_TREE_OBJECTID, BTRFS_ROOT_ITEM_KEY,
};
use crate::ondisk::btrfs::superblock::{
    BTRFS_FEATURE_INCOMPAT_EXTENT_TREE_V2, BTRFS_FEATURE_INCOMPAT_ZONED, BTRFS_SUPER_INFO_SIZE,
    BTRFS_SUPER_MIRRORS,
};
use crate::ondisk::btrfs::{ChunkItem, DecodeError, Superblock};
use crate::usedmap::{ExtentBuilder, UsedMap};
use chunk_map::ChunkMap;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BtrfsError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("btrfs with {0} devices: a multi-device filesystem is not mapped (imaged raw)")]
    MultiDevice(u64),
    #[error("btrfs csum_type {0} (not crc32c): its checksums are not verified here")]
    CsumType(u16),
    #[error("btrfs feature {0} is not supported by the used map")]
    Feature(&'static str),
    #[error("btrfs has an unreplayed log tree at {0}: mount it once so the log is replayed")]
    LogTree(u64),
    #[error("btrfs device item says {fs_bytes} bytes but the device has only {device_bytes}")]
    Truncated { fs_bytes: u64, device_bytes: u64 },
    #[error("btrfs chunk at logical {logical}: {why}")]
    Chunk { logical: u64, why: &'static str },
    #[error("btrfs extent {bytenr}+{len}: not inside one chunk")]
    Unmapped { bytenr: u64, len: u64 },
    #[error("btrfs {0}: not found in the root tree")]
    NoRoot(&'static str),
    #[error("btrfs {tree} tree: {why}")]
    Tree {
        tree: &'static str,
        why: &'static str,
    },
    #[error("reading btrfs {what} at byte {offset}: {source}")]
    Device {
        what: &'static str,
        offset: u64,
        #[source]
        source: DeviceError,
    },
}

/// The map and the logical bytes of allocated extents by chunk type, which
/// `btrfs filesystem df` reports as "used".
#[derive(Debug)]
pub struct BtrfsScan {
    pub map: UsedMap,
    pub data_bytes: u64,
    pub metadata_bytes: u64,
    pub system_bytes: u64,
}

pub fn map_btrfs(dev: &dyn BlockDevice) -> Result<UsedMap, BtrfsError> {
    Ok(scan_btrfs(dev)?.map)
}

pub fn scan_btrfs(dev: &dyn BlockDevice) -> Result<BtrfsScan, BtrfsError> {
    let at = BTRFS_SUPER_MIRRORS[0];
    let raw = read(dev, at, BTRFS_SUPER_INFO_SIZE, "superblock")?;
    let sb = Superblock::parse(&raw, at)?;
    if sb.csum_type != 0 {
        return Err(BtrfsError::CsumType(sb.csum_type));
    }
    if sb.num_devices != 1 {
        return Err(BtrfsError::MultiDevice(sb.num_devices));
    }
    if sb.incompat_flags & BTRFS_FEATURE_INCOMPAT_ZONED != 0 {
        return Err(BtrfsError::Feature("zoned"));
    }
    if sb.incompat_flags & BTRFS_FEATURE_INCOMPAT_EXTENT_TREE_V2 != 0 {
        return Err(BtrfsError::Feature("extent-tree-v2"));
    }
    if sb.log_root != 0 {
        return Err(BtrfsError::LogTree(sb.log_root));
    }
    let total_bytes = sb.dev_item_total_bytes;
    if total_bytes > dev.size() {
        return Err(BtrfsError::Truncated {
            fs_bytes: total_bytes,
            device_bytes: dev.size(),
        });
    }
    let mut chunks = ChunkMap::new(sb.dev_item_devid, total_bytes);
    for (_, c) in &sb.sys_chunks {
        chunks.insert(c.clone())?;
    }
    let limits = tree::Limits::new(&sb);
    let mut b = ExtentBuilder::new();
    let walker = tree::Walker {
        dev,
        sb: &sb,
        limits,
    };
    // The chunk tree: every chunk, found through the system chunks.
    walker.walk(
        "chunk",
        &chunks.clone(),
        sb.chunk_root,
        sb.chunk_root_level,
        &mut b,
        |_, items| {
            for (key, data) in items {
                if key.item_type == BTRFS_CHUNK_ITEM_KEY {
                    let (c, _) = ChunkItem::parse(data, key.offset)?;
                    chunks.insert(c)?;
                }
            }
            Ok(())
        },
    )?;
    // The root tree: where the extent tree is.
    let mut extent_root = None;
    walker.walk(
        "root",
        &chunks,
        sb.root,
        sb.root_level,
        &mut b,
        |leaf, items| {
            for (slot, (key, data)) in items.iter().enumerate() {
                if key.objectid == BTRFS_EXTENT_TREE_OBJECTID
                    && key.item_type == BTRFS_ROOT_ITEM_KEY
                {
                    extent_root = Some(RootItem::parse(data, leaf, slot)?);
                }
            }
            Ok(())
        },
    )?;
    let root = extent_root.ok_or(BtrfsError::NoRoot("extent tree"))?;
    if root.level >= crate::ondisk::btrfs::superblock::BTRFS_MAX_LEVEL {
        return Err(BtrfsError::Tree {
            tree: "extent",
            why: "root level not below 8",
        });
    }
    let found = extents::scan(&walker, &chunks, root, &mut b)?;
    // No system chunk is copied whole: the chunk tree's blocks are in the extent
    // tree (and the walk above added them); the rest of a system chunk is free space
    // (16 MiB of zeros on a default mkfs.btrfs, read for nothing).
    for m in BTRFS_SUPER_MIRRORS {
        if m.checked_add(BTRFS_SUPER_INFO_SIZE as u64)
            .is_some_and(|end| end <= total_bytes)
        {
            b.add(m, BTRFS_SUPER_INFO_SIZE as u64);
        }
    }
    let extents = b.finish(total_bytes);
    let used: u64 = extents.iter().map(|e| e.len).sum();
    Ok(BtrfsScan {
        map: UsedMap {
            block_size: u64::from(sb.sectorsize),
            total_bytes,
            used_bytes: used,
            extents,
            raw: false,
            raw_reason: None,
            warnings: found.warnings,
            primary_lost: None,
            lvm: None,
            fs_sector: None,
        },
        data_bytes: found.data_bytes,
        metadata_bytes: found.metadata_bytes,
        system_bytes: found.system_bytes,
    })
}

pub(crate) fn read(
    dev: &dyn BlockDevice,
    offset: u64,
    len: usize,
    what: &'static str,
) -> Result<Vec<u8>, BtrfsError> {
    dev.read_vec(offset, len)
        .map_err(|source| BtrfsError::Device {
            what,
            offset,
            source,
        })
}
