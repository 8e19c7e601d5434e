//! The new chunks a backup has already queued for storing, so a chunk repeated within
//! one backup is stored once.
//!
//! A `HashSet<ChunkId>` grows by doubling: at 4 million new chunks it held 8 million
//! buckets of 33 bytes (66 bytes per chunk, and both tables at once while it grew). The
//! number of chunks a backup reads is known before it starts (the cut), and bounds the
//! new ones, so this table is allocated once at 1.25 slots per chunk that may be new:
//! 40 bytes per chunk, never resized. Its memory is zeroed on allocation and pages no
//! id was put in are never touched: a backup that finds most chunks known (the second
//! one) only makes resident the few pages its new chunks land in.
//! Open addressing, linear probing on the full 32-byte ids (at a load of at most 0.8,
//! an absent id costs ~13 probes of 32 contiguous bytes).

use super::super::id::ChunkId;
use std::sync::Mutex;

/// The empty slot. The all-zero id (a 2^-256 chance for blake3) gets its own flag.
const EMPTY: [u8; 32] = [0; 32];

struct Table {
    /// Plain byte arrays, not `ChunkId`s: `vec![[0; 32]; n]` is a zeroed allocation
    /// (calloc, fresh pages) where a vector of structs would be written slot by slot.
    slots: Vec<[u8; 32]>,
    zero_id: bool,
    len: usize,
}

pub(super) struct Claimed(Mutex<Table>);

impl Claimed {
    /// A table for at most `max` distinct ids.
    pub(super) fn with_max(max: usize) -> Claimed {
        let n = max.saturating_add(max / 4).saturating_add(1);
        Claimed(Mutex::new(Table {
            slots: vec![EMPTY; n],
            zero_id: false,
            len: 0,
        }))
    }

    /// Adds `id`; false when it was there already. Should the table ever be full (the
    /// caller's bound wrong), an id is reported new: stored twice rather than not at
    /// all.
    pub(super) fn insert(&self, id: ChunkId) -> bool {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if id.0 == EMPTY {
            let new = !t.zero_id;
            t.zero_id = true;
            t.len += usize::from(new);
            return new;
        }
        let n = t.slots.len();
        // Ids are uniform: their first eight bytes, scaled to the table, are the home.
        let mut h = [0u8; 8];
        h.copy_from_slice(&id.0[..8]);
        let home = ((u128::from(u64::from_le_bytes(h)) * n as u128) >> 64) as usize;
        for i in 0..n {
            let at = (home + i) % n;
            let Some(slot) = t.slots.get_mut(at) else {
                break;
            };
            if *slot == id.0 {
                return false;
            }
            if *slot == EMPTY {
                *slot = id.0;
                t.len += 1;
                return true;
            }
        }
        true
    }

    /// Distinct ids added.
    pub(super) fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_id_is_new_once_even_when_the_table_is_full() {
        let c = Claimed::with_max(1000);
        let id = |n: u32| ChunkId::of(&n.to_le_bytes());
        for n in 0..1000 {
            assert!(c.insert(id(n)), "{n}");
        }
        for n in 0..1000 {
            assert!(!c.insert(id(n)), "{n}");
        }
        assert!(c.insert(ChunkId(EMPTY)) && !c.insert(ChunkId(EMPTY)));
        assert_eq!(c.len(), 1001);
        // Colliding homes (same first eight bytes) probe on.
        let c = Claimed::with_max(4);
        let (mut a, mut b) = (ChunkId([9; 32]), ChunkId([9; 32]));
        a.0[31] = 1;
        b.0[31] = 2;
        assert!(c.insert(a) && c.insert(b) && !c.insert(a) && !c.insert(b));
        // A table filled beyond its bound says "new" rather than lose a chunk.
        let c = Claimed::with_max(0);
        assert!(c.insert(a) && c.insert(b) && c.insert(b));
    }
}
