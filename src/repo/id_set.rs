//! The chunk ids some images use, gathered from their manifests without holding one:
//! `verify` (what to find in the index: whole ids) and `prune` (what is live: the
//! first 8 bytes of each, `UsedIds`).
//!
//! Why a sorted vector and not a `HashSet`: a hash set of ids took 50-90 bytes each
//! (its slots at their load factor), and prune held one beside each whole manifest it
//! read (over 100 bytes a chunk more): a fleet's repository of many 1 TB images ran to
//! gigabytes. Sorted and distinct the ids are 32 bytes each (prune's 8), and a table
//! of where each 16-bit prefix starts (256 KiB) makes a lookup a short binary search.

use super::error::Result;
use super::id::ChunkId;
use super::index_wanted::lead;
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
    gather(s, needed, |id| *id)
}

/// `gather_ids` of `key(id)` for each id.
fn gather<T: Ord + Copy>(
    s: &Spilled,
    needed: &mut Vec<T>,
    key: impl Fn(&ChunkId) -> T,
) -> Result<u64> {
    let mut bytes = 0u64;
    let mut batch = Vec::new();
    for i in 0..s.head.areas.len() {
        let Some(list) = AreaChunks::of(s, i) else {
            continue;
        };
        for c in list.iter() {
            let c = c?;
            bytes = bytes.saturating_add(u64::from(c.len));
            batch.extend(c.id.as_ref().map(&key));
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
pub(super) fn merge_distinct<T: Ord + Copy>(into: &mut Vec<T>, mut ids: Vec<T>) {
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

/// The chunks some images use, for prune: the first 8 bytes of each id, sorted and
/// distinct, with the start of each 16-bit prefix.
///
/// Why not whole ids: prune asks only "may this chunk be in use?", and a wrong "yes"
/// costs nothing but space (a dead record kept or copied, a pack kept until a later
/// prune), while every chunk in use is found. 8 bytes a chunk instead of 32: 32 MiB
/// for 1 TB of 256 KiB chunks. Another chunk shares one in use's first 8 bytes with a
/// chance of about one in 2^64 per pair; with keyed ids (encrypted repositories) no
/// one can aim at it, and in a plaintext repository whoever aimed at it would only
/// keep their own chunk.
pub(super) struct UsedIds {
    leads: Vec<u64>,
    /// `starts[p]`: the first lead whose top 16 bits are `p` or more; 65 537 of them.
    starts: Vec<u32>,
}

impl UsedIds {
    /// The chunks the images `names` use, each manifest read as a stream
    /// (`Repository::load_spilled`).
    pub fn of_images(repo: &Repository, names: &[String]) -> Result<UsedIds> {
        let mut leads = Vec::new();
        for n in names {
            gather(&*repo.load_spilled(n)?, &mut leads, lead)?;
        }
        Ok(UsedIds::new(leads))
    }

    /// `leads` must be sorted and distinct (`merge_distinct`'s result).
    fn new(mut leads: Vec<u64>) -> UsedIds {
        leads.shrink_to_fit();
        let mut starts = Vec::with_capacity(65_537);
        let mut at = 0usize;
        for p in 0..=65_536u64 {
            while leads.get(at).is_some_and(|l| l >> 48 < p) {
                at += 1;
            }
            // More than 4 Gi distinct chunks is 32 GiB of leads: not held anywhere.
            starts.push(u32::try_from(at).unwrap_or(u32::MAX));
        }
        UsedIds { leads, starts }
    }

    /// True for every chunk in use (and for one sharing its first 8 bytes).
    pub fn may_use(&self, id: &ChunkId) -> bool {
        let l = lead(id);
        let p = (l >> 48) as usize;
        let (Some(&a), Some(&b)) = (self.starts.get(p), self.starts.get(p + 1)) else {
            return false;
        };
        self.leads
            .get(a as usize..b as usize)
            .is_some_and(|run| run.binary_search(&l).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: [u8; 3], last: u8) -> ChunkId {
        let mut a = [0u8; 32];
        a[..3].copy_from_slice(&b);
        a[31] = last;
        ChunkId(a)
    }

    #[test]
    fn every_chunk_in_use_may_be_and_others_only_by_their_first_8_bytes() {
        let members = [
            [0, 0, 0],
            [0, 0, 9],
            [0, 1, 0],
            [0x80, 0, 1],
            [0xff, 0xff, 0xff],
        ];
        let mut leads = Vec::new();
        merge_distinct(
            &mut leads,
            members.iter().map(|&b| lead(&id(b, 7))).collect(),
        );
        merge_distinct(
            &mut leads,
            vec![lead(&id([0, 1, 0], 7)), lead(&id([0, 0, 0], 7))],
        );
        assert_eq!(leads.len(), members.len());
        let set = UsedIds::new(leads);
        for b in members {
            assert!(set.may_use(&id(b, 7)), "{b:?}");
            // The price of 8 bytes: an id differing only further on is taken for it.
            assert!(set.may_use(&id(b, 8)), "{b:?}");
        }
        for b in [
            [0, 0, 1],
            [0, 2, 0],
            [0x80, 0, 0],
            [0xff, 0xff, 0xfe],
            [1, 0, 0],
        ] {
            assert!(!set.may_use(&id(b, 7)), "{b:?}");
        }
        assert!(!UsedIds::new(Vec::new()).may_use(&id([0, 0, 0], 7)));
    }
}
