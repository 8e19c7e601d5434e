//! Records the restore's check fetched from a remote store, kept for the write phase.
//!
//! The check reads every record the image needs before the first write (so a damaged
//! repository is refused while the target is untouched), and the write phase reads
//! them again. On a local disk the second read comes from the page cache; on S3 it is
//! a second download of everything. Checked records are therefore kept in memory up to
//! a budget, and the write phase takes each from here instead of the network (and so
//! frees it). Past the budget a record is simply fetched again: memory stays bounded
//! whatever the image size, and a small image is downloaded once.
//!
//! A kept record has passed the check (its header matched the index, its CRC its
//! bytes); the write phase decodes and hashes it like any other.

use super::id::PackId;
use std::collections::HashMap;
use std::sync::Mutex;

/// Bytes of checked records kept on a remote store (`IRONCLONE_RESTORE_CACHE_MIB`
/// replaces it; 0 turns the cache off).
pub(super) const REMOTE_BUDGET: u64 = 64 << 20;

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

    /// The budget for a store: none on a local disk.
    pub(super) fn budget(local: bool) -> u64 {
        if local {
            return 0;
        }
        std::env::var("IRONCLONE_RESTORE_CACHE_MIB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(REMOTE_BUDGET, |m| m.saturating_mul(1 << 20))
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

#[cfg(test)]
mod tests {
    use super::*;

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
