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
//!
//! When every record's stored bytes fit with room to spare, the check also decodes
//! the first records (in the write phase's order) for which the spare room holds their
//! decoded bytes, hashes every chunk the image needs from them, and keeps those bytes
//! instead (`Kept::Decoded`, `decode_plan`): the write phase writes them as they are.
//! The check waits on the network, so that decode and hash run on cores that would
//! otherwise idle, and the write phase, which follows it, has that much less to do.
//! The total work is the same; on a local disk (no budget) nothing changes.

use super::id::PackId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Least and most bytes of checked records kept on a remote store by default
/// (`IRONCLONE_RESTORE_CACHE_MIB` replaces the budget on any store; 0 turns the cache
/// off).
const MIN_REMOTE_BUDGET: u64 = 64 << 20;
const MAX_REMOTE_BUDGET: u64 = 1 << 30;

/// A record the check kept for the write phase.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum KeptRecord {
    /// Its stored bytes, as read (decoded and hashed by the write phase).
    Stored(Vec<u8>),
    /// Its decoded bytes at `buf[start..start + len]` (`start` aligned for direct
    /// writes), every chunk the image needs from it hashed and matched by the check.
    Decoded { buf: Vec<u8>, start: usize },
}

impl KeptRecord {
    fn held(&self) -> u64 {
        match self {
            KeptRecord::Stored(b) | KeptRecord::Decoded { buf: b, .. } => b.capacity() as u64,
        }
    }
}

#[derive(Default)]
struct Kept {
    records: HashMap<(PackId, u64), KeptRecord>,
    bytes: u64,
}

pub(super) struct CheckedRecords {
    budget: u64,
    kept: Mutex<Kept>,
    /// Records kept decoded (`KeptRecord::Decoded`), for the restore's report.
    decoded: AtomicU64,
}

impl CheckedRecords {
    pub(super) fn new(budget: u64) -> Self {
        CheckedRecords {
            budget,
            kept: Mutex::new(Kept::default()),
            decoded: AtomicU64::new(0),
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
        match self.keep(pack, offset, KeptRecord::Stored(bytes)) {
            Some(KeptRecord::Stored(b)) => Some(b),
            _ => None,
        }
    }

    /// Keeps `record` when it fits in the budget; otherwise hands it back.
    pub(super) fn keep(&self, pack: PackId, offset: u64, record: KeptRecord) -> Option<KeptRecord> {
        // What the buffer holds in memory, not only its bytes.
        let len = record.held();
        if self.budget == 0 {
            return Some(record);
        }
        let mut k = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        match k.bytes.checked_add(len) {
            Some(total) if total <= self.budget && !k.records.contains_key(&(pack, offset)) => {
                k.bytes = total;
                if matches!(record, KeptRecord::Decoded { .. }) {
                    self.decoded.fetch_add(1, Ordering::Relaxed);
                }
                k.records.insert((pack, offset), record);
                None
            }
            _ => Some(record),
        }
    }

    /// How many records the check kept decoded.
    pub(super) fn decoded(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }

    /// The kept bytes of that record, given up by the cache.
    pub(super) fn take(&self, pack: &PackId, offset: u64) -> Option<KeptRecord> {
        if self.budget == 0 {
            return None;
        }
        let mut k = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let b = k.records.remove(&(*pack, offset))?;
        k.bytes = k.bytes.saturating_sub(b.held());
        Some(b)
    }

    /// Which of `records` (stored and decoded lengths, in the write phase's order) the
    /// check decodes and keeps decoded: none unless every record's stored bytes fit,
    /// then the first ones whose decoded bytes (beyond the stored bytes they replace)
    /// still fit in what is left, so that keeping them never pushes another record's
    /// stored bytes out of the budget. `slack` is added to each decoded buffer (its
    /// alignment room).
    pub(super) fn decode_plan(&self, records: &[(u64, u64)], slack: u64) -> Vec<bool> {
        let stored: u64 = records.iter().map(|r| r.0).sum();
        if self.budget == 0 || stored > self.budget {
            return vec![false; records.len()];
        }
        let mut spare = self.budget - stored;
        records
            .iter()
            .map(|&(stored, raw)| {
                let extra = raw.saturating_add(slack).saturating_sub(stored);
                let fits = extra <= spare;
                if fits {
                    spare -= extra;
                }
                fits
            })
            .collect()
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
        assert_eq!(c.take(&p, 0), Some(KeptRecord::Stored(vec![1; 6])));
        assert_eq!(c.take(&p, 0), None, "given once");
        assert_eq!(c.take(&p, 100), None, "never kept");
        assert_eq!(c.offer(p, 100, vec![2; 6]), None, "room again after a take");
        let off = CheckedRecords::new(0);
        assert_eq!(off.offer(p, 0, vec![1]), Some(vec![1]));
        assert_eq!(off.take(&p, 0), None);
    }

    #[test]
    fn decodes_only_what_leaves_room_for_every_other_records_stored_bytes() {
        let c = CheckedRecords::new(100);
        // Stored 10 + 10 + 10 = 30: 70 spare; each decoded record costs raw - stored.
        assert_eq!(
            c.decode_plan(&[(10, 40), (10, 40), (10, 40)], 0),
            vec![true, true, false],
            "30 + 30 fit in 70, a third 30 does not"
        );
        assert_eq!(
            c.decode_plan(&[(10, 40), (10, 100), (10, 40)], 0),
            vec![true, false, true],
            "a record too large is passed over, a later one still fits"
        );
        assert_eq!(
            c.decode_plan(&[(10, 40), (10, 40)], 5),
            vec![true, true],
            "slack counted"
        );
        assert_eq!(
            CheckedRecords::new(25).decode_plan(&[(10, 11), (10, 11), (10, 11)], 0),
            vec![false, false, false],
            "the stored bytes alone do not fit: nothing is decoded"
        );
        assert_eq!(
            CheckedRecords::new(0).decode_plan(&[(10, 11)], 0),
            vec![false],
            "no budget (a local disk)"
        );
    }
}
