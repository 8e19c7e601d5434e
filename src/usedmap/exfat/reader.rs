//! Reading the FAT one entry at a time through a one-sector cache: the chains
//! followed here (root directory, bitmap, up-case table) are short and mostly
//! contiguous, so reading the whole FAT (up to 16 GiB) would be waste.

use super::boot::read;
use super::ExfatError;
use crate::device::BlockDevice;
use crate::ondisk::exfat::{fat::ENTRY_BYTES, follow_chain, BootSector};
use std::cell::RefCell;

pub struct Fat<'a> {
    pub dev: &'a dyn BlockDevice,
    pub bs: &'a BootSector,
    cache: RefCell<Option<(u64, Vec<u8>)>>,
}

impl<'a> Fat<'a> {
    pub fn new(dev: &'a dyn BlockDevice, bs: &'a BootSector) -> Self {
        Fat {
            dev,
            bs,
            cache: RefCell::new(None),
        }
    }

    /// The FAT entry of `cluster` (validated to be in the heap by the chain walker,
    /// and the FAT validated to hold an entry per cluster).
    fn entry(&self, cluster: u32) -> Result<u32, ExfatError> {
        let ss = self.bs.sector_size();
        let at = u64::from(cluster) * ENTRY_BYTES;
        let sector = at / ss;
        let within = (at % ss) as usize;
        let mut cache = self.cache.borrow_mut();
        if cache.as_ref().map(|(s, _)| *s) != Some(sector) {
            let off = self.bs.fat_byte_offset(0) + sector * ss;
            *cache = Some((sector, read(self.dev, off, ss as usize, "FAT")?));
        }
        let word = cache
            .as_ref()
            .and_then(|(_, v)| crate::bytes::le32(v, within))
            .unwrap_or(0);
        Ok(word)
    }

    /// The chain from `first`, at most `max_len` clusters long.
    pub fn chain(&self, first: u32, max_len: u64) -> Result<Vec<u32>, ExfatError> {
        follow_chain(first, max_len, self.bs.cluster_count, |c| self.entry(c))
    }

    /// Reads cluster `c` whole.
    pub fn cluster(&self, c: u32, what: &'static str) -> Result<Vec<u8>, ExfatError> {
        let cs = self.bs.cluster_size();
        // Chains hold heap clusters only; the offset exists.
        let off = self.bs.cluster_offset(u64::from(c)).unwrap_or(u64::MAX);
        read(self.dev, off, cs as usize, what)
    }
}
