//! The backup's reader thread: the source is read with the two-pass rescue driver
//! (`rescue::RescueReader`), so a cluster of bad sectors costs pass 1 a few failed
//! reads and a skip instead of a night of bisection, and the good data behind it
//! reaches the pipeline first. Pieces therefore arrive out of order; each carries
//! its index in the plan's piece list, which is where the writer puts its chunk ref.

use super::Piece;
use crate::device::BlockDevice;
use crate::progress::{Progress, ProgressEvent};
use crate::repo::error::RepoError;
use crate::repo::plan::BackupPlan;
use crate::rescue::{self, RescueOptions, RescueReader, RunError};
use crate::usedmap::{merged, ByteExtent};
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicBool, Ordering};
use thiserror::Error;

/// The rest of the pipeline stopped (an error it reports itself, or an abort).
#[derive(Debug, Error)]
#[error("the backup pipeline stopped")]
struct Stopped;

/// Reads every piece of `plan` and sends `(index, data)` to `tx`, unreadable sectors
/// zero-filled. Returns, per area, what stayed unreadable (area-relative, sorted,
/// merged where ranges touch). Media errors never fail; other device errors do. A
/// stopped pipeline ends the reading early with whatever was found so far.
#[allow(clippy::too_many_arguments)]
pub(super) fn read_plan(
    dev: &dyn BlockDevice,
    plan: &BackupPlan,
    pieces: &[Piece],
    opts: RescueOptions,
    buffers: &(dyn Fn(usize) -> Vec<u8> + Sync),
    tx: Sender<(usize, Vec<u8>)>,
    abort: &AtomicBool,
    progress: &dyn Progress,
) -> Result<Vec<Vec<ByteExtent>>, RepoError> {
    let mut bad: Vec<Vec<ByteExtent>> = vec![Vec::new(); plan.areas.len()];
    let mut rescue = RescueReader::new(dev, opts, progress).with_buffers(buffers);
    let mut sink = |p: rescue::Piece| -> Result<(), Stopped> {
        if abort.load(Ordering::Relaxed) {
            return Err(Stopped);
        }
        if let Some(pc) = pieces.get(p.index) {
            if let (Some(area), Some(list)) = (
                plan.areas.get(pc.area as usize),
                bad.get_mut(pc.area as usize),
            ) {
                list.extend(p.bad.iter().map(|b| ByteExtent {
                    offset: b.offset.saturating_sub(area.offset),
                    len: b.len,
                }));
            }
        }
        tx.send((p.index, p.data)).map_err(|_| Stopped)
    };

    // Areas are announced as pass 1 reaches them (the iterator is lazy).
    let mut cur_area: Option<usize> = None;
    let announce = |cur: &mut Option<usize>, next: Option<usize>| {
        if *cur == next {
            return;
        }
        if let Some(prev) = cur.and_then(|i| plan.areas.get(i)) {
            progress.report(ProgressEvent::PhaseEnd {
                name: prev.name.clone(),
            });
        }
        if let Some(a) = next.and_then(|i| plan.areas.get(i)) {
            progress.report(ProgressEvent::PhaseStart {
                name: a.name.clone(),
                total_bytes: a.extents.iter().map(|e| e.len).sum(),
            });
        }
        *cur = next;
    };
    let order = pieces
        .iter()
        .take_while(|_| !abort.load(Ordering::Relaxed))
        .map(|p| {
            announce(&mut cur_area, Some(p.area as usize));
            // check_plan proved area offset + extent end fits the source.
            let base = plan.areas.get(p.area as usize).map_or(0, |a| a.offset);
            (base.saturating_add(p.offset), p.len as usize)
        });
    let res = rescue.pass1(order, &mut sink).and_then(|set_aside| {
        announce(&mut cur_area, None);
        if abort.load(Ordering::Relaxed) {
            return Ok(rescue.stats().clone());
        }
        rescue.pass2(set_aside, &mut sink)
    });
    match res {
        Ok(_) | Err(RunError::Sink { .. }) => {}
        Err(RunError::Device(e)) => return Err(e.into()),
        Err(e @ RunError::PieceTooBig { .. }) => return Err(RepoError::Pipeline(e.to_string())),
    }
    for list in &mut bad {
        *list = merged(std::mem::take(list));
    }
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_sorts_and_joins_touching_ranges() {
        let e = |offset, len| ByteExtent { offset, len };
        assert_eq!(
            merged(vec![
                e(4096, 512),
                e(0, 512),
                e(512, 512),
                e(8192, 0),
                e(4352, 512)
            ]),
            vec![e(0, 1024), e(4096, 768)]
        );
    }
}
