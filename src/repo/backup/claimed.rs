//! The new chunks a backup has already queued for storing, so a chunk repeated within
//! one backup is stored once.
//!
//! The number of chunks a backup reads is known before it starts (the cut), and bounds
//! the new ones, so this table is allocated once at 1.11 slots per chunk that may be
//! new (a load of at most 0.9) and never resized. A slot is 6 bytes, not the 32-byte id: two bytes of the id
//! (a tag) and the chunk's index in the image, whose full id is in the chunk list
//! (list.rs, written by the worker before it claims anything). A slot whose tag
//! matches is confirmed by reading that full id back: a false "already stored" would
//! lose the chunk, so it is never decided on a tag. 6.7 bytes per chunk read (10 with
//! a 4-byte tag at a load of 0.8, 40 with whole ids: 1 TB of 64 KiB chunks is 16 Mi of
//! them, issue 20). Two bytes are enough: filling a table to 0.9 with linear probing
//! meets about 4.5 taken slots per insert on average (5.5 probes of 6 contiguous
//! bytes, ~50 for the last ones in), so about 1 insert in 15 000 reads an id back
//! beyond the true repeats (some 1 100 reads for 16 Mi chunks). The table only fills
//! that far when every chunk read is new and distinct.
//! The memory is zeroed on allocation and pages no id was put in are never touched: a
//! second backup, whose chunks are mostly known, makes few of them resident.

use super::super::error::Result;
use super::super::id::ChunkId;
use super::list::ChunkList;
use std::sync::Mutex;

/// tag (u16) | index + 1 (u32), little-endian; index 0 is an empty slot.
type Slot = [u8; 6];

struct Table {
    /// `vec![[0; 6]; n]` is a zeroed allocation (calloc, fresh pages).
    slots: Vec<Slot>,
    len: usize,
}

pub(super) struct Claimed<'a> {
    table: Mutex<Table>,
    list: &'a ChunkList,
}

/// The id's bytes 8..10: independent of the home slot (bytes 0..8).
fn tag(id: &ChunkId) -> [u8; 2] {
    [id.0[8], id.0[9]]
}

fn slot_index(s: &Slot) -> u32 {
    u32::from_le_bytes([s[2], s[3], s[4], s[5]])
}

impl<'a> Claimed<'a> {
    /// A table for at most `max` distinct ids, confirmed against `list`.
    pub(super) fn with_max(max: usize, list: &'a ChunkList) -> Claimed<'a> {
        let n = max.saturating_add(max / 9).saturating_add(1);
        Claimed {
            table: Mutex::new(Table {
                slots: vec![[0; 6]; n],
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
        let Some(stored) = u32::try_from(index).ok().and_then(|i| i.checked_add(1)) else {
            return Ok(true);
        };
        let tag_bytes = tag(&id);
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let n = t.slots.len();
        // Ids are uniform: their first eight bytes, scaled to the table, are the home.
        let mut h = [0u8; 8];
        h.copy_from_slice(&id.0[..8]);
        let home = ((u128::from(u64::from_le_bytes(h)) * n as u128) >> 64) as usize;
        for i in 0..n {
            let at = (home + i) % n;
            let Some(slot) = t.slots.get(at).copied() else {
                break;
            };
            let other = slot_index(&slot);
            if other == 0 {
                if let Some(s) = t.slots.get_mut(at) {
                    s[..2].copy_from_slice(&tag_bytes);
                    s[2..].copy_from_slice(&stored.to_le_bytes());
                }
                t.len += 1;
                return Ok(true);
            }
            if slot[..2] == tag_bytes && self.list.id(other as usize - 1)? == Some(id) {
                return Ok(false);
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
        // Same home and same tag, different ids: the full id decides.
        let (mut a, mut b) = (ChunkId([9; 32]), ChunkId([9; 32]));
        a.0[31] = 1;
        b.0[31] = 2;
        let zero = ChunkId([0; 32]);
        let (_d, list) = listed(&[a, b, a, b, zero, zero]);
        let c = Claimed::with_max(6, &list);
        assert!(c.insert(a, 0).unwrap() && c.insert(b, 1).unwrap());
        assert!(!c.insert(a, 2).unwrap() && !c.insert(b, 3).unwrap());
        // The all-zero id is an id like any other (the index, never 0 in a used
        // slot, keeps it apart from an empty slot).
        assert!(c.insert(zero, 4).unwrap() && !c.insert(zero, 5).unwrap());
        // A table filled beyond its bound says "new" rather than lose a chunk.
        let c = Claimed::with_max(0, &list);
        assert!(c.insert(a, 0).unwrap() && c.insert(b, 1).unwrap() && c.insert(b, 3).unwrap());
    }
}
