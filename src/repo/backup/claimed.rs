//! The new chunks a backup has already queued for storing, so a chunk repeated within
//! one backup is stored once.
//!
//! The number of chunks a backup reads is known before it starts (the cut), and bounds
//! the new ones, so this table is allocated once at 1.25 slots per chunk that may be
//! new and never resized. A slot is 8 bytes, not the 32-byte id: four bytes of the id
//! and the chunk's index in the image, whose full id is in the chunk list (list.rs,
//! written by the worker before it claims anything). A slot whose four bytes match is
//! confirmed by reading that full id back: a false "already stored" would lose the
//! chunk, so it is never decided on a prefix. 10 bytes per chunk read (40 before, with
//! whole ids). The memory is zeroed on allocation and pages no id was put in are never
//! touched: a second backup, whose chunks are mostly known, makes few of them
//! resident. Open addressing, linear probing (at a load of at most 0.8, an absent id
//! costs ~13 probes of 8 contiguous bytes; a full-id read happens for ~1 in 2^32 of
//! them beyond the true repeats).

use super::super::error::Result;
use super::super::id::ChunkId;
use super::list::ChunkList;
use std::sync::Mutex;

struct Table {
    /// `prefix << 32 | (index + 1)`; 0 is empty. `vec![0; n]` is a zeroed allocation
    /// (calloc, fresh pages).
    slots: Vec<u64>,
    len: usize,
}

pub(super) struct Claimed<'a> {
    table: Mutex<Table>,
    list: &'a ChunkList,
}

/// The id's bytes 8..12: independent of the home slot (bytes 0..8).
fn prefix(id: &ChunkId) -> u64 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&id.0[8..12]);
    u64::from(u32::from_le_bytes(b))
}

impl<'a> Claimed<'a> {
    /// A table for at most `max` distinct ids, confirmed against `list`.
    pub(super) fn with_max(max: usize, list: &'a ChunkList) -> Claimed<'a> {
        let n = max.saturating_add(max / 4).saturating_add(1);
        Claimed {
            table: Mutex::new(Table {
                slots: vec![0; n],
                len: 0,
            }),
            list,
        }
    }

    /// Claims `id`, the id of chunk `index` (already in the list); false when another
    /// chunk with that id was claimed before. Should the table ever be full (the
    /// caller's bound wrong) or the index not fit a slot, an id is reported new:
    /// stored twice rather than not at all.
    pub(super) fn insert(&self, id: ChunkId, index: usize) -> Result<bool> {
        let Some(tagged) = u32::try_from(index)
            .ok()
            .and_then(|i| i.checked_add(1))
            .map(|i| prefix(&id) << 32 | u64::from(i))
        else {
            return Ok(true);
        };
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let n = t.slots.len();
        // Ids are uniform: their first eight bytes, scaled to the table, are the home.
        let mut h = [0u8; 8];
        h.copy_from_slice(&id.0[..8]);
        let home = ((u128::from(u64::from_le_bytes(h)) * n as u128) >> 64) as usize;
        for i in 0..n {
            let at = (home + i) % n;
            let Some(&slot) = t.slots.get(at) else {
                break;
            };
            if slot == 0 {
                if let Some(s) = t.slots.get_mut(at) {
                    *s = tagged;
                }
                t.len += 1;
                return Ok(true);
            }
            if slot >> 32 == tagged >> 32 {
                let other = ((slot & u64::from(u32::MAX)) as usize).saturating_sub(1);
                if self.list.id(other)? == Some(id) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Distinct ids claimed.
    pub(super) fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).len
    }
}

#[cfg(test)]
mod tests {
    use super::super::list::Entry;
    use super::*;

    fn listed(ids: &[ChunkId]) -> (tempfile::TempDir, ChunkList) {
        let dir = tempfile::tempdir().unwrap();
        let list = ChunkList::new(dir.path(), ids.len()).unwrap();
        let entries: Vec<Entry> = ids
            .iter()
            .map(|&id| Entry {
                offset: 0,
                len: 1,
                id: Some(id),
            })
            .collect();
        list.put(0, &entries).unwrap();
        (dir, list)
    }

    #[test]
    fn each_id_is_new_once_even_when_the_table_is_full() {
        let id = |n: u32| ChunkId::of(&n.to_le_bytes());
        let mut ids: Vec<ChunkId> = (0..1000).map(id).collect();
        ids.extend((0..1000).map(id));
        let (_d, list) = listed(&ids);
        let c = Claimed::with_max(1000, &list);
        for (n, &id) in ids.iter().enumerate() {
            // The first 1000 are new, their repeats are not.
            assert_eq!(c.insert(id, n).unwrap(), n < 1000, "{n}");
        }
        assert_eq!(c.len(), 1000);
        // Same home and same four prefix bytes, different ids: the full id decides.
        let (mut a, mut b) = (ChunkId([9; 32]), ChunkId([9; 32]));
        a.0[31] = 1;
        b.0[31] = 2;
        let zero = ChunkId([0; 32]);
        let (_d, list) = listed(&[a, b, a, b, zero, zero]);
        let c = Claimed::with_max(6, &list);
        assert!(c.insert(a, 0).unwrap() && c.insert(b, 1).unwrap());
        assert!(!c.insert(a, 2).unwrap() && !c.insert(b, 3).unwrap());
        // The all-zero id is an id like any other (the slot tag keeps it apart from
        // an empty slot).
        assert!(c.insert(zero, 4).unwrap() && !c.insert(zero, 5).unwrap());
        // A table filled beyond its bound says "new" rather than lose a chunk.
        let c = Claimed::with_max(0, &list);
        assert!(c.insert(a, 0).unwrap() && c.insert(b, 1).unwrap() && c.insert(b, 3).unwrap());
    }
}
