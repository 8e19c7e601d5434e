//! Records the restore's check fetched from a remote store, kept for the write phase.
//!
//! The check reads every record the image needs before the first write (so a damaged
//! repository is refused while the target is untouched), and the write phase reads
//! them again. On a local disk the second read comes from the page cache; on S3 it is
//! a second download of everything. Checked records are therefore kept in memory up to
//! a budget, and the write phase takes each from here instead of the network (and so
//! frees it). Past the budget a record is simply fetched again: memory stays bounded
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
use std::collections::HashMap;
use std::sync::Mutex;

/// Least and most bytes of checked records kept on a remote store by default
/// (`IRONCLONE_RESTORE_CACHE_MIB` replaces the budget on any store; 0 turns the cache
/// off).
const MIN_REMOTE_BUDGET: u64 = 64 << 20;
const MAX_REMOTE_BUDGET: u64 = 1 << 30;

#[derive(Default)]
struct Kept {
    records: HashMap<(PackId, u64), Vec<u8>>,
    bytes: u64,
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

    /// Keeps the checked stored bytes of the record at `offset` of `pack` when they
    /// fit in the budget; otherwise hands the buffer back.
    pub(super) fn offer(&self, pack: PackId, offset: u64, bytes: Vec<u8>) -> Option<Vec<u8>> {
        // What the buffer holds in memory, not only its bytes.
        let len = bytes.capacity() as u64;
        if self.budget == 0 {
            return Some(bytes);
        }
        let mut k = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        match k.bytes.checked_add(len) {
            Some(total) if total <= self.budget && !k.records.contains_key(&(pack, offset)) => {
                k.bytes = total;
                k.records.insert((pack, offset), bytes);
                None
            }
            _ => Some(bytes),
        }
    }

    /// Whether `len` more bytes would be kept now (so that a caller copies them only
    /// then).
    pub(super) fn has_room(&self, len: usize) -> bool {
        let k = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        k.bytes.saturating_add(len as u64) <= self.budget
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
    pub(super) fn take(&self, pack: &PackId, offset: u64) -> Option<Vec<u8>> {
        if self.budget == 0 {
            return None;
        }
        let mut k = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let b = k.records.remove(&(*pack, offset))?;
        k.bytes = k.bytes.saturating_sub(b.capacity() as u64);
        Some(b)
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
    fn keeps_within_the_budget_and_gives_each_record_once() {
        let c = CheckedRecords::new(10);
        let p = PackId([1; 32]);
        assert_eq!(c.offer(p, 0, vec![1; 6]), None, "fits");
        assert_eq!(
            c.offer(p, 100, vec![2; 6]),
            Some(vec![2; 6]),
            "over the budget"
        );
        assert_eq!(c.offer(p, 200, vec![3; 4]), None, "fits in what is left");
        assert_eq!(c.take(&p, 0), Some(vec![1; 6]));
        assert_eq!(c.take(&p, 0), None, "given once");
        assert_eq!(c.take(&p, 100), None, "never kept");
        assert_eq!(c.offer(p, 100, vec![2; 6]), None, "room again after a take");
        let off = CheckedRecords::new(0);
        assert_eq!(off.offer(p, 0, vec![1]), Some(vec![1]));
        assert_eq!(off.take(&p, 0), None);
    }
}
