//! Records the restore's check fetched from a remote store, kept for the write phase.
//!
//! The check reads every record the image needs before the first write (so a damaged
//! repository is refused while the target is untouched), and the write phase reads
//! them again. On a local disk the second read comes from the page cache; on S3 it is
//! a second download of everything. Checked records are therefore kept in memory up to
//! a budget, and the write phase takes each from here instead of the network (a slab
//! is freed once all its records are taken). Past the budget a record is simply fetched again: memory stays bounded
//! whatever the image size, and an image whose stored bytes fit is downloaded once.
//!
//! The budget is a quarter of what the machine can spare (`MemAvailable`), between
//! 64 MiB and 1 GiB: the second download is what holds an S3 restore at about half the
//! local speed (docs/BENCH.md, "Where the S3 time goes"), and memory the restore does
//! not use is worth nothing to it, while the live system's RAM disk and the restore's
//! own index and manifest need the rest.
//!
//! A kept record has passed the check (its header matched the index, its CRC its
//! bytes); the write phase decodes and hashes it like any other.

use super::id::PackId;
use crate::slab::Slab;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Least and most bytes of checked records kept on a remote store by default
/// (`IRONCLONE_RESTORE_CACHE_MIB` replaces the budget on any store; 0 turns the cache
/// off).
const MIN_REMOTE_BUDGET: u64 = 64 << 20;
const MAX_REMOTE_BUDGET: u64 = 1 << 30;

/// Kept records are copied into slabs of this size (a larger record gets a slab of its
/// own). A record kept as a `Vec` of its own was a fresh allocation whose every page
/// faulted in on the copy: with slabs the kernel makes the pages present in one call
/// per 8 MiB (crate::slab), and the write phase decodes each record where it lies.
const SLAB_BYTES: usize = 8 << 20;

/// A slab with less room than this is no longer offered records. Records are up to a
/// few MiB (a frame's stored bytes), so filling slabs strictly one after the other left
/// about half a record unused in each: 57 MiB more at the peak of the bench's S3
/// restore than a `Vec` each (docs/BENCH.md); each record goes into the first slab
/// with room for it instead.
const FULL_BELOW: usize = 64 << 10;

/// Where a kept record's bytes are: its slab, and the range in it.
#[derive(Clone, Copy)]
struct Place {
    slab: usize,
    start: usize,
    len: usize,
}

/// A slab and how many of its records are still to be taken (the cache lets it go at
/// 0; it is freed when the last record taken from it is written).
struct Held {
    slab: Arc<Slab>,
    live: usize,
}

/// The stored bytes of a record for the write phase: read into a pooled buffer, or
/// kept by the check (then read in place in their slab, not copied out).
pub(super) enum Stored {
    Read(Vec<u8>),
    Kept {
        slab: Arc<Slab>,
        start: usize,
        len: usize,
    },
}

impl Stored {
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Stored::Read(v) => v,
            Stored::Kept { slab, start, len } => slab.get(*start..*start + *len).unwrap_or(&[]),
        }
    }
}

#[derive(Default)]
struct Kept {
    records: HashMap<(PackId, u64), Place>,
    slabs: Vec<Option<Held>>,
    /// The slabs still offered records (at least `FULL_BELOW` of room), oldest first.
    open: Vec<usize>,
    /// The capacity of the slabs held: what the budget bounds.
    bytes: u64,
}

impl Kept {
    /// A slab with `len` bytes of room: the first open one that has it, or a new one
    /// within `budget`.
    fn room(&mut self, len: usize, budget: u64) -> Option<usize> {
        let slabs = &self.slabs;
        let room = |i: &usize| match slabs.get(*i) {
            Some(Some(h)) => h.slab.capacity() - h.slab.len(),
            _ => 0,
        };
        self.open.retain(|i| room(i) >= FULL_BELOW);
        if let Some(&i) = self.open.iter().find(|i| room(i) >= len) {
            return Some(i);
        }
        let cap = len.max(SLAB_BYTES);
        let total = self.bytes.checked_add(cap as u64)?;
        if total > budget {
            return None;
        }
        let slab = Arc::new(Slab::new(cap)?);
        self.bytes = total;
        self.slabs.push(Some(Held { slab, live: 0 }));
        let i = self.slabs.len() - 1;
        // A record as large as a slab or larger has one to itself.
        if len < cap {
            self.open.push(i);
        }
        Some(i)
    }
}

pub(super) struct CheckedRecords {
    budget: u64,
    kept: Mutex<Kept>,
}

impl CheckedRecords {
    pub(super) fn new(budget: u64) -> Self {
        CheckedRecords {
            budget,
            kept: Mutex::new(Kept::default()),
        }
    }

    /// The budget for a store: none on a local disk (its second read comes from the
    /// page cache). `IRONCLONE_RESTORE_CACHE_MIB` sets it on any store (measurements,
    /// and tests of the kept records on a local repository).
    pub(super) fn budget(local: bool) -> u64 {
        let set = std::env::var("IRONCLONE_RESTORE_CACHE_MIB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        match (set, local) {
            (Some(m), _) => m.saturating_mul(1 << 20),
            (None, true) => 0,
            (None, false) => remote_default(crate::meminfo::mem_available()),
        }
    }

    /// Keeps a copy of the checked stored bytes of the record at `offset` of `pack`
    /// when they fit in the budget; whether it was kept.
    pub(super) fn offer(&self, pack: PackId, offset: u64, bytes: &[u8]) -> bool {
        if self.budget == 0 {
            return false;
        }
        let mut k = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if k.records.contains_key(&(pack, offset)) {
            return false;
        }
        let Some(i) = k.room(bytes.len(), self.budget) else {
            return false;
        };
        let Some(Some(h)) = k.slabs.get_mut(i) else {
            return false;
        };
        // Only taken records share a slab, and none is taken before the check ends.
        let Some(slab) = Arc::get_mut(&mut h.slab) else {
            return false;
        };
        let start = slab.len();
        slab.extend_from_slice(bytes);
        h.live += 1;
        let len = bytes.len();
        k.records.insert(
            (pack, offset),
            Place {
                slab: i,
                start,
                len,
            },
        );
        true
    }

    /// Whether the record at `offset` of `pack` is kept.
    pub(super) fn holds(&self, pack: &PackId, offset: u64) -> bool {
        if self.budget == 0 {
            return false;
        }
        let k = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        k.records.contains_key(&(*pack, offset))
    }

    /// The kept bytes of that record, given up by the cache.
    pub(super) fn take(&self, pack: &PackId, offset: u64) -> Option<Stored> {
        if self.budget == 0 {
            return None;
        }
        let mut k = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let p = k.records.remove(&(*pack, offset))?;
        let slot = k.slabs.get_mut(p.slab)?;
        let h = slot.as_mut()?;
        let out = Stored::Kept {
            slab: h.slab.clone(),
            start: p.start,
            len: p.len,
        };
        h.live = h.live.saturating_sub(1);
        if h.live == 0 {
            let cap = h.slab.capacity() as u64;
            *slot = None;
            k.bytes = k.bytes.saturating_sub(cap);
            k.open.retain(|&i| i != p.slab);
        }
        Some(out)
    }
}

/// A quarter of `available`, kept between the least and the most; the least when the
/// kernel does not say.
fn remote_default(available: Option<u64>) -> u64 {
    available.map_or(MIN_REMOTE_BUDGET, |a| {
        (a / 4).clamp(MIN_REMOTE_BUDGET, MAX_REMOTE_BUDGET)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_budget_follows_available_memory_within_bounds() {
        assert_eq!(remote_default(None), MIN_REMOTE_BUDGET);
        assert_eq!(remote_default(Some(100 << 20)), MIN_REMOTE_BUDGET);
        assert_eq!(remote_default(Some(2 << 30)), 512 << 20);
        assert_eq!(remote_default(Some(64 << 30)), MAX_REMOTE_BUDGET);
    }

    #[test]
    fn a_record_goes_into_the_first_slab_with_room() {
        const MIB: usize = 1 << 20;
        let c = CheckedRecords::new(3 * SLAB_BYTES as u64);
        let p = PackId([2; 32]);
        let slab_of = |off: u64| c.kept.lock().unwrap().records[&(p, off)].slab;
        assert!(c.offer(p, 0, &vec![1; 6 * MIB]));
        assert!(
            c.offer(p, 1, &vec![2; 3 * MIB]),
            "not in the first: a second slab"
        );
        assert!(c.offer(p, 2, &vec![3; 3 * MIB / 2]), "back in the first");
        assert!(c.offer(p, 3, &vec![4; 3 * MIB]), "in the second");
        assert_eq!(
            (slab_of(0), slab_of(1), slab_of(2), slab_of(3)),
            (0, 1, 0, 1)
        );
        assert_eq!(c.kept.lock().unwrap().bytes, 2 * SLAB_BYTES as u64);
        let bytes = |s: Option<Stored>| s.map(|s| s.bytes().to_vec());
        assert_eq!(bytes(c.take(&p, 2)), Some(vec![3; 3 * MIB / 2]));
        assert_eq!(bytes(c.take(&p, 3)), Some(vec![4; 3 * MIB]));
    }

    #[test]
    fn keeps_within_the_budget_and_gives_each_record_once() {
        let slab = SLAB_BYTES as u64;
        let c = CheckedRecords::new(2 * slab);
        let p = PackId([1; 32]);
        assert!(c.offer(p, 0, &[1; 6]), "fits");
        assert!(!c.offer(p, 0, &[9; 6]), "kept once");
        assert!(c.offer(p, 100, &vec![2; SLAB_BYTES]), "a slab of its own");
        assert!(!c.offer(p, 200, &vec![3; SLAB_BYTES]), "over the budget");
        assert!(c.offer(p, 300, &[4; 4]), "in the first slab's room");
        assert!(c.holds(&p, 300) && !c.holds(&p, 200));
        let bytes = |s: Option<Stored>| s.map(|s| s.bytes().to_vec());
        assert_eq!(bytes(c.take(&p, 0)), Some(vec![1; 6]));
        assert!(c.take(&p, 0).is_none(), "given once");
        assert!(c.take(&p, 200).is_none(), "never kept");
        let small = c.take(&p, 300);
        assert_eq!(
            c.kept.lock().unwrap().bytes,
            slab,
            "the cache let its slab go"
        );
        assert_eq!(bytes(small), Some(vec![4; 4]));
        assert_eq!(bytes(c.take(&p, 100)).map(|v| v.len()), Some(SLAB_BYTES));
        assert_eq!(c.kept.lock().unwrap().bytes, 0, "every slab freed");
        assert!(
            c.offer(p, 200, &vec![3; SLAB_BYTES]),
            "room again after the takes"
        );
        let off = CheckedRecords::new(0);
        assert!(!off.offer(p, 0, &[1]));
        assert!(off.take(&p, 0).is_none());
    }
}
