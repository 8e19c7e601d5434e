//! ddrescue-style reading of a failing source.
//!
//! A dying disk can take seconds per bad sector, and bad sectors cluster. Reading it
//! front to back with retries spends the whole night in the first damaged area while
//! the good data behind it waits (and the disk may die meanwhile). So reading is
//! split in two passes, as ddrescue does:
//!
//! 1. Big pieces, no retries. A piece that fails is set aside; if failures follow
//!    each other, the reader skips ahead by a growing (bounded) distance, setting
//!    the skipped pieces aside unread.
//! 2. The set-aside pieces are read again, bisected at sector boundaries around the
//!    errors, and each lone failing sector gets a bounded number of retries. All of
//!    pass 2 runs under a time budget; once spent, whatever is unread is given up.
//!
//! Whatever stays unreadable is reported as sector-granular `BadRange`s and handed
//! on zero-filled, so an image is always complete and says exactly what it lacks.
//! Only media errors are treated this way; a caller's mistake (out of range) or a
//! device that cannot be opened is an error.

use crate::device::{BlockDevice, DeviceError};
use crate::progress::{Progress, ProgressEvent};
use crate::usedmap::ByteExtent;
use serde::Serialize;
use std::time::{Duration, Instant};
use thiserror::Error;

/// An unreadable byte range `[offset, offset+len)`, in device bytes, sector-aligned
/// (clipped to the range that was asked for).
pub type BadRange = ByteExtent;

/// The largest piece read in one call; also bounds the reader's buffer.
pub const MAX_PIECE: usize = 64 << 20;

#[derive(Clone, Debug)]
pub struct RescueOptions {
    /// Size of pass-1 reads (and of the pieces handed to `run`'s sink).
    pub piece_size: usize,
    /// Upper bound of the skip after clustered errors in pass 1.
    pub max_skip: u64,
    /// Reads of a lone failing sector in pass 2 (at least 1).
    pub max_retries: u32,
    /// Total time allowed for pass-2 reads; after it, the unread rest is bad.
    pub retry_budget: Duration,
}

impl Default for RescueOptions {
    fn default() -> Self {
        RescueOptions {
            piece_size: 1 << 20,
            max_skip: 64 << 20,
            max_retries: 3,
            retry_budget: Duration::from_secs(600),
        }
    }
}

/// What one chunk read gave up on. Empty `bad` means every byte was read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadOutcome {
    pub bad: Vec<BadRange>,
}

impl ReadOutcome {
    pub fn is_clean(&self) -> bool {
        self.bad.is_empty()
    }
    pub fn bad_bytes(&self) -> u64 {
        self.bad.iter().map(|b| b.len).sum()
    }
}

/// Running totals, for the report at the end of a backup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RescueStats {
    /// `read_at` calls that failed with a media error.
    pub failed_reads: u64,
    /// Final unreadable ranges (after merging within a piece) and their bytes.
    pub bad_ranges: u64,
    pub unreadable_bytes: u64,
    /// Pieces pass 1 set aside (failed or skipped).
    pub deferred_pieces: u64,
    /// The retry budget ran out; some bytes were given up without being retried.
    pub budget_exhausted: bool,
    /// Time spent in pass-2 reads.
    pub retry_millis: u64,
}

/// One piece of an extent handed to `run`'s sink: `data` is complete, with the
/// `bad` ranges (absolute device offsets) zero-filled.
pub struct Piece<'a> {
    pub offset: u64,
    pub data: &'a [u8],
    pub bad: &'a [BadRange],
}

#[derive(Debug, Error)]
pub enum RunError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("rescued data at byte {offset} could not be handed on: {source}")]
    Sink {
        offset: u64,
        #[source]
        source: E,
    },
}

/// Reads through a device, surviving media errors. See the module doc for the passes.
///
/// Two ways to use it:
/// - `read_chunk(offset, buf)`: in order, one chunk at a time (what a streaming
///   backup needs). A failing chunk is bisected and retried at once, under the same
///   budget, so there is no pass-1 skipping.
/// - `run(extents, sink)`: the two-pass driver. Good pieces reach the sink in pass 1
///   in disk order; set-aside pieces reach it in pass 2, later and in order among
///   themselves. Every piece of every extent is delivered exactly once, cut at
///   `piece_size` from the start of its extent whatever happened.
pub struct RescueReader<'a> {
    dev: &'a dyn BlockDevice,
    opts: RescueOptions,
    progress: &'a dyn Progress,
    stats: RescueStats,
    retry_spent: Duration,
    last_beat: Instant,
}

/// How often a retrying reader tells the front end it is still alive.
const HEARTBEAT: Duration = Duration::from_millis(200);

impl<'a> RescueReader<'a> {
    pub fn new(
        dev: &'a dyn BlockDevice,
        mut opts: RescueOptions,
        progress: &'a dyn Progress,
    ) -> Self {
        let sector = sector_of(dev) as usize;
        opts.piece_size = opts.piece_size.clamp(sector, MAX_PIECE.max(sector));
        opts.max_retries = opts.max_retries.max(1);
        RescueReader {
            dev,
            opts,
            progress,
            stats: RescueStats::default(),
            retry_spent: Duration::ZERO,
            last_beat: Instant::now(),
        }
    }

    pub fn stats(&self) -> &RescueStats {
        &self.stats
    }

    pub fn options(&self) -> &RescueOptions {
        &self.opts
    }

    /// Fills `buf` from `offset`. Unreadable sectors are zero-filled and listed in the
    /// outcome (and reported as `ProgressEvent::ReadError`). Errors only for
    /// non-media problems (range outside the device and the like).
    pub fn read_chunk(&mut self, offset: u64, buf: &mut [u8]) -> Result<ReadOutcome, DeviceError> {
        self.dev.check_range(offset, buf.len() as u64)?;
        match self.dev.read_at(offset, buf) {
            Ok(()) => Ok(ReadOutcome::default()),
            Err(e) if e.is_media_error() => {
                self.stats.failed_reads += 1;
                self.recover(offset, buf, true)
            }
            Err(e) => Err(e),
        }
    }

    /// The two-pass driver over a list of extents (see the type's doc). Reports
    /// `Advance` for every delivered piece, `ReadError` for every bad range.
    pub fn run<E, F>(
        &mut self,
        extents: &[ByteExtent],
        mut sink: F,
    ) -> Result<RescueStats, RunError<E>>
    where
        E: std::error::Error + 'static,
        F: FnMut(Piece<'_>) -> Result<(), E>,
    {
        let piece = self.opts.piece_size;
        let mut buf = vec![0u8; piece];
        // (offset, len, failed_once): skipped pieces were never tried.
        let mut deferred: Vec<(u64, usize, bool)> = Vec::new();
        let mut skip_left: u64 = 0;
        let mut next_skip: u64 = 0;
        for (offset, len) in pieces(extents, piece) {
            self.dev.check_range(offset, len as u64)?;
            if skip_left > 0 {
                deferred.push((offset, len, false));
                skip_left = skip_left.saturating_sub(len as u64);
                continue;
            }
            let data = buf.get_mut(..len).unwrap_or_default();
            match self.dev.read_at(offset, data) {
                Ok(()) => {
                    next_skip = 0;
                    sink(Piece {
                        offset,
                        data,
                        bad: &[],
                    })
                    .map_err(|source| RunError::Sink { offset, source })?;
                    self.progress
                        .report(ProgressEvent::Advance { bytes: len as u64 });
                }
                Err(e) if e.is_media_error() => {
                    self.stats.failed_reads += 1;
                    deferred.push((offset, len, true));
                    // Errors come in clusters: each error right after another one
                    // doubles the distance jumped, up to `max_skip`.
                    skip_left = next_skip;
                    next_skip = if next_skip == 0 {
                        piece as u64
                    } else {
                        next_skip.saturating_mul(2).min(self.opts.max_skip)
                    };
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.stats.deferred_pieces = deferred.len() as u64;
        for (offset, len, failed) in deferred {
            let data = buf.get_mut(..len).unwrap_or_default();
            let outcome = self.recover(offset, data, failed)?;
            sink(Piece {
                offset,
                data,
                bad: &outcome.bad,
            })
            .map_err(|source| RunError::Sink { offset, source })?;
            self.progress
                .report(ProgressEvent::Advance { bytes: len as u64 });
        }
        Ok(self.stats.clone())
    }

    fn budget_left(&mut self) -> bool {
        let left = self.retry_spent < self.opts.retry_budget;
        if !left && !self.stats.budget_exhausted {
            self.stats.budget_exhausted = true;
            self.progress.report(ProgressEvent::Warning {
                message: format!(
                    "{}: retry time budget ({} s) used up; unread sectors are recorded as unreadable",
                    self.dev.describe(),
                    self.opts.retry_budget.as_secs()
                ),
            });
        }
        left
    }

    /// One budgeted pass-2 read. `Ok(false)` is a media error.
    fn timed_read(&mut self, offset: u64, buf: &mut [u8]) -> Result<bool, DeviceError> {
        let t = Instant::now();
        let r = self.dev.read_at(offset, buf);
        self.retry_spent = self.retry_spent.saturating_add(t.elapsed());
        self.stats.retry_millis = u64::try_from(self.retry_spent.as_millis()).unwrap_or(u64::MAX);
        if self.last_beat.elapsed() >= HEARTBEAT {
            // A slow failing disk still shows that the job lives.
            self.last_beat = Instant::now();
            self.progress.report(ProgressEvent::Advance { bytes: 0 });
        }
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.is_media_error() => {
                self.stats.failed_reads += 1;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Pass 2 for one piece: bisect at sector boundaries so good halves are read in
    /// one call and only failing sectors are retried one by one.
    fn recover(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        known_failed: bool,
    ) -> Result<ReadOutcome, DeviceError> {
        let sector = sector_of(self.dev);
        let end = offset.saturating_add(buf.len() as u64);
        let mut bad: Vec<BadRange> = Vec::new();
        let mut stack = vec![(offset, end, known_failed)];
        while let Some((s, e, failed)) = stack.pop() {
            let (lo, hi) = ((s - offset) as usize, (e - offset) as usize);
            let Some(part) = buf.get_mut(lo..hi) else {
                continue;
            };
            if !self.budget_left() {
                part.fill(0);
                bad.push(BadRange {
                    offset: s,
                    len: e - s,
                });
                continue;
            }
            if !failed && self.timed_read(s, part)? {
                continue;
            }
            // First sector boundary after `s`; a range not crossing one is a sector.
            let first_cut = (s / sector).saturating_add(1).saturating_mul(sector);
            if first_cut >= e {
                let mut ok = false;
                let tries = if failed {
                    self.opts.max_retries
                } else {
                    self.opts.max_retries - 1
                };
                for _ in 0..tries {
                    if !self.budget_left() {
                        break;
                    }
                    if self.timed_read(s, part)? {
                        ok = true;
                        break;
                    }
                }
                if !ok {
                    part.fill(0);
                    bad.push(BadRange {
                        offset: s,
                        len: e - s,
                    });
                }
                continue;
            }
            let mid = (s + (e - s) / 2) / sector * sector;
            let mid = if mid <= s { first_cut } else { mid };
            stack.push((mid, e, false));
            stack.push((s, mid, false));
        }
        let bad = merge(bad);
        for b in &bad {
            self.stats.bad_ranges += 1;
            self.stats.unreadable_bytes = self.stats.unreadable_bytes.saturating_add(b.len);
            self.progress.report(ProgressEvent::ReadError {
                offset: b.offset,
                len: b.len,
            });
        }
        Ok(ReadOutcome { bad })
    }
}

fn sector_of(dev: &dyn BlockDevice) -> u64 {
    u64::from(dev.logical_sector_size().max(1))
}

/// Extents cut into pieces of at most `piece` bytes, each from its extent's start.
fn pieces(extents: &[ByteExtent], piece: usize) -> impl Iterator<Item = (u64, usize)> + '_ {
    extents.iter().flat_map(move |ext| {
        let end = ext.end();
        let mut at = ext.offset;
        std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let len = (end - at).min(piece as u64) as usize;
            let here = at;
            at += len as u64;
            Some((here, len))
        })
    })
}

fn merge(mut v: Vec<BadRange>) -> Vec<BadRange> {
    v.sort();
    let mut out: Vec<BadRange> = Vec::with_capacity(v.len());
    for b in v {
        match out.last_mut() {
            Some(last) if last.end() >= b.offset => {
                let end = last.end().max(b.end());
                last.len = end - last.offset;
            }
            _ => out.push(b),
        }
    }
    out
}
