//! The chunks a backup need not store again: every chunk of a pack that is present and
//! not marked by prune, as one sorted array of full ids.
//!
//! A backup only asks "is this id stored?", never where: the whole `Index` (a hash map
//! of id → place, ~50-100 bytes per chunk with its load factor, plus the records) is
//! not needed, and holding it while building a hash set from it cost both at once
//! (docs/FORMAT.md, "Backup memory"). Here the index files are read a batch at a time
//! and only their ids kept: 32 bytes per stored chunk, sorted once. A lookup is a
//! binary search inside one of 65 536 buckets picked by the id's first two bytes (ids
//! are uniform: a bucket of a 16-million-chunk repository holds ~256 ids, 8 steps).
//! Ids are compared whole: a truncated id never stands in for the chunk.

use super::super::error::{RepoError, Result};
use super::super::id::{ChunkId, PackId};
use super::super::{index, verify, Repository};
use std::collections::HashSet;

/// Index files read (and parsed) at once: enough to keep a remote store's round trips
/// overlapped, few enough that their parsed entries stay small beside the ids.
const BATCH: usize = 32;

const BUCKETS: usize = 1 << 16;

/// A sorted, deduplicated set of chunk ids.
pub(crate) struct KnownSet {
    ids: Vec<ChunkId>,
    /// `ids[starts[b]..starts[b + 1]]` are the ids whose first two bytes are `b`.
    starts: Vec<u32>,
}

fn bucket(id: &ChunkId) -> usize {
    usize::from(id.0[0]) << 8 | usize::from(id.0[1])
}

impl KnownSet {
    /// The set of `ids` (any order, duplicates allowed).
    pub(crate) fn new(mut ids: Vec<ChunkId>) -> KnownSet {
        ids.sort_unstable();
        ids.dedup();
        ids.shrink_to_fit();
        let mut starts = Vec::with_capacity(BUCKETS + 1);
        let mut at = 0usize;
        for b in 0..BUCKETS {
            // u32: a repository of 4 billion chunks (a petabyte) is beyond this tool.
            starts.push(u32::try_from(at).unwrap_or(u32::MAX));
            while ids.get(at).is_some_and(|id| bucket(id) == b) {
                at += 1;
            }
        }
        starts.push(u32::try_from(at).unwrap_or(u32::MAX));
        KnownSet { ids, starts }
    }

    /// `id`'s position in the sorted set, if it is there.
    pub(crate) fn position(&self, id: &ChunkId) -> Option<usize> {
        let b = bucket(id);
        let lo = *self.starts.get(b)? as usize;
        let hi = *self.starts.get(b + 1)? as usize;
        let slice = self.ids.get(lo..hi)?;
        slice.binary_search(id).ok().map(|i| lo + i)
    }

    pub(crate) fn contains(&self, id: &ChunkId) -> bool {
        self.position(id).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

/// The chunks of every readable index file whose pack exists and is not in `marked`,
/// and the index files that could not be read (reported as warnings: their chunks are
/// stored again).
pub(crate) fn load(
    repo: &Repository,
    marked: &HashSet<PackId>,
) -> Result<(KnownSet, Vec<RepoError>)> {
    use rayon::prelude::*;
    let names = index::file_names(repo)?;
    let present: HashSet<PackId> = verify::list_packs(repo)?
        .into_iter()
        .map(|(id, ..)| id)
        .filter(|id| !marked.contains(id))
        .collect();
    let mut ids: Vec<ChunkId> = Vec::new();
    let mut problems = Vec::new();
    for batch in names.chunks(BATCH) {
        let files: Vec<Result<index::IndexFile>> =
            batch.par_iter().map(|n| index::read(repo, n)).collect();
        for f in files {
            match f {
                Ok(f) if present.contains(&f.pack) => {
                    for e in &f.entries {
                        match e.record.is_frame() {
                            true => ids.extend(e.chunks.iter().map(|m| m.id)),
                            false => ids.push(e.record.id),
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => problems.push(e),
            }
        }
    }
    Ok((KnownSet::new(ids), problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> ChunkId {
        ChunkId::of(&n.to_le_bytes())
    }

    #[test]
    fn finds_every_member_and_nothing_else() {
        let mut ids: Vec<ChunkId> = (0..5000).map(id).collect();
        ids.extend((0..100).map(id)); // duplicates
        let set = KnownSet::new(ids);
        assert_eq!(set.len(), 5000);
        for n in 0..5000 {
            assert!(set.contains(&id(n)), "{n}");
        }
        for n in 5000..10000 {
            assert!(!set.contains(&id(n)), "{n}");
        }
        // Ids sharing the first two bytes (one bucket) differ only further on.
        let mut a = ChunkId([7; 32]);
        let b = a;
        a.0[31] = 8;
        let set = KnownSet::new(vec![a]);
        assert!(set.contains(&a) && !set.contains(&b));
        assert!(!KnownSet::new(Vec::new()).contains(&a));
        let edge = [ChunkId([0; 32]), ChunkId([0xff; 32])];
        let set = KnownSet::new(edge.to_vec());
        assert!(edge.iter().all(|e| set.contains(e)));
        assert_eq!(set.position(&edge[1]), Some(1));
    }
}
