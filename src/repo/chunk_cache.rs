//! The decoded chunks an `ImageDevice` keeps, least recently used first out, within
//! a byte budget.
//!
//! Why by bytes and by recency: filesystem readers go back to the same metadata
//! for every file. Copying one file out of an NTFS walks the root's MFT record,
//! its index blocks, each directory's record and index, the file's record and
//! then its data, and those live in different chunks; on a partition with little
//! data the backup cuts them into many small chunks (one per run of used
//! clusters, 4 KiB to 8 MiB). The earlier cache kept the last 4 chunks decoded, in
//! the order they were decoded: every file's data pushed the MFT chunk out, so
//! each file decoded the MFT, index and data chunks again. `browse get` of a 17 MB
//! tree of 632 files decoded 637 chunks for 30 stored ones: 3.9 s in a debug
//! build, against 0.3 s from ext4 (4 decodes), whose metadata sits together
//! (issue 16: 10.2 s against 0.6 s). Counting held bytes instead of chunks lets
//! many small chunks stay, and moving a hit to the back keeps the metadata every
//! walk touches: 30 decodes, 0.4 s (docs/BROWSE.md has the table).
//!
//! Format 2 made entries small and many (64 KiB-256 KiB chunks beside the 8 MiB frames
//! they come from: a thousand entries in 64 MiB), so a lookup is a hash-map probe, not
//! a scan of the list, which made an NTFS tree copy minutes long; only an insertion
//! that evicts looks for the least recently used entry.

use super::id::ChunkId;
use std::collections::HashMap;
use std::sync::Arc;

pub struct ChunkCache {
    budget: usize,
    held: usize,
    /// Each entry's bytes and when it was last used (a counter, not a clock).
    entries: HashMap<ChunkId, (Arc<Vec<u8>>, u64)>,
    tick: u64,
}

impl ChunkCache {
    /// A cache holding up to `budget` decoded bytes (and always the newest chunk,
    /// even one larger than the budget).
    pub fn new(budget: usize) -> ChunkCache {
        ChunkCache {
            budget,
            held: 0,
            entries: HashMap::new(),
            tick: 0,
        }
    }

    /// The chunk's bytes if held; a hit becomes the most recently used.
    pub fn get(&mut self, id: &ChunkId) -> Option<Arc<Vec<u8>>> {
        self.tick += 1;
        let tick = self.tick;
        let (data, used) = self.entries.get_mut(id)?;
        *used = tick;
        Some(data.clone())
    }

    /// Keeps `data` as the most recently used, dropping the least recently used
    /// chunks until the rest fits the budget.
    pub fn insert(&mut self, id: ChunkId, data: Arc<Vec<u8>>) {
        if self.get(&id).is_some() {
            return;
        }
        self.tick += 1;
        self.held = self.held.saturating_add(data.len());
        self.entries.insert(id, (data, self.tick));
        while self.held > self.budget && self.entries.len() > 1 {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k);
            match oldest.and_then(|k| self.entries.remove(&k)) {
                Some((old, _)) => self.held = self.held.saturating_sub(old.len()),
                None => break,
            }
        }
    }

    /// Decoded bytes held.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ChunkId {
        ChunkId::of(&[n])
    }

    fn bytes(len: usize) -> Arc<Vec<u8>> {
        Arc::new(vec![0; len])
    }

    #[test]
    fn keeps_what_fits_and_drops_the_least_recently_used() {
        let mut c = ChunkCache::new(100);
        c.insert(id(1), bytes(40));
        c.insert(id(2), bytes(40));
        // A hit on 1 makes 2 the oldest: the next insert pushes 2 out, not 1.
        assert!(c.get(&id(1)).is_some());
        c.insert(id(3), bytes(40));
        assert!(c.get(&id(2)).is_none());
        assert!(c.get(&id(1)).is_some());
        assert!(c.get(&id(3)).is_some());
        assert_eq!(c.held(), 80);
    }

    #[test]
    fn many_small_chunks_stay_where_few_large_would_not() {
        let mut c = ChunkCache::new(100);
        for n in 0..10 {
            c.insert(id(n), bytes(10));
        }
        assert!((0..10).all(|n| c.get(&id(n)).is_some()));
        assert_eq!(c.held(), 100);
    }

    #[test]
    fn a_chunk_larger_than_the_budget_is_still_kept_alone() {
        let mut c = ChunkCache::new(100);
        c.insert(id(1), bytes(10));
        c.insert(id(2), bytes(500));
        assert!(c.get(&id(1)).is_none());
        assert!(c.get(&id(2)).is_some());
        assert_eq!(c.held(), 500);
        c.insert(id(2), bytes(500));
        assert_eq!(c.held(), 500, "inserting a held chunk again counts it once");
    }
}
