//! Which record writes what during a restore: each area's chunks grouped by the record
//! holding them, and the spans that let one record fill a stretch of the target with
//! one write although a few of its chunks live elsewhere.
//!
//! Why spans: a first backup's frame holds the new chunks of an 8 MiB piece, and the
//! piece's duplicates (a file seen earlier, a library's copy) are chunks of older
//! frames. Written chunk by chunk, every duplicate split its frame's write in two and
//! was a 4 KiB direct write of its own: 2,175 writes where format 1 made 232, each
//! small one about half a millisecond of a writer's time (strace -T), and restores
//! 20-25% slower than format 1. A span bridges such gaps: the record's chunks are laid
//! out in target order, zero chunks between them filled with zeros and duplicates
//! copied in from the record that holds them ("fillers"), and the stretch goes out as
//! one write.
//!
//! A filler comes only from a record sent earlier in the same area: its decoder
//! publishes the bytes (`Fillers`) before the span's decoder, which took its job
//! later from the same FIFO queue, waits for them, so waiting never closes a cycle.
//! Every byte a span writes is what the image holds there, so no order between writes
//! matters: a chunk filled into a span is simply not written again by its own record.

use super::error::{RepoError, Result};
use super::id::{ChunkId, PackId};
use super::index::Index;
use super::manifest::{AreaManifest, ChunkRef, Manifest};
use super::pack::RecordInfo;
use super::restore::{bad, Placed};
use super::restore_chunks::{AreaChunks, Lookup};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Longest chunk a span copies in from another record: the duplicates that split
/// frames are small files and tails; a big one is written on its own without harm.
const FILL_MAX: u32 = 1 << 20;
/// Most bytes of fillers one area keeps in memory at once (each kept once, however
/// often it is used); past it, gaps split writes as they did before spans.
const FILL_BUDGET: u64 = 64 << 20;
/// Most chunks a gap between two of a record's chunks may hold to be bridged.
const GAP_CHUNKS: usize = 16;

/// A chunk on its way to the target: the area's chunk `ci()` (the manifest says where
/// it goes, its length and id), at `start` in its record, and whether the record writes
/// it. 8 bytes, not a copy of the chunk's reference: a plan holds one per chunk of the
/// area, millions for a 1 TB disk (docs/FORMAT.md, "Restore memory").
#[derive(Clone, Copy)]
pub(super) struct Use {
    /// The chunk's index in the area, and in the top bit whether a span (of this
    /// record or another) writes these bytes instead (areas have fewer than 2^31
    /// chunks: checked when planned).
    ci_spanned: u32,
    pub start: u32,
}

const SPANNED: u32 = 1 << 31;

impl Use {
    fn new(ci: u32, start: u32) -> Use {
        Use {
            ci_spanned: ci & !SPANNED,
            start,
        }
    }

    pub fn ci(&self) -> u32 {
        self.ci_spanned & !SPANNED
    }

    /// False when a span (of this record or another) writes these bytes.
    pub fn write(&self) -> bool {
        self.ci_spanned & SPANNED == 0
    }

    fn set_write(&mut self, write: bool) {
        self.ci_spanned = match write {
            true => self.ci(),
            false => self.ci() | SPANNED,
        };
    }
}

/// A run of zero chunks, written as one.
#[derive(Clone, Copy)]
pub(super) struct ZeroRun {
    pub at: u64,
    pub len: u32,
}

/// Where a span's bytes come from, in target order.
pub(super) enum Piece {
    Own {
        start: u32,
        len: u32,
    },
    Zero(u32),
    /// The area's chunk of index `ci`, `len` bytes, copied from the record that holds it.
    Fill {
        ci: u32,
        len: u32,
    },
}

/// A stretch of the target written from one record in one write.
pub(super) struct Span {
    pub at: u64,
    pub len: u64,
    pub pieces: Vec<Piece>,
    /// The area's chunk index of the first piece (to drop a lone piece filled elsewhere).
    first: usize,
}

/// A chunk the record's decoder publishes for other records' spans.
pub(super) struct Export {
    pub id: ChunkId,
    pub start: u32,
    pub len: u32,
    /// How many span pieces will take it.
    pub takers: u32,
}

/// One record's work in one area.
pub(super) struct RecordPlan<'a> {
    pub area: &'a AreaManifest,
    /// The area's chunk list (in the scratch file, read by position).
    pub chunks: AreaChunks<'a>,
    /// Where the area starts on the target.
    pub t: u64,
    pub pack: PackId,
    pub info: RecordInfo,
    /// Every use, each checked against its id when decoded.
    pub uses: Vec<Use>,
    /// Set when the record writes through spans (then `uses` write nothing directly).
    pub spans: Option<Vec<Span>>,
    pub exports: Vec<Export>,
}

/// An area's writes: runs of zero chunks, then records in order of first use.
pub(super) struct AreaPlan<'a> {
    pub zeros: Vec<ZeroRun>,
    pub records: Vec<RecordPlan<'a>>,
}

impl<'a> RecordPlan<'a> {
    /// The chunk a use (or a filler) names; planned from the area, so always there
    /// but for a failed read of the scratch file.
    pub fn chunk(&self, ci: u32) -> Result<ChunkRef> {
        self.chunks.get(ci as usize)
    }

    /// The chunks of its uses, read at once where they are neighbours.
    pub fn used_chunks(&self) -> Result<Lookup<'_, 'a>> {
        used_chunks(&self.chunks, &self.uses)
    }

    /// Where a chunk goes on the target (checked when planned).
    pub fn at(&self, c: &ChunkRef) -> u64 {
        self.t.saturating_add(c.offset)
    }

    /// A piece's length in bytes.
    pub fn piece_len(&self, p: &Piece) -> u32 {
        piece_len(p)
    }
}

/// Each record's number in the area's plan, by its pack and offset.
type RecordNumbers = HashMap<(PackId, u64), u32>;

/// One bit per chunk of the area.
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }
    fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
}

/// Groups area `a` (placed at target offset `t`) by record and plans its spans.
pub(super) fn plan_area<'a>(m: &Manifest, p: &Placed<'a>, locs: &Index) -> Result<AreaPlan<'a>> {
    let (a, t) = (p.a, p.t);
    let mut zeros: Vec<ZeroRun> = Vec::new();
    let mut records: Vec<RecordPlan<'a>> = Vec::new();
    let mut rec_no: RecordNumbers = HashMap::new();
    let mut counts: Vec<usize> = Vec::new();
    if p.chunks.len() >= SPANNED as usize {
        let what = format!("{} chunks in one area", p.chunks.len());
        return Err(RepoError::Pipeline(what));
    }
    for (ci, c) in p.chunks.iter().enumerate() {
        let c = &c?;
        if c.len > m.chunk_size {
            return Err(bad(m, a, c, "chunk longer than chunk size"));
        }
        let at = t
            .checked_add(c.offset)
            .ok_or_else(|| bad(m, a, c, "offset overflows the target"))?;
        if c.id.is_none() {
            // Neighbouring zero chunks go out as one write (up to the zeros buffer).
            match zeros.last_mut() {
                Some(z)
                    if z.at + u64::from(z.len) == at
                        && z.len.saturating_add(c.len) <= m.chunk_size =>
                {
                    z.len += c.len;
                }
                _ => zeros.push(ZeroRun { at, len: c.len }),
            }
            continue;
        }
        let l = locs
            .locate_number(p.first + ci)
            .ok_or_else(|| bad(m, a, c, "not in index"))?;
        if l.len != c.len {
            let what = format!("the index holds {} bytes, the image {}", l.len, c.len);
            return Err(bad(m, a, c, &what));
        }
        let r = *rec_no.entry((l.pack, l.record.offset)).or_insert_with(|| {
            records.push(RecordPlan {
                area: a,
                chunks: p.chunks.clone(),
                t,
                pack: l.pack,
                info: l.record,
                uses: Vec::new(),
                spans: None,
                exports: Vec::new(),
            });
            counts.push(0usize);
            (records.len() - 1) as u32
        });
        // Counted here, filled below at their exact size: grown by doubling, the
        // lists held up to twice their 12 bytes a chunk.
        if let Some(n) = counts.get_mut(r as usize) {
            *n += 1;
        }
    }
    for (rec, n) in records.iter_mut().zip(counts) {
        rec.uses = Vec::with_capacity(n);
    }
    // Each chunk's record and start are looked up again here rather than kept from
    // the first pass (8 bytes a chunk while planning, a quarter of a restore's peak).
    for (ci, c) in (0u32..).zip(p.chunks.iter()) {
        let c = &c?;
        if c.id.is_none() {
            continue;
        }
        let l = locs
            .locate_number(p.first + ci as usize)
            .ok_or_else(|| bad(m, a, c, "not in index"))?;
        let r = rec_no.get(&(l.pack, l.record.offset));
        if let Some(rec) = r.and_then(|&r| records.get_mut(r as usize)) {
            rec.uses.push(Use::new(ci, l.start));
        }
    }
    let mut sp = Spanner {
        chunks: &p.chunks,
        rec_no: &rec_no,
        locs,
        first: p.first,
        t,
        filled: Bits::new(p.chunks.len()),
        fills: HashMap::new(),
        budget: 0,
    };
    for (r, rec) in (0u32..).zip(records.iter_mut()) {
        rec.spans = sp.spans_of(r, &rec.uses);
    }
    let Spanner { filled, fills, .. } = sp;
    for rec in records.iter_mut() {
        // What a span fills in is not written again by the record holding it.
        for u in rec.uses.iter_mut() {
            let filled = filled.get(u.ci() as usize);
            u.set_write(rec.spans.is_none() && !filled);
        }
        if let Some(spans) = rec.spans.as_mut() {
            spans.retain(|s| s.pieces.len() > 1 || !filled.get(s.first));
        }
    }
    for (id, (r, start, len, takers)) in fills {
        if let Some(rec) = records.get_mut(r as usize) {
            rec.exports.push(Export {
                id,
                start,
                len,
                takers,
            });
        }
    }
    Ok(AreaPlan { zeros, records })
}

/// The span planner's view of one area.
struct Spanner<'c> {
    chunks: &'c AreaChunks<'c>,
    rec_no: &'c RecordNumbers,
    /// Which record holds a gap's chunk, and where it starts there.
    locs: &'c Index,
    /// The number of the area's first chunk (`Index::locate_number`).
    first: usize,
    t: u64,
    /// Chunks some span fills in from another record.
    filled: Bits,
    /// Each filler: its record, start there, length, and how many pieces take it.
    fills: HashMap<ChunkId, (u32, u32, u32, u32)>,
    budget: u64,
}

impl Spanner<'_> {
    /// Record `r`'s spans over its uses (area chunk indexes, ascending), or `None`
    /// when no gap is bridged (then direct writes do as well, without a copy).
    fn spans_of(&mut self, r: u32, uses: &[Use]) -> Option<Vec<Span>> {
        let mut spans: Vec<Span> = Vec::new();
        let mut bridged = false;
        let mut prev: Option<usize> = None;
        // A failed read of the scratch file plans no spans; the record's own writes
        // then read the chunk again, and report the failure.
        let near = used_chunks(self.chunks, uses).ok()?;
        for u in uses {
            let ci = u.ci() as usize;
            let c = near.get(ci).ok()?;
            let own = Piece::Own {
                start: u.start,
                len: c.len,
            };
            let gap = prev.and_then(|p| self.gap(r, p, ci, &near));
            match (gap, spans.last_mut()) {
                (Some(mut gap), Some(s)) => {
                    bridged |= !gap.is_empty();
                    s.len += gap.iter().map(|p| u64::from(piece_len(p))).sum::<u64>();
                    s.len += u64::from(c.len);
                    s.pieces.append(&mut gap);
                    s.pieces.push(own);
                }
                _ => spans.push(Span {
                    at: self.t.checked_add(c.offset)?,
                    len: u64::from(c.len),
                    pieces: vec![own],
                    first: ci,
                }),
            }
            prev = Some(ci);
        }
        bridged.then_some(spans)
    }

    /// The pieces that bridge chunks `p` and `ci` of record `r`, or `None` when the
    /// gap cannot be bridged: a hole in the image, a chunk of a record sent later, a
    /// big chunk, too many chunks, or fillers over budget. Commits the fillers.
    fn gap(&mut self, r: u32, p: usize, ci: usize, near: &Lookup) -> Option<Vec<Piece>> {
        if ci.checked_sub(p)? > GAP_CHUNKS + 1 {
            return None;
        }
        // The chunk before the gap, the gap's, and the chunk after it (held by `near`
        // when the record's chunks lie close together, as they mostly do).
        let before = near.get(p).ok()?;
        let after = near.get(ci).ok()?;
        let between = (p + 1..ci)
            .map(|k| near.get(k).ok())
            .collect::<Option<Vec<ChunkRef>>>()?;
        let mut end = before.offset.checked_add(before.len.into())?;
        let mut pieces = Vec::with_capacity(between.len());
        // Each filler's chunk index, record, id, start there and length.
        let mut starts: Vec<(usize, u32, ChunkId, u32, u32)> = Vec::new();
        let mut new_bytes = 0u64;
        for (k, c) in (p + 1..ci).zip(&between) {
            if c.offset != end {
                return None;
            }
            end = end.checked_add(c.len.into())?;
            let Some(id) = c.id else {
                pieces.push(Piece::Zero(c.len));
                continue;
            };
            let l = self.locs.locate_number(self.first + k)?;
            let e = *self.rec_no.get(&(l.pack, l.record.offset))?;
            if e >= r || c.len > FILL_MAX {
                return None;
            }
            if !self.fills.contains_key(&id) {
                new_bytes += u64::from(c.len);
            }
            pieces.push(Piece::Fill {
                ci: u32::try_from(k).ok()?,
                len: c.len,
            });
            starts.push((k, e, id, l.start, c.len));
        }
        if after.offset != end || self.budget + new_bytes > FILL_BUDGET {
            return None;
        }
        self.budget += new_bytes;
        for (k, e, id, start, len) in starts {
            self.fills.entry(id).or_insert((e, start, len, 0)).3 += 1;
            self.filled.set(k);
        }
        Some(pieces)
    }
}

/// The chunks a record's `uses` (ascending chunk indexes) name, from `chunks`.
fn used_chunks<'c, 'a>(chunks: &'c AreaChunks<'a>, uses: &[Use]) -> Result<Lookup<'c, 'a>> {
    let first = uses.first().map_or(0, |u| u.ci() as usize);
    let last = uses.last().map_or(0, |u| u.ci() as usize);
    chunks.lookup(first, last, uses.len())
}

fn piece_len(p: &Piece) -> u32 {
    match p {
        Piece::Own { len, .. } | Piece::Zero(len) | Piece::Fill { len, .. } => *len,
    }
}

/// Filler bytes published by one decoder for others' spans, each kept until its last
/// taker has copied it. Keyed by area as well: areas overlap in the pipeline.
#[derive(Default)]
pub(super) struct Fillers {
    map: Mutex<HashMap<FillerKey, (Vec<u8>, u32)>>,
    published: Condvar,
}

/// A filler's area (its place in the restore's list) and chunk.
type FillerKey = (usize, ChunkId);

/// How long a waiting decoder sleeps before looking at the abort flag again.
const ABORT_POLL: Duration = Duration::from_millis(50);

impl Fillers {
    pub(super) fn publish(&self, area: usize, id: ChunkId, bytes: &[u8], takers: u32) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.insert((area, id), (bytes.to_vec(), takers));
        self.published.notify_all();
    }

    /// Copies filler `id` into `out`, waiting until it is published. `Ok(false)` when
    /// the restore is aborted meanwhile (the failing job reports why).
    pub(super) fn take(
        &self,
        area: usize,
        id: ChunkId,
        out: &mut [u8],
        abort: &AtomicBool,
    ) -> Result<bool> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some((bytes, left)) = map.get_mut(&(area, id)) {
                if bytes.len() != out.len() {
                    return Err(RepoError::Pipeline(format!(
                        "filler {id} holds {} bytes, the span wants {}",
                        bytes.len(),
                        out.len()
                    )));
                }
                out.copy_from_slice(bytes);
                *left = left.saturating_sub(1);
                if *left == 0 {
                    map.remove(&(area, id));
                }
                return Ok(true);
            }
            if abort.load(Ordering::Relaxed) {
                return Ok(false);
            }
            map = self
                .published
                .wait_timeout(map, ABORT_POLL)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_use_is_eight_bytes_and_keeps_its_chunk_and_write_flag() {
        assert_eq!(std::mem::size_of::<Use>(), 8, "a plan holds one per chunk");
        for ci in [0, 1, 12345, SPANNED - 1] {
            let mut u = Use::new(ci, 77);
            assert!(u.write(), "a new use writes");
            u.set_write(false);
            assert_eq!((u.ci(), u.start, u.write()), (ci, 77, false));
            u.set_write(true);
            assert_eq!((u.ci(), u.write()), (ci, true));
        }
    }

    #[test]
    fn a_filler_serves_its_takers_then_goes() {
        let f = Fillers::default();
        let id = ChunkId::of(b"abcd");
        let abort = AtomicBool::new(false);
        f.publish(0, id, b"abcd", 2);
        for _ in 0..2 {
            let mut out = [0u8; 4];
            assert!(f.take(0, id, &mut out, &abort).unwrap());
            assert_eq!(&out, b"abcd");
        }
        assert!(
            f.map.lock().unwrap().is_empty(),
            "kept after its last taker"
        );
        // Another length than planned is an error, not a short copy.
        f.publish(1, id, b"abcd", 1);
        assert!(f.take(1, id, &mut [0u8; 3], &abort).is_err());
    }

    #[test]
    fn a_waiting_taker_wakes_on_publish_and_gives_up_on_abort() {
        let f = Fillers::default();
        let id = ChunkId::of(b"later");
        let abort = AtomicBool::new(false);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let mut out = [0u8; 5];
                f.take(3, id, &mut out, &abort).map(|ok| (ok, out))
            });
            std::thread::sleep(Duration::from_millis(20));
            f.publish(3, id, b"later", 1);
            assert_eq!(waiter.join().unwrap().unwrap(), (true, *b"later"));
        });
        let aborted = std::thread::scope(|s| {
            let waiter = s.spawn(|| f.take(4, id, &mut [0u8; 5], &abort));
            std::thread::sleep(Duration::from_millis(20));
            abort.store(true, Ordering::Relaxed);
            waiter.join().unwrap()
        });
        assert!(!aborted.unwrap(), "an aborted wait must end without bytes");
    }
}
