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
//! 2. The skipped pieces get their first read, walking backwards from the far end
//!    of each damaged stretch (ddrescue's reverse pass): pass 1 resumed reading
//!    there, so the good data next to the damage is read before the reader runs
//!    into it from the other side, and failures in a row skip backwards as pass 1
//!    skipped forwards. Then the failed and still untried pieces are bisected at
//!    sector boundaries around the errors, and each lone failing sector gets a
//!    bounded number of retries. The bisection and retries run under a time
//!    budget; once spent, whatever failed or is still unread is given up.
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
    /// Size of the pieces `run` cuts extents into (`pass1` reads the caller's pieces).
    pub piece_size: usize,
    /// Upper bound of the skip after clustered errors in pass 1.
    pub max_skip: u64,
    /// Reads of a lone failing sector in pass 2 (at least 1).
    pub max_retries: u32,
    /// Total time allowed for pass-2 bisection and retries; after it, what failed
    /// and is still unread is bad.
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

/// Running totals, for the report at the end of a backup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RescueStats {
    /// `read_at` calls that failed with a media error.
    pub failed_reads: u64,
    /// Final unreadable ranges (after merging within a piece) and their bytes.
    pub bad_ranges: u64,
    pub unreadable_bytes: u64,
    /// Pieces pass 1 set aside (failed or skipped), and their bytes.
    pub deferred_pieces: u64,
    pub deferred_bytes: u64,
    /// The retry budget ran out; some bytes were given up without being retried.
    pub budget_exhausted: bool,
    /// Time spent in pass-2 reads.
    pub retry_millis: u64,
}

/// One piece handed to the sink, owned so that a pipeline can take its data away.
/// `data` is complete, with the `bad` ranges (absolute device offsets) zero-filled.
pub struct Piece {
    /// The piece's position in the order pass 1 was given the pieces.
    pub index: usize,
    pub offset: u64,
    pub data: Vec<u8>,
    pub bad: Vec<BadRange>,
}

#[derive(Debug, Error)]
pub enum RunError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("piece at byte {offset} is {len} bytes, more than the {MAX_PIECE}-byte read limit")]
    PieceTooBig { offset: u64, len: usize },
    #[error("rescued data at byte {offset} could not be handed on: {source}")]
    Sink {
        offset: u64,
        #[source]
        source: E,
    },
}

/// A piece pass 1 set aside: where it is, never its data (memory stays bounded by
/// the piece count, whatever the damage).
#[derive(Clone, Copy, Debug)]
struct Deferred {
    index: usize,
    offset: u64,
    len: usize,
    /// Skipped pieces were never tried; failed ones need no whole-piece re-read.
    failed: bool,
}

/// ddrescue's skipping: after a failed read, each further failure in a row makes the
/// reader jump over a distance that doubles, up to `max`; a good read ends the run.
struct Skipper {
    left: u64,
    next: u64,
    max: u64,
}

impl Skipper {
    fn new(max: u64) -> Self {
        Skipper {
            left: 0,
            next: 0,
            max,
        }
    }
    /// True when a piece of `len` bytes is to be jumped over, unread.
    fn jumps(&mut self, len: u64) -> bool {
        if self.left == 0 {
            return false;
        }
        self.left = self.left.saturating_sub(len);
        true
    }
    fn read_ok(&mut self) {
        self.next = 0;
    }
    fn read_failed(&mut self, len: u64) {
        self.left = self.next;
        self.next = if self.next == 0 {
            len
        } else {
            self.next.saturating_mul(2).min(self.max)
        };
    }
}

/// What pass 1 left for pass 2, in disk order.
#[derive(Debug, Default)]
pub struct SetAside {
    items: Vec<Deferred>,
}

impl SetAside {
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn bytes(&self) -> u64 {
        self.items.iter().map(|d| d.len as u64).sum()
    }
    /// `(offset, len)` of each piece set aside, in disk order.
    #[cfg(test)]
    pub(crate) fn items_for_tests(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        self.items.iter().map(|d| (d.offset, d.len))
    }
}

/// Reads through a device, surviving media errors. See the module doc for the passes.
///
/// `pass1(pieces, sink)` then `pass2(set_aside, sink)` (or `run(extents, sink)` for
/// both over extents cut at `piece_size`): good pieces reach the sink in pass 1 in
/// the order given; set-aside pieces reach it in pass 2, later and in no fixed order
/// (the reverse step delivers backwards). Every piece is delivered exactly once, identified by its index, so
/// a consumer places it by index rather than by arrival.
pub struct RescueReader<'a> {
    dev: &'a dyn BlockDevice,
    opts: RescueOptions,
    progress: &'a dyn Progress,
    stats: RescueStats,
    retry_spent: Duration,
    last_beat: Instant,
    buffers: Option<&'a (dyn Fn(usize) -> Vec<u8> + Sync)>,
}

/// How a read goes to the device: bulk reads through the page cache as usual, the
/// pass-2 bisection around errors with `read_direct_at`.
#[derive(Clone, Copy)]
enum Read {
    Cached,
    Direct,
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
            buffers: None,
        }
    }

    /// Takes piece buffers from `buffers` (a recycling pool: given a length, it returns
    /// a buffer of any length and content) instead of allocating each one. Every byte
    /// of a delivered piece is either read or zero-filled as bad, so old contents never
    /// reach the sink and the buffers need no zeroing first.
    pub fn with_buffers(mut self, buffers: &'a (dyn Fn(usize) -> Vec<u8> + Sync)) -> Self {
        self.buffers = Some(buffers);
        self
    }

    fn buffer(&self, len: usize) -> Vec<u8> {
        match self.buffers {
            Some(f) => {
                let mut b = f(len);
                b.resize(len, 0);
                b
            }
            None => vec![0u8; len],
        }
    }

    pub fn stats(&self) -> &RescueStats {
        &self.stats
    }

    pub fn options(&self) -> &RescueOptions {
        &self.opts
    }

    /// Both passes over `extents`, cut into `piece_size` pieces from each extent's
    /// start. Reports `Advance` for every delivered piece, `ReadError` for every bad
    /// range.
    pub fn run<E, F>(
        &mut self,
        extents: &[ByteExtent],
        mut sink: F,
    ) -> Result<RescueStats, RunError<E>>
    where
        E: std::error::Error + 'static,
        F: FnMut(Piece) -> Result<(), E>,
    {
        let set_aside = self.pass1(pieces(extents, self.opts.piece_size), &mut sink)?;
        self.pass2(set_aside, &mut sink)
    }

    /// Pass 1 over `(offset, len)` pieces (in disk order for the skips to make
    /// sense): one read each, no retries. Clean pieces go to the sink at once; a
    /// failing one is set aside, and failures in a row make the reader skip ahead.
    /// The iterator is consumed lazily, so a caller can stop it early (it then
    /// simply ends) or announce where the reader is.
    pub fn pass1<I, E, F>(&mut self, pieces: I, sink: &mut F) -> Result<SetAside, RunError<E>>
    where
        I: IntoIterator<Item = (u64, usize)>,
        E: std::error::Error + 'static,
        F: FnMut(Piece) -> Result<(), E>,
    {
        let mut set_aside = SetAside::default();
        let mut skip = Skipper::new(self.opts.max_skip);
        for (index, (offset, len)) in pieces.into_iter().enumerate() {
            if len > MAX_PIECE {
                return Err(RunError::PieceTooBig { offset, len });
            }
            self.dev.check_range(offset, len as u64)?;
            let mut deferred = Deferred {
                index,
                offset,
                len,
                failed: false,
            };
            if skip.jumps(len as u64) {
                set_aside.items.push(deferred);
                continue;
            }
            let mut data = self.buffer(len);
            if self.read_once(offset, &mut data, Read::Cached)? {
                skip.read_ok();
                self.deliver(index, offset, data, Vec::new(), sink)?;
            } else {
                // Errors come in clusters: failures in a row jump further ahead.
                deferred.failed = true;
                set_aside.items.push(deferred);
                skip.read_failed(len as u64);
            }
        }
        self.stats.deferred_pieces = set_aside.len() as u64;
        self.stats.deferred_bytes = set_aside.bytes();
        Ok(set_aside)
    }

    /// Pass 2: reads the skipped pieces once, backwards (see the module doc), then
    /// bisects the failed and still untried ones down to the sector with bounded
    /// retries under the time budget; what stays unread reaches the sink
    /// zero-filled with its bad ranges. Shown to the user as a phase of its own.
    pub fn pass2<E, F>(
        &mut self,
        set_aside: SetAside,
        sink: &mut F,
    ) -> Result<RescueStats, RunError<E>>
    where
        E: std::error::Error + 'static,
        F: FnMut(Piece) -> Result<(), E>,
    {
        if set_aside.is_empty() {
            return Ok(self.stats.clone());
        }
        // Short enough for the TUI's phase column (24 characters).
        let name = format!("pass 2 ({} set aside)", set_aside.len());
        self.progress.report(ProgressEvent::PhaseStart {
            name: name.clone(),
            total_bytes: set_aside.bytes(),
        });
        let items = set_aside.items;
        // Reverse step. First reads are not charged to the retry budget (they are
        // not retries); a piece pass 1 failed counts as a failure in the run, and a
        // gap between set-aside pieces (good data pass 1 read) ends the run.
        let mut left: Vec<Deferred> = Vec::with_capacity(items.len());
        let mut skip = Skipper::new(self.opts.max_skip);
        let mut below: Option<u64> = None;
        for mut d in items.into_iter().rev() {
            let end = d.offset.saturating_add(d.len as u64);
            if below != Some(end) {
                skip = Skipper::new(self.opts.max_skip);
            }
            below = Some(d.offset);
            if skip.jumps(d.len as u64) {
                left.push(d);
                continue;
            }
            if !d.failed {
                let mut data = self.buffer(d.len);
                if self.read_once(d.offset, &mut data, Read::Cached)? {
                    skip.read_ok();
                    self.deliver(d.index, d.offset, data, Vec::new(), sink)?;
                    continue;
                }
                d.failed = true;
            }
            skip.read_failed(d.len as u64);
            left.push(d);
        }
        // Bisection, in disk order: a piece still untried gets its whole read first.
        for d in left.into_iter().rev() {
            let mut data = self.buffer(d.len);
            let bad = self.recover(d.offset, &mut data, d.failed)?;
            self.deliver(d.index, d.offset, data, bad, sink)?;
        }
        self.progress.report(ProgressEvent::PhaseEnd { name });
        Ok(self.stats.clone())
    }

    fn deliver<E, F>(
        &mut self,
        index: usize,
        offset: u64,
        data: Vec<u8>,
        bad: Vec<BadRange>,
        sink: &mut F,
    ) -> Result<(), RunError<E>>
    where
        E: std::error::Error + 'static,
        F: FnMut(Piece) -> Result<(), E>,
    {
        let bytes = data.len() as u64;
        sink(Piece {
            index,
            offset,
            data,
            bad,
        })
        .map_err(|source| RunError::Sink { offset, source })?;
        self.progress.report(ProgressEvent::Advance { bytes });
        Ok(())
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

    /// One read; `Ok(false)` is a media error. Beats the heartbeat, so a slow
    /// failing disk still shows that the job lives. `Direct` bypasses the page cache
    /// (see `recover`).
    fn read_once(&mut self, offset: u64, buf: &mut [u8], how: Read) -> Result<bool, DeviceError> {
        let r = match how {
            Read::Cached => self.dev.read_at(offset, buf),
            Read::Direct => self.dev.read_direct_at(offset, buf),
        };
        if self.last_beat.elapsed() >= HEARTBEAT {
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

    /// One direct read charged to the retry budget.
    fn timed_read(&mut self, offset: u64, buf: &mut [u8]) -> Result<bool, DeviceError> {
        let t = Instant::now();
        let r = self.read_once(offset, buf, Read::Direct);
        self.retry_spent = self.retry_spent.saturating_add(t.elapsed());
        self.stats.retry_millis = u64::try_from(self.retry_spent.as_millis()).unwrap_or(u64::MAX);
        r
    }

    /// Pass 2 for one piece whose whole read failed: bisect at sector boundaries so
    /// good halves are read in one call and only failing sectors are retried one by
    /// one, all charged to the budget. These reads bypass the page cache: a cached
    /// read of one sector makes the kernel read its whole page (4 KiB), so on a real
    /// disk a bad sector would fail its good neighbours and the bisection would end
    /// at the page, losing eight times what is really unreadable.
    /// `failed`: the whole piece was read and failed; otherwise it was never tried and
    /// its whole read comes first (charged to the budget like the rest).
    fn recover(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        failed: bool,
    ) -> Result<Vec<BadRange>, DeviceError> {
        let sector = sector_of(self.dev);
        let end = offset.saturating_add(buf.len() as u64);
        let mut bad: Vec<BadRange> = Vec::new();
        let mut stack = vec![(offset, end, failed)];
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
        let bad = crate::usedmap::merged(bad);
        for b in &bad {
            self.stats.bad_ranges += 1;
            self.stats.unreadable_bytes = self.stats.unreadable_bytes.saturating_add(b.len);
            self.progress.report(ProgressEvent::ReadError {
                offset: b.offset,
                len: b.len,
            });
        }
        Ok(bad)
    }
}

fn sector_of(dev: &dyn BlockDevice) -> u64 {
    u64::from(dev.logical_sector_size().max(1))
}

/// Extents cut into pieces of at most `piece` bytes, each from its extent's start.
pub(super) fn pieces(
    extents: &[ByteExtent],
    piece: usize,
) -> impl Iterator<Item = (u64, usize)> + '_ {
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
