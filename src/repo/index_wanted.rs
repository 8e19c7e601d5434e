//! The chunks an index of one image's chunks keeps (`Index::load_only`,
//! `Index::load_refs`): their ids, sorted and distinct, found by bucket.
//!
//! Why two forms: `verify` gathers the ids of many manifests it does not keep, so it
//! owns them (32 bytes each). A restore or a browse has its image's chunk lists in a
//! scratch file (restore_chunks.rs `SpilledIds`), and a copy of every id in memory was
//! a quarter of a restore's memory (a 1 TB image at 256 KiB chunks has 4 Mi of them):
//! there the index names each chunk by its number among the manifest's chunk
//! references and keeps beside it 4 bytes of its id, 8 bytes a chunk. The 4 bytes
//! settle the lookups of chunks the image does not use (a fleet's other machines, every
//! index entry is looked up) without reading the list; a match of them is confirmed
//! against the full id read from it.

use super::error::{RepoError, Result};
use super::id::ChunkId;
use super::manifest::ChunkRef;
use std::cmp::Ordering;
use std::sync::Arc;

/// Chunk references numbered 0..count, each with its id (`None`: a zero chunk).
/// Ids are returned by value: a source may read them from a file (restore_chunks.rs).
pub trait IdSource: Send + Sync {
    fn count(&self) -> usize;
    fn id(&self, g: usize) -> Option<ChunkId>;
    /// Every chunk's id in order (a file-backed source reads them in blocks).
    fn each(&self, f: &mut dyn FnMut(usize, Option<ChunkId>)) {
        for g in 0..self.count() {
            f(g, self.id(g));
        }
    }
}

impl IdSource for Vec<ChunkRef> {
    fn count(&self) -> usize {
        self.len()
    }
    fn id(&self, g: usize) -> Option<ChunkId> {
        self.get(g)?.id
    }
}

/// A wanted chunk of a `Refs` set: its number in the source and bytes 4..8 of its id
/// (bytes 0..4 pick the bucket, so these are what tells a bucket's ids apart).
#[derive(Clone, Copy)]
pub(super) struct Tagged {
    tag: u32,
    g: u32,
}

pub(super) enum Wanted {
    Owned(Vec<ChunkId>),
    Refs {
        src: Arc<dyn IdSource>,
        order: Vec<Tagged>,
    },
}

/// The first 8 bytes of an id, big-endian: its order's leading part.
pub(super) fn lead(id: &ChunkId) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id.0[..8]);
    u64::from_be_bytes(b)
}

impl Wanted {
    /// `ids` sorted and distinct, with their buckets.
    pub(super) fn owned(ids: impl IntoIterator<Item = ChunkId>) -> (Wanted, Buckets) {
        let mut ids: Vec<ChunkId> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        ids.shrink_to_fit();
        let buckets = Buckets::new(ids.len(), ids.iter().map(lead));
        (Wanted::Owned(ids), buckets)
    }

    /// The distinct ids of `src`'s chunks, referred to by number.
    pub(super) fn refs(src: Arc<dyn IdSource>) -> Result<(Wanted, Buckets)> {
        let n = src.count();
        if u32::try_from(n).is_err() {
            return Err(RepoError::Pipeline(format!("{n} chunks in one image")));
        }
        // Sorted by the leading 8 bytes first: the full ids (a read of the manifest
        // each) are compared only where those are equal, i.e. for repeats.
        let mut keyed: Vec<(u64, u32)> = Vec::with_capacity(n);
        src.each(&mut |g, id| {
            if let Some(id) = id {
                keyed.push((lead(&id), g as u32));
            }
        });
        let full = |g: u32| src.id(g as usize);
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| full(a.1).cmp(&full(b.1))));
        keyed.dedup_by(|b, a| a.0 == b.0 && full(a.1) == full(b.1));
        let buckets = Buckets::new(keyed.len(), keyed.iter().map(|k| k.0));
        let order = keyed
            .iter()
            .map(|&(l, g)| Tagged { tag: l as u32, g })
            .collect();
        Ok((Wanted::Refs { src, order }, buckets))
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Wanted::Owned(ids) => ids.len(),
            Wanted::Refs { order, .. } => order.len(),
        }
    }

    /// The k-th wanted id (in sorted order).
    pub(super) fn id(&self, k: usize) -> Option<ChunkId> {
        match self {
            Wanted::Owned(ids) => ids.get(k).copied(),
            Wanted::Refs { src, order } => src.id(order.get(k)?.g as usize),
        }
    }

    /// The position of `id` among positions `lo..hi` (one bucket), if there.
    fn find_in(&self, lo: usize, hi: usize, id: &ChunkId) -> Option<usize> {
        match self {
            Wanted::Owned(ids) => Some(lo + ids.get(lo..hi)?.binary_search(id).ok()?),
            Wanted::Refs { src, order } => {
                let tag = lead(id) as u32;
                let at = order.get(lo..hi)?.iter().position(|t| {
                    t.tag == tag && src.id(t.g as usize).map(|x| x.cmp(id)) == Some(Ordering::Equal)
                })?;
                Some(lo + at)
            }
        }
    }
}

/// Where in the sorted ids each value of their leading bits starts: a lookup searches the
/// few ids of one bucket, not all of them. Ids are blake3 output (keyed or not), so the
/// bits are uniform. A bucket per two to four ids: 1-2 bytes per id. A plain binary
/// search over 4 Mi ids was 7% of a restore's CPU time (`perf`).
pub(super) struct Buckets {
    shift: u32,
    starts: Vec<u32>,
}

impl Buckets {
    /// Buckets over `n` sorted ids whose leading 8 bytes are `leads`.
    fn new(n: usize, leads: impl Iterator<Item = u64>) -> Self {
        // At most 30 bits (n < 2^32): bytes 4..8 stay free for the `Refs` tag.
        let bits = (usize::BITS - n.leading_zeros())
            .saturating_sub(2)
            .clamp(1, 30);
        let shift = 64 - bits;
        let mut starts = Vec::with_capacity((1usize << bits) + 1);
        let mut leads = leads.peekable();
        let mut i = 0u32;
        for b in 0..=(1u64 << bits) {
            while leads.next_if(|l| l >> shift < b).is_some() {
                i += 1;
            }
            starts.push(i);
        }
        Buckets { shift, starts }
    }

    /// The position of `id` in `wanted`, if there.
    pub(super) fn find(&self, wanted: &Wanted, id: &ChunkId) -> Option<usize> {
        let b = (lead(id) >> self.shift) as usize;
        let (lo, hi) = (
            *self.starts.get(b)? as usize,
            *self.starts.get(b + 1)? as usize,
        );
        wanted.find_in(lo, hi, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(ids: &[Option<u32>]) -> Vec<ChunkRef> {
        ids.iter()
            .zip(0u64..)
            .map(|(n, i)| ChunkRef {
                offset: i * 4096,
                len: 4096,
                id: n.map(|n| ChunkId::of(&n.to_le_bytes())),
            })
            .collect()
    }

    #[test]
    fn refs_find_each_distinct_id_once_and_nothing_else() {
        // Repeats, zero chunks, and enough ids for many buckets.
        let mut ns: Vec<Option<u32>> = (0..5000).map(Some).collect();
        ns.extend((0..5000).step_by(3).map(Some));
        ns.extend([None, None]);
        let chunks = Arc::new(refs(&ns));
        let (w, b) = Wanted::refs(chunks.clone()).unwrap();
        let (o, ob) = Wanted::owned(chunks.iter().filter_map(|c| c.id));
        assert_eq!(w.len(), 5000);
        assert_eq!(o.len(), 5000);
        for k in 0..5000 {
            // The same sorted order as the owned ids.
            assert_eq!(w.id(k), o.id(k), "position {k}");
        }
        for c in chunks.iter() {
            let Some(id) = c.id else { continue };
            let k = b.find(&w, &id).expect("a wanted id is found");
            assert_eq!(w.id(k), Some(id));
            assert_eq!(ob.find(&o, &id), Some(k));
        }
        for n in 5000..7000u32 {
            let id = ChunkId::of(&n.to_le_bytes());
            assert_eq!(b.find(&w, &id), None, "{n} is not wanted");
        }
    }

    #[test]
    fn buckets_find_every_id_and_nothing_else() {
        for n in [0usize, 1, 2, 3, 5, 64, 1000, 4097] {
            let mut ids: Vec<ChunkId> = (0..n).map(|i| ChunkId::of(&i.to_le_bytes())).collect();
            // Ids at both ends of the range of leading bits.
            if n > 1 {
                ids[0] = ChunkId([0; 32]);
                ids[1] = ChunkId([0xff; 32]);
            }
            let chunks: Vec<ChunkRef> = ids
                .iter()
                .map(|&id| ChunkRef {
                    offset: 0,
                    len: 1,
                    id: Some(id),
                })
                .collect();
            ids.sort_unstable();
            let owned = Wanted::owned(ids.iter().copied());
            let refs = Wanted::refs(Arc::new(chunks)).unwrap();
            for (w, b) in [owned, refs] {
                for (i, id) in ids.iter().enumerate() {
                    assert_eq!(b.find(&w, id), Some(i), "{n} ids, id {i}");
                }
                for i in n..n + 100 {
                    assert_eq!(b.find(&w, &ChunkId::of(&i.to_le_bytes())), None);
                }
                assert!(
                    b.starts.len() <= n.max(4) + 1,
                    "{} buckets for {n} ids",
                    b.starts.len()
                );
            }
        }
    }

    #[test]
    fn a_tag_match_alone_is_not_a_find() {
        // An id equal to a wanted one in bytes 0..8 (bucket and tag) but not after.
        let chunks = Arc::new(refs(&[Some(1), Some(2)]));
        let (w, b) = Wanted::refs(chunks.clone()).unwrap();
        let mut twin = chunks[0].id.unwrap();
        twin.0[31] ^= 1;
        assert_eq!(b.find(&w, &twin), None);
        assert!(b.find(&w, &chunks[0].id.unwrap()).is_some());
    }
}
