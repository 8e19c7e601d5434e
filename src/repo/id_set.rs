//! The chunk ids some images use, gathered from their manifests without holding one:
//! `verify` (what to find in the index) and `prune` (what is live).
//!
//! Why a sorted vector and not a `HashSet`: a hash set of ids took 50-90 bytes each
//! (its slots at their load factor), and prune held one beside each whole manifest it
//! read (over 100 bytes a chunk more): a fleet's repository of many 1 TB images ran to
//! gigabytes. Sorted and distinct the ids are 32 bytes each, and a table of where each
//! 16-bit prefix starts (256 KiB) makes a lookup a short binary search.

use super::error::Result;
use super::id::ChunkId;
use super::manifest_stream::Spilled;
use super::restore_chunks::AreaChunks;
use super::Repository;

/// Ids gathered before they are merged into the distinct ones: 32 MiB.
#[cfg(not(test))]
const ID_BATCH: usize = 1 << 20;
/// A few, so the unit tests' images take many batches.
#[cfg(test)]
const ID_BATCH: usize = 5;

/// Adds the ids of `s`'s chunks to `needed` (sorted and distinct: images of one fleet
/// share most chunks), a batch at a time, so an image's ids are never all held twice;
/// returns the bytes its chunks cover (what its summary names).
pub(super) fn gather_ids(s: &Spilled, needed: &mut Vec<ChunkId>) -> Result<u64> {
    let mut bytes = 0u64;
    let mut batch = Vec::new();
    for i in 0..s.head.areas.len() {
        let Some(list) = AreaChunks::of(s, i) else {
            continue;
        };
        for c in list.iter() {
            let c = c?;
            bytes = bytes.saturating_add(u64::from(c.len));
            batch.extend(c.id);
            if batch.len() >= ID_BATCH {
                merge_distinct(needed, std::mem::take(&mut batch));
            }
        }
    }
    merge_distinct(needed, batch);
    Ok(bytes)
}

/// Adds `ids` to `into` (sorted and distinct), which stays sorted and distinct. Only
/// `ids` is sorted; the two sorted runs are then merged in place from the back, without
/// scratch. Sorting everything again for each image cost O(n log n) per image of a
/// fleet's repository, and a stable sort's merge would allocate half of `into`.
pub(super) fn merge_distinct(into: &mut Vec<ChunkId>, mut ids: Vec<ChunkId>) {
    ids.sort_unstable();
    ids.dedup();
    let mut i = into.len();
    // Room for `ids` at the end; overwritten by the merge. Exactly that much: doubling
    // would hold up to twice the ids (a large block grows in place, by mremap).
    into.reserve_exact(ids.len());
    into.extend_from_slice(&ids);
    let mut k = into.len();
    while let Some(&b) = ids.last() {
        k -= 1;
        match i.checked_sub(1).and_then(|p| into.get(p).copied()) {
            Some(a) if a > b => {
                into[k] = a;
                i -= 1;
            }
            _ => {
                into[k] = b;
                ids.pop();
            }
        }
    }
    into.dedup();
}

/// Sorted, distinct chunk ids with the start of each 16-bit prefix.
pub(super) struct SortedIds {
    ids: Vec<ChunkId>,
    /// `starts[p]`: the first id whose first two bytes are `p` or more; 65 537 of them.
    starts: Vec<u32>,
}

impl SortedIds {
    /// Every id the images `names` use, each manifest read as a stream
    /// (`Repository::load_spilled`).
    pub fn of_images(repo: &Repository, names: &[String]) -> Result<SortedIds> {
        let mut ids = Vec::new();
        for n in names {
            gather_ids(&*repo.load_spilled(n)?, &mut ids)?;
        }
        Ok(SortedIds::new(ids))
    }

    /// `ids` must be sorted and distinct (`merge_distinct`'s result).
    pub fn new(mut ids: Vec<ChunkId>) -> SortedIds {
        ids.shrink_to_fit();
        let mut starts = Vec::with_capacity(65_537);
        let mut at = 0usize;
        for p in 0..=65_536u32 {
            while ids.get(at).is_some_and(|id| prefix(id) < p) {
                at += 1;
            }
            // More than 4 Gi distinct chunks is 128 GiB of ids: not held anywhere.
            starts.push(u32::try_from(at).unwrap_or(u32::MAX));
        }
        SortedIds { ids, starts }
    }

    pub fn contains(&self, id: &ChunkId) -> bool {
        let p = prefix(id) as usize;
        let (Some(&a), Some(&b)) = (self.starts.get(p), self.starts.get(p + 1)) else {
            return false;
        };
        self.ids
            .get(a as usize..b as usize)
            .is_some_and(|run| run.binary_search(id).is_ok())
    }
}

fn prefix(id: &ChunkId) -> u32 {
    u32::from(u16::from_be_bytes([id.0[0], id.0[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: [u8; 3]) -> ChunkId {
        let mut a = [0u8; 32];
        a[..3].copy_from_slice(&b);
        a[31] = 7;
        ChunkId(a)
    }

    #[test]
    fn finds_every_member_and_nothing_else() {
        let members = [
            [0, 0, 0],
            [0, 0, 9],
            [0, 1, 0],
            [0x80, 0, 1],
            [0xff, 0xff, 0xff],
        ];
        let mut ids = Vec::new();
        merge_distinct(&mut ids, members.iter().map(|&b| id(b)).collect());
        merge_distinct(&mut ids, vec![id([0, 1, 0]), id([0, 0, 0])]);
        assert_eq!(ids.len(), members.len());
        let set = SortedIds::new(ids);
        for b in members {
            assert!(set.contains(&id(b)), "{b:?}");
        }
        for b in [
            [0, 0, 1],
            [0, 2, 0],
            [0x80, 0, 0],
            [0xff, 0xff, 0xfe],
            [1, 0, 0],
        ] {
            assert!(!set.contains(&id(b)), "{b:?}");
        }
        assert!(!SortedIds::new(Vec::new()).contains(&id([0, 0, 0])));
    }
}
