//! Logical to physical addresses on one device: each chunk's logical range and its
//! stripes. A single device holds SINGLE chunks (one stripe) and DUP chunks (two
//! full copies on the same device); other profiles are refused.

use super::BtrfsError;
use crate::ondisk::btrfs::chunk_item::{BTRFS_BLOCK_GROUP_DUP, BTRFS_BLOCK_GROUP_MULTI_DEVICE};
use crate::ondisk::btrfs::ChunkItem;
use crate::usedmap::ExtentBuilder;
use std::collections::BTreeMap;

#[derive(Clone)]
pub struct ChunkMap {
    devid: u64,
    device_bytes: u64,
    chunks: BTreeMap<u64, ChunkItem>,
}

impl ChunkMap {
    pub fn new(devid: u64, device_bytes: u64) -> Self {
        ChunkMap {
            devid,
            device_bytes,
            chunks: BTreeMap::new(),
        }
    }

    /// Adds a chunk after checking its profile and stripes; the same chunk twice
    /// (sys_chunk_array and chunk tree) is fine, an overlapping one is not.
    pub fn insert(&mut self, c: ChunkItem) -> Result<(), BtrfsError> {
        let bad = |why| BtrfsError::Chunk {
            logical: c.logical,
            why,
        };
        if let Some(old) = self.chunks.get(&c.logical) {
            return if *old == c {
                Ok(())
            } else {
                Err(bad("two different CHUNK_ITEMs for one logical address"))
            };
        }
        if c.chunk_type & BTRFS_BLOCK_GROUP_MULTI_DEVICE != 0 {
            return Err(bad("a RAID profile, which one device cannot hold"));
        }
        let copies = if c.chunk_type & BTRFS_BLOCK_GROUP_DUP != 0 {
            2
        } else {
            1
        };
        if c.stripes.len() != copies {
            return Err(bad("a stripe count its profile does not have"));
        }
        for s in &c.stripes {
            if s.devid != self.devid {
                return Err(bad("a stripe on another device"));
            }
            if s.offset
                .checked_add(c.length)
                .is_none_or(|e| e > self.device_bytes)
            {
                return Err(bad("a stripe past the end of the device"));
            }
        }
        let overlaps_prev = self
            .chunks
            .range(..c.logical)
            .next_back()
            .is_some_and(|(_, p)| p.end() > c.logical);
        let overlaps_next = self
            .chunks
            .range(c.logical..)
            .next()
            .is_some_and(|(&s, _)| s < c.end());
        if overlaps_prev || overlaps_next {
            return Err(bad("overlaps another chunk"));
        }
        self.chunks.insert(c.logical, c);
        Ok(())
    }

    /// The chunk holding `[bytenr, bytenr + len)` whole.
    pub fn find(&self, bytenr: u64, len: u64) -> Result<&ChunkItem, BtrfsError> {
        let end = bytenr.checked_add(len);
        self.chunks
            .range(..=bytenr)
            .next_back()
            .map(|(_, c)| c)
            .filter(|c| end.is_some_and(|e| e <= c.end()) && len > 0)
            .ok_or(BtrfsError::Unmapped { bytenr, len })
    }

    /// Physical offsets of every copy of logical `bytenr`.
    pub fn physical(&self, bytenr: u64, len: u64) -> Result<Vec<u64>, BtrfsError> {
        let c = self.find(bytenr, len)?;
        // Inside the chunk, and every stripe's end was checked against the device.
        Ok(c.stripes
            .iter()
            .map(|s| s.offset + (bytenr - c.logical))
            .collect())
    }

    /// Adds every copy of an extent to `b`; returns its chunk.
    pub fn add_extent(
        &self,
        b: &mut ExtentBuilder,
        bytenr: u64,
        len: u64,
    ) -> Result<&ChunkItem, BtrfsError> {
        for p in self.physical(bytenr, len)? {
            b.add(p, len);
        }
        self.find(bytenr, len)
    }
}
