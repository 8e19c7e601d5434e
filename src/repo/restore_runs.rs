//! Which records the restore's check reads from a remote store with one request: runs
//! of neighbouring records of one pack.
//!
//! Why: each record was one ranged GET of about 1 MiB (a frame of a 4 MiB piece,
//! compressed). A local SeaweedFS spent 0.46 s of CPU serving 128 MiB as 1 MiB ranges
//! and 0.17 s as 8 MiB ones (docs/BENCH.md, "S3 restore: the check's reads in runs"):
//! the requests' own cost, which on a store sharing the client's cores, or serving a
//! lab's restores at once, was the check's time. A backup writes a pack's records in
//! order, so the records one image needs are mostly neighbours; a small gap between two
//! (records of other images) is read and dropped rather than split into two requests.

use super::error::Result;
use super::pack::{self, RecordInfo};
use std::ops::Range;
use std::path::Path;

/// Most bytes one request of the check reads: with `REMOTE_CHECKS` at once, at most
/// 64 MiB of buffers. 8 MiB ranges took a third of 1 MiB ones' store CPU and the same
/// as 16 MiB ones, to within the noise.
pub(super) const RUN_BYTES: u64 = 8 << 20;
/// Most bytes between two records read with them rather than in a request of its own.
const GAP_BYTES: u64 = 256 << 10;

/// Where a record's header starts and its stored bytes end in its pack.
pub(super) fn record_end(r: &RecordInfo) -> Option<u64> {
    r.offset
        .checked_add(r.header_len())?
        .checked_add(u64::from(r.stored_len))
}

/// A run being gathered: where it starts and ends in its pack.
pub(super) struct Open {
    pub start: u64,
    pub end: u64,
}

impl Open {
    /// A run starting with `r`; `None` when `r` is read alone (longer than
    /// `max_stored`: its own read refuses it with its own error).
    pub(super) fn new(r: &RecordInfo, max_stored: u32) -> Option<Open> {
        let end = record_end(r).filter(|_| r.stored_len <= max_stored)?;
        Some(Open {
            start: r.offset,
            end,
        })
    }

    /// Whether `r`, of the same pack, is read with the run (then it is in it): after
    /// its end and within `GAP_BYTES` of it, the run staying within `RUN_BYTES`.
    pub(super) fn join(&mut self, r: &RecordInfo, max_stored: u32) -> bool {
        let Some(end) = record_end(r).filter(|_| r.stored_len <= max_stored) else {
            return false;
        };
        let joins = r.offset >= self.end
            && r.offset - self.end <= GAP_BYTES
            && end - self.start <= RUN_BYTES;
        if joins {
            self.end = end;
        }
        joins
    }
}

/// Record `r`'s stored bytes within `bytes`, a run read from offset `start` of its pack
/// at `path`, checked against the index as a read of its own is (header and CRC:
/// `pack::check_record`). The check and the write phase both split their runs here.
pub(super) fn record_in<'b>(
    path: &Path,
    bytes: &'b [u8],
    start: u64,
    r: &RecordInfo,
) -> Result<&'b [u8]> {
    let at = r.offset.saturating_sub(start) as usize;
    let (hl, sl) = (r.header_len() as usize, r.stored_len as usize);
    let h = bytes.get(at..at + hl).unwrap_or(&[]);
    let stored = bytes.get(at + hl..at + hl + sl).unwrap_or(&[]);
    pack::check_record(path, r, h, stored).map(|()| stored)
}

/// `records` (each with the number of its pack; sorted by pack, then offset) cut into
/// runs read with one request each (`Open`). Every record is in exactly one run, in
/// order.
pub(super) fn runs<'a>(
    records: impl ExactSizeIterator<Item = (usize, &'a RecordInfo)>,
    max_stored: u32,
) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    // The open run and its pack.
    let mut open: Option<(usize, Open)> = None;
    for (k, (pack, r)) in records.enumerate() {
        let joined = match (&mut open, out.last_mut()) {
            (Some((p, o)), Some(run)) if *p == pack => {
                let joins = o.join(r, max_stored);
                if joins {
                    run.end = k + 1;
                }
                joins
            }
            _ => false,
        };
        if !joined {
            out.push(k..k + 1);
            open = Open::new(r, max_stored).map(|o| (pack, o));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::id::ChunkId;
    use crate::repo::pack::Compression;

    fn rec(offset: u64, stored_len: u32) -> RecordInfo {
        RecordInfo {
            id: ChunkId::of(&offset.to_le_bytes()),
            offset,
            raw_len: stored_len,
            stored_len,
            compression: Compression::Zstd,
            crc32: 0,
            members: 0,
        }
    }

    fn cut(recs: &[(usize, RecordInfo)], max: u32) -> Vec<Range<usize>> {
        runs(recs.iter().map(|(p, r)| (*p, r)), max)
    }

    #[test]
    fn neighbours_of_one_pack_are_read_together_within_the_limits() {
        let mib = 1u32 << 20;
        let h = rec(0, 0).header_len();
        // Back to back: one run.
        let mut at = 0u64;
        let mut recs = Vec::new();
        for _ in 0..4 {
            recs.push((0, rec(at, mib)));
            at += h + u64::from(mib);
        }
        assert_eq!(cut(&recs, 8 * mib), vec![0..4]);
        // A gap within GAP_BYTES joins, a wider one does not, another pack does not.
        recs.push((0, rec(at + GAP_BYTES, mib)));
        let after = at + GAP_BYTES + h + u64::from(mib);
        recs.push((0, rec(after + GAP_BYTES + 1, mib)));
        recs.push((1, rec(after + GAP_BYTES + 1 + h + u64::from(mib), mib)));
        assert_eq!(cut(&recs, 8 * mib), vec![0..5, 5..6, 6..7]);
        // RUN_BYTES bounds a run: 8 MiB is 7 records of 1 MiB and their headers.
        let mut at = 0u64;
        let many: Vec<(usize, RecordInfo)> = (0..20)
            .map(|_| {
                let r = rec(at, mib);
                at += h + u64::from(mib);
                (0, r)
            })
            .collect();
        let got = cut(&many, 8 * mib);
        assert_eq!(got.first(), Some(&(0..7)));
        assert_eq!(got.iter().map(|r| r.len()).sum::<usize>(), 20, "each once");
        assert!(got.windows(2).all(|w| w[0].end == w[1].start), "in order");
        // A record over the stored limit is alone (its read refuses it).
        let big = vec![(0, rec(0, mib)), (0, rec(h + u64::from(mib), 3 * mib))];
        assert_eq!(cut(&big, 2 * mib), vec![0..1, 1..2]);
        // Out of order (an overlap the index should not hold): not joined.
        let back = vec![(0, rec(1 << 20, 100)), (0, rec(0, 100))];
        assert_eq!(cut(&back, mib), vec![0..1, 1..2]);
        assert!(cut(&[], mib).is_empty());
    }
}
