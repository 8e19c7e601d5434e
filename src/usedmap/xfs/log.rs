//! Is the internal log clean? A log that does not end with an unmount record holds
//! changes (allocations among them) that are not yet in the free-space trees on disk:
//! blocks the trees call free may hold data the log replay will claim. Such a
//! filesystem (a crash, a power cut, a dead machine) cannot be mapped by its trees,
//! so it is imaged whole (raw), with the reason.
//!
//! The head is found as the kernel's `xlog_find_head` does in the common case: the
//! log's blocks carry cycle numbers `c ... c, c-1 ... c-1` (or all `c` when the last
//! pass ended exactly at the log's end), and the head is the first block of the lower
//! cycle. The last record before the head must be the unmount record and end exactly
//! there. Anything else, including layouts this simple search does not understand
//! (torn writes at the head), counts as dirty: copying everything is always safe.

use super::{read, XfsError};
use crate::device::BlockDevice;
use crate::ondisk::xfs::log::{block_cycle, is_unmount_record, RecHeader, BBSIZE};
use crate::ondisk::xfs::Superblock;

/// How far back from the head a record header is looked for: more than the largest
/// record (256 KiB of data plus its header blocks).
const MAX_BACK: u64 = 1024;

/// Why the log is not known to be clean, or `None` when it ends with an unmount record.
pub(super) fn dirty_reason(
    dev: &dyn BlockDevice,
    sb: &Superblock,
) -> Result<Option<String>, XfsError> {
    let bs = sb.block_size();
    // sb_logstart is an XFS_FSB: AG number above sb_agblklog bits (checked in parse).
    let agblklog = u64::from(sb.sb_agblocks).next_power_of_two().ilog2();
    let ag = (sb.sb_logstart >> agblklog) as u32;
    let agbno = sb.sb_logstart & ((1u64 << agblklog) - 1);
    let log_off = sb.ag_offset(ag).saturating_add(agbno.saturating_mul(bs));
    let n = u64::from(sb.sb_logblocks).saturating_mul(bs) / BBSIZE;
    let block = |i: u64| -> Result<Vec<u8>, XfsError> {
        let off = log_off.saturating_add((i % n) * BBSIZE);
        read(dev, off, BBSIZE, "a log block")
    };
    let cycle = |i: u64| -> Result<Option<u32>, XfsError> { Ok(block_cycle(&block(i)?)) };
    let (Some(first), Some(last)) = (cycle(0)?, cycle(n - 1)?) else {
        return Ok(Some(
            "its first or last block cannot be read as a log block".into(),
        ));
    };
    let head = if first == last {
        0
    } else if last.wrapping_add(1) == first {
        // First block whose cycle is `last`: cycles before it are `first`.
        let (mut lo, mut hi) = (0u64, n - 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if cycle(mid)? == Some(first) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    } else {
        return Ok(Some(format!(
            "its cycle numbers ({first} at the start, {last} at the end) do not show where \
             it ends"
        )));
    };
    for back in 1..=MAX_BACK.min(n) {
        let at = (head + n - back) % n;
        let b = block(at)?;
        let Some(h) = RecHeader::parse(&b) else {
            continue;
        };
        if (at + h.blocks()) % n != head {
            return Ok(Some(format!(
                "its last record (log block {at}) does not end at the head (block {head})"
            )));
        }
        let data = block(at + h.header_blocks)?;
        return Ok(if is_unmount_record(&h, &data) {
            None
        } else {
            Some(format!(
                "it ends with changes not yet written to the filesystem (log block {at}, \
                 {} operations)",
                h.h_num_logops
            ))
        });
    }
    Ok(Some(format!(
        "no record header within {MAX_BACK} blocks of its head"
    )))
}
