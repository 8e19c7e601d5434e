//! The restore's write phase as a pipeline: one thread reads stored records in image
//! order, every core decompresses and hashes, two threads write.
//!
//! The unit is a record: a frame holds several chunks, and an image may use them in
//! different places (a second machine's image uses another machine's frames, its
//! chunks in another order). Each area's chunks are grouped by the record holding
//! them, in order of first use, so every record is read and decompressed once per area
//! and each of its chunks is hashed and written where the image wants it; chunks next
//! to each other in the record and on the target go out as one write, and a stretch of
//! the target the record fills but for a few zero or duplicate chunks goes out as one
//! span (see `restore_spans`, which plans each area).
//!
//! Writes are positional, so they need not arrive in order, and nothing waits for a
//! batch to finish: reading, decoding and writing all run at once. Buffers cycle
//! through two pools (see `bufpool`), so the phase costs no allocation per record.

use super::bufpool::{self, BufPool, Pools};
use super::crypto::{chunk_id, Keys};
use super::error::{RepoError, Result};
use super::index::Index;
use super::manifest::Manifest;
use super::pack;
use super::restore::{bad, Packs, Placed, RestoreReport};
use super::restore_cache::Stored;
use super::restore_spans::{Fillers, Piece, RecordPlan, ZeroRun};
use super::zstd_ctx::ZstdError;
use crate::device::{BlockDevice, DIRECT_ALIGN};
use crate::progress::{Progress, ProgressEvent};
use crossbeam_channel::{bounded, Receiver};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Written bytes after which the disk is told to start writing them out: the disk
/// then works while chunks are decoded, not all at the end in `flush`.
const WRITEBACK_EVERY: u64 = 64 << 20;
/// Writer threads: two direct writes in flight keep a disk busy while the other
/// waits (measured: 515 MB/s for `dd oflag=direct bs=4M` here, one write at a time).
const WRITERS: usize = 2;

/// One record and its plan in one area, or a run of zero chunks.
// Jobs pass through a queue of a few entries, moved, never stored in bulk: boxing the
// large variant would only add an allocation per record.
#[allow(clippy::large_enum_variant)]
pub(super) enum Job<'a> {
    Stored(usize, RecordPlan<'a>, Stored),
    Zeros(ZeroRun),
}

/// A decoded chunk at `buf[start..start + len]`, `start` chosen so that the bytes
/// begin on a `DIRECT_ALIGN` boundary: the device can then take them without the
/// page cache (see `BlockDevice::write_bulk_at`).
struct Aligned {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(mut buf: Vec<u8>, len: usize) -> Self {
        if buf.len() < len + DIRECT_ALIGN {
            buf.resize(len + DIRECT_ALIGN, 0);
        }
        let start = buf.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
        Aligned { buf, start, len }
    }
    fn bytes(&self) -> &[u8] {
        self.buf
            .get(self.start..self.start + self.len)
            .unwrap_or(&[])
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        let end = self.start + self.len;
        self.buf.get_mut(self.start..end).unwrap_or(&mut [])
    }
}

enum Ready {
    /// A decoded record, the writes to make from it (target offset, start, len), and
    /// the image's bytes they carry (a span's zero pieces are counted by their own job).
    Bytes(Aligned, Vec<(u64, usize, usize)>, u64),
    Zeros(u64, usize),
    Skip(u64),
}

/// Writes every chunk of the placed areas onto `target`.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_areas(
    m: &Manifest,
    placed: &[Placed],
    locs: &Index,
    packs: &mut Packs,
    target: &dyn BlockDevice,
    zero_target: bool,
    progress: &dyn Progress,
    report: &mut RestoreReport,
    keys: Option<&Keys>,
) -> Result<()> {
    let workers = bufpool::workers(0);
    let pools = Pools::new(workers);
    let zeros = Aligned::new(Vec::new(), m.chunk_size as usize);
    let fillers = Fillers::default();
    let first_err: Mutex<Option<RepoError>> = Mutex::new(None);
    let abort = AtomicBool::new(false);
    let fail = |e: RepoError| {
        abort.store(true, Ordering::Relaxed);
        let mut g = first_err.lock().unwrap_or_else(|p| p.into_inner());
        g.get_or_insert(e);
    };
    let (read, written) = std::thread::scope(|s| {
        let (read_tx, read_rx) = bounded::<Job>(workers);
        let (ready_tx, ready_rx) = bounded::<Ready>(workers);
        let (pools, fail, zeros, abort, fillers) = (&pools, &fail, &zeros, &abort, &fillers);
        for _ in 0..workers {
            let rx = read_rx.clone();
            let tx = ready_tx.clone();
            s.spawn(move || {
                let mut d = match zstd::bulk::Decompressor::new() {
                    Ok(d) => d,
                    Err(e) => return fail(ZstdError::NoDecompressor(e).into()),
                };
                let shared = Shared {
                    pools,
                    fillers,
                    abort,
                    keys,
                };
                for job in rx {
                    if abort.load(Ordering::Relaxed) {
                        return;
                    }
                    let ready = match job {
                        Job::Zeros(z) if zero_target => Ready::Skip(u64::from(z.len)),
                        Job::Zeros(z) => Ready::Zeros(z.at, z.len as usize),
                        Job::Stored(area, plan, stored) => {
                            match decode(m, &mut d, &shared, area, &plan, stored) {
                                Ok(Some(r)) => r,
                                Ok(None) => return,
                                Err(e) => return fail(e),
                            }
                        }
                    };
                    if tx.send(ready).is_err() {
                        return;
                    }
                }
            });
        }
        drop(read_rx);
        drop(ready_tx);
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let rx = ready_rx.clone();
                s.spawn(move || {
                    let r = write_ready(rx, target, &pools.chunks, zeros, abort, progress);
                    r.unwrap_or_else(|e| {
                        fail(e);
                        (0, 0)
                    })
                })
            })
            .collect();
        drop(ready_rx);
        let read = super::restore_read::read_all(
            m,
            placed,
            locs,
            packs,
            &read_tx,
            &pools.stored,
            abort,
            progress,
        );
        drop(read_tx);
        let mut sums = (0u64, 0u64);
        for w in writers {
            match w.join() {
                Ok((a, b)) => sums = (sums.0 + a, sums.1 + b),
                Err(_) => fail(RepoError::Pipeline("restore writer panicked".into())),
            }
        }
        (read, sums)
    });
    // The first real error wins (a decoder's or a writer's): the reader then only saw
    // a closed queue. A reader's own error (a pack it cannot open) stops the rest.
    if let Some(e) = first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    read?;
    let (w, z) = written;
    report.bytes_written += w;
    report.zero_bytes_skipped += z;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
/// One writer: takes decoded chunks from the queue and writes them. Returns the bytes
/// written and the zero bytes skipped.
fn write_ready(
    rx: Receiver<Ready>,
    target: &dyn BlockDevice,
    pool: &BufPool,
    zeros: &Aligned,
    abort: &AtomicBool,
    progress: &dyn Progress,
) -> Result<(u64, u64)> {
    let (mut written, mut skipped, mut unkicked) = (0u64, 0u64, 0u64);
    for ready in rx {
        if abort.load(Ordering::Relaxed) {
            break;
        }
        if unkicked >= WRITEBACK_EVERY {
            target.start_writeback();
            unkicked = 0;
        }
        let len = match ready {
            Ready::Bytes(b, writes, counted) => {
                let bytes = b.bytes();
                for (at, start, len) in writes {
                    let part = bytes.get(start..start + len).unwrap_or(&[]);
                    target.write_bulk_at(at, part)?;
                    unkicked += len as u64;
                }
                pool.give(b.buf);
                written += counted;
                counted
            }
            Ready::Zeros(at, n) => {
                let z = zeros.bytes();
                target.write_bulk_at(at, z.get(..n).unwrap_or(z))?;
                written += n as u64;
                unkicked += n as u64;
                n as u64
            }
            Ready::Skip(n) => {
                skipped += n;
                n
            }
        };
        progress.report(ProgressEvent::Advance { bytes: len });
    }
    Ok((written, skipped))
}

/// What every decoder shares.
struct Shared<'p> {
    pools: &'p Pools,
    fillers: &'p Fillers,
    abort: &'p AtomicBool,
    keys: Option<&'p Keys>,
}

/// Decompresses one record, checks every chunk the area uses from it against its id,
/// publishes the chunks other records' spans fill in, and says what to write where.
/// `None` when the restore was aborted while a span waited for a filler.
fn decode(
    m: &Manifest,
    d: &mut zstd::bulk::Decompressor<'static>,
    sh: &Shared,
    area: usize,
    plan: &RecordPlan,
    stored: Stored,
) -> Result<Option<Ready>> {
    let info = &plan.info;
    let len = info.raw_len as usize;
    let mut raw = Aligned::new(sh.pools.chunks.take_dirty(len + DIRECT_ALIGN), len);
    let r = pack::decode_record_to(d, info, stored.bytes(), raw.bytes_mut(), sh.keys);
    if let Stored::Read(buf) = stored {
        sh.pools.stored.give(buf);
    }
    let a = plan.area;
    let chunks = plan.used_chunks()?;
    if let (Err(e), Some(u)) = (r, plan.uses.first()) {
        return Err(bad(m, a, &chunks.get(u.ci() as usize)?, &e.to_string()));
    }
    let mut writes: Vec<(u64, usize, usize)> = Vec::with_capacity(plan.uses.len());
    let mut counted = 0u64;
    for u in &plan.uses {
        let c = &chunks.get(u.ci() as usize)?;
        let (start, n) = (u.start as usize, c.len as usize);
        let ok = match (raw.bytes().get(start..start + n), c.id) {
            (Some(b), Some(id)) if info.is_frame() => chunk_id(sh.keys, b) == id,
            // A chunk record's hash was checked as it was decoded.
            (Some(_), Some(id)) => id == info.id,
            _ => false,
        };
        if !ok {
            let what = format!(
                "bytes {start}..{} of record {} do not match the chunk",
                start + n,
                info.id
            );
            return Err(bad(m, a, c, &what));
        }
        if !u.write() {
            continue;
        }
        counted += n as u64;
        let to = plan.at(c);
        match writes.last_mut() {
            Some((at, s, l)) if *at + *l as u64 == to && *s + *l == start => *l += n,
            _ => writes.push((to, start, n)),
        }
    }
    // Checked above: every export is one of the uses.
    for x in &plan.exports {
        let (s, n) = (x.start as usize, x.len as usize);
        if let Some(b) = raw.bytes().get(s..s + n) {
            sh.fillers.publish(area, x.id, b, x.takers);
        }
    }
    let Some(spans) = &plan.spans else {
        return Ok(Some(Ready::Bytes(raw, writes, counted)));
    };
    // Each span starts on an aligned boundary of its buffer, for direct writes.
    let round = |n: u64| n.div_ceil(DIRECT_ALIGN as u64) * DIRECT_ALIGN as u64;
    let total: u64 = spans.iter().map(|s| round(s.len)).sum();
    let total = usize::try_from(total).map_err(|_| RepoError::Pipeline("span too long".into()))?;
    let mut out = Aligned::new(sh.pools.chunks.take_dirty(total + DIRECT_ALIGN), total);
    let mut pos = 0usize;
    for s in spans {
        let mut at = pos;
        for p in &s.pieces {
            let n = plan.piece_len(p) as usize;
            let dst = out
                .bytes_mut()
                .get_mut(at..at + n)
                .ok_or_else(|| RepoError::Pipeline("span longer than planned".into()))?;
            match p {
                Piece::Own { start, .. } => {
                    let src = raw
                        .bytes()
                        .get(*start as usize..*start as usize + n)
                        .ok_or_else(|| {
                            RepoError::Pipeline("span piece outside its record".into())
                        })?;
                    dst.copy_from_slice(src);
                    counted += n as u64;
                }
                Piece::Zero(_) => dst.fill(0),
                Piece::Fill { ci, .. } => {
                    let id = plan.chunk(*ci)?.id.ok_or_else(|| {
                        RepoError::Pipeline("a span fills in a chunk it cannot name".into())
                    })?;
                    if !sh.fillers.take(area, id, dst, sh.abort)? {
                        return Ok(None);
                    }
                    counted += n as u64;
                }
            }
            at += n;
        }
        writes.push((s.at, pos, s.len as usize));
        pos += round(s.len) as usize;
    }
    sh.pools.chunks.give(raw.buf);
    Ok(Some(Ready::Bytes(out, writes, counted)))
}
