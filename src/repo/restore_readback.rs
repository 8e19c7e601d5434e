//! The restore's read-back: every chunk written is read again from the target and its
//! hash compared with its id.
//!
//! Why this shape: the read-back read chunk by chunk through the page cache, then
//! hashed a batch: on the bench's ext4 (1.6 GiB written) it took 3.1 s of a 4.9 s
//! restore, 2.6 s of it system time spent filling the page cache with what was just
//! written past it. Now each run of neighbouring chunks of a batch is one read past the
//! page cache (`read_direct_at`, O_DIRECT, aligned to the page so that it needs no
//! bounce buffer: what is compared is then what the device returns for those sectors,
//! as in imaging/device_copy.rs), and a thread reads the next batch while every core
//! hashes this one.

use super::crypto::{chunk_id, Keys};
use super::error::{RepoError, Result};
use super::manifest::{ChunkRef, Manifest};
use super::restore::Placed;
use crate::device::{BlockDevice, DIRECT_ALIGN};
use crate::progress::{Progress, ProgressEvent};
use crossbeam_channel::bounded;
use rayon::prelude::*;

/// Bytes read back per batch and hashed in parallel (two batches' buffers are held: one
/// read, one hashed): 4 chunks of version 1's 8 MiB, or up to 512 of version 2's small
/// ones.
const BATCH_BYTES: u64 = 32 << 20;
const BATCH_CHUNKS: usize = 512;

/// What the reader hands over: the start of an area's read-back (its number in the
/// placed areas), or a batch read.
enum Back {
    Area(usize),
    Batch(Result<Batch>),
}

/// One batch read back: its chunks, where each starts in `buf`, and its area.
struct Batch {
    area: usize,
    chunks: Vec<ChunkRef>,
    at: Vec<usize>,
    buf: Vec<u8>,
}

/// The next batch of `chunks` into `batch`: at most `BATCH_BYTES` and `BATCH_CHUNKS`
/// (at least one chunk while any is left), read from the chunk list a batch at a time.
fn next_batch(
    chunks: &mut std::iter::Peekable<impl Iterator<Item = Result<ChunkRef>>>,
    batch: &mut Vec<ChunkRef>,
) -> Result<()> {
    batch.clear();
    let mut bytes = 0u64;
    while let Some(c) = chunks.next_if(|c| match c {
        Ok(c) => {
            batch.is_empty()
                || batch.len() < BATCH_CHUNKS && bytes + u64::from(c.len) <= BATCH_BYTES
        }
        Err(_) => true,
    }) {
        let c = c?;
        bytes += u64::from(c.len);
        batch.push(c);
    }
    Ok(())
}

/// Reads `chunks` (of an area placed at `t`) from `target` into `buf`, each run of
/// neighbours with one page-aligned read; returns where each chunk starts in `buf`.
fn read_batch(
    target: &dyn BlockDevice,
    t: u64,
    chunks: &[ChunkRef],
    buf: &mut Vec<u8>,
) -> Result<Vec<usize>> {
    let align = DIRECT_ALIGN as u64;
    let mut at = Vec::with_capacity(chunks.len());
    // The runs: (aligned start on the target, aligned end, first chunk, chunks).
    let mut runs: Vec<(u64, u64, usize, usize)> = Vec::new();
    let mut need = DIRECT_ALIGN;
    for (i, c) in chunks.iter().enumerate() {
        let start = t.checked_add(c.offset).ok_or(RepoError::Pipeline(
            "a chunk's place overflows the target".into(),
        ))?;
        let end = start + u64::from(c.len);
        match runs.last_mut() {
            Some(r) if start <= r.1 && start >= r.0 => {
                r.1 = r.1.max(end.div_ceil(align) * align);
                r.3 += 1;
            }
            _ => runs.push((start / align * align, end.div_ceil(align) * align, i, 1)),
        }
    }
    for r in &runs {
        need += (r.1 - r.0) as usize;
    }
    buf.clear();
    buf.resize(need, 0);
    let mut pos = buf.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
    for &(lo, hi, first, n) in &runs {
        // The last page may lie past the target's end (a size not a page multiple):
        // read up to the end; `read_direct_at` takes any length.
        let hi_in = hi.min(target.size()).max(lo);
        let len = (hi_in - lo) as usize;
        let dst = buf
            .get_mut(pos..pos + len)
            .ok_or(RepoError::Pipeline("read-back buffer too small".into()))?;
        target.read_direct_at(lo, dst)?;
        for c in chunks.iter().skip(first).take(n) {
            at.push(pos + (t + c.offset - lo) as usize);
        }
        pos += (hi - lo) as usize;
    }
    Ok(at)
}

/// Reads every restored chunk back from the target and compares its hash. With
/// `zeros_skipped` the zero chunks were not written (the target reads as zeros), so
/// there is nothing of ours to read back: on a nearly empty 2 TB ext4 they are a
/// 1 GiB journal, and reading a sparse file's holes is not free.
pub(super) fn read_back(
    m: &Manifest,
    placed: &[Placed],
    target: &dyn BlockDevice,
    zeros_skipped: bool,
    progress: &dyn Progress,
    keys: Option<&Keys>,
) -> Result<u64> {
    let skipped = |c: &Result<ChunkRef>| zeros_skipped && c.as_ref().is_ok_and(|c| c.id.is_none());
    // Two batches' buffers cycle between the reader and the hashing.
    let (full_tx, full_rx) = bounded::<Back>(1);
    let (free_tx, free_rx) = bounded::<Vec<u8>>(2);
    for _ in 0..2 {
        let _ = free_tx.send(Vec::new());
    }
    std::thread::scope(|s| -> Result<u64> {
        s.spawn(move || {
            for (area, p) in placed.iter().enumerate() {
                if full_tx.send(Back::Area(area)).is_err() {
                    return;
                }
                let mut written = p.chunks.iter().filter(|c| !skipped(c)).peekable();
                loop {
                    let mut chunks = Vec::new();
                    if let Err(e) = next_batch(&mut written, &mut chunks) {
                        let _ = full_tx.send(Back::Batch(Err(e)));
                        return;
                    }
                    if chunks.is_empty() {
                        break;
                    }
                    let Ok(mut buf) = free_rx.recv() else {
                        return;
                    };
                    let read = read_batch(target, p.t, &chunks, &mut buf).map(|at| Batch {
                        area,
                        chunks,
                        at,
                        buf,
                    });
                    let failed = read.is_err();
                    if full_tx.send(Back::Batch(read)).is_err() || failed {
                        return;
                    }
                }
            }
        });
        // Owns the channels' other ends: they close when it returns (an error too), so
        // the reader never waits on them for ever.
        hash_batches(m, placed, full_rx, free_tx, zeros_skipped, progress, keys)
    })
}

/// Hashes each batch the reader hands over on every core and compares; reports each
/// area's phase. The bytes read back and found right.
fn hash_batches(
    m: &Manifest,
    placed: &[Placed],
    full: crossbeam_channel::Receiver<Back>,
    free: crossbeam_channel::Sender<Vec<u8>>,
    zeros_skipped: bool,
    progress: &dyn Progress,
    keys: Option<&Keys>,
) -> Result<u64> {
    let mut n = 0u64;
    let phase = |p: &Placed| format!("verify {}", p.a.name);
    let mut open: Option<&Placed> = None;
    for back in full {
        let b = match back {
            Back::Area(i) => {
                if let Some(prev) = open.take() {
                    progress.report(ProgressEvent::PhaseEnd { name: phase(prev) });
                }
                if let Some(p) = placed.get(i) {
                    start_area(p, zeros_skipped, progress);
                    open = Some(p);
                }
                continue;
            }
            Back::Batch(b) => b?,
        };
        let Some(&Placed { a, t, .. }) = placed.get(b.area) else {
            continue;
        };
        let ok: Vec<bool> = b
            .chunks
            .par_iter()
            .zip(b.at.par_iter())
            .map(|(c, &at)| {
                let bytes = b.buf.get(at..at + c.len as usize).unwrap_or(&[]);
                bytes.len() == c.len as usize
                    && match c.id {
                        Some(id) => chunk_id(keys, bytes) == id,
                        None => bytes.iter().all(|&x| x == 0),
                    }
            })
            .collect();
        for (c, good) in b.chunks.iter().zip(ok) {
            if !good {
                return Err(RepoError::ReadBackMismatch {
                    image: m.name.clone(),
                    area: a.name.clone(),
                    target_offset: t + c.offset,
                    len: u64::from(c.len),
                });
            }
            n += u64::from(c.len);
            progress.report(ProgressEvent::Advance {
                bytes: u64::from(c.len),
            });
        }
        let _ = free.send(b.buf);
    }
    if let Some(a) = open {
        progress.report(ProgressEvent::PhaseEnd { name: phase(a) });
    }
    Ok(n)
}

/// An area's verify phase begins: the bytes of chunks not written (zeros on a zeroed
/// target) count as done at once.
fn start_area(p: &Placed, zeros_skipped: bool, progress: &dyn Progress) {
    progress.report(ProgressEvent::PhaseStart {
        name: format!("verify {}", p.a.name),
        total_bytes: p.bytes,
    });
    let unwritten = match zeros_skipped {
        true => p.zero_bytes,
        false => 0,
    };
    if unwritten > 0 {
        progress.report(ProgressEvent::Advance { bytes: unwritten });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    fn chunks(spans: &[(u64, u32)]) -> Vec<ChunkRef> {
        spans
            .iter()
            .map(|&(offset, len)| ChunkRef {
                offset,
                len,
                id: None,
            })
            .collect()
    }

    /// Every chunk once, in order, in batches within both limits (a chunk longer than
    /// the byte limit alone in its batch).
    fn cut(all: &[ChunkRef]) -> Vec<Vec<ChunkRef>> {
        let mut it = all.iter().map(|c| Ok(*c)).peekable();
        let mut batch = Vec::new();
        let mut out = Vec::new();
        loop {
            next_batch(&mut it, &mut batch).unwrap();
            if batch.is_empty() {
                return out;
            }
            out.push(batch.clone());
        }
    }

    #[test]
    fn batches_cover_every_chunk_within_the_limits() {
        let small: Vec<ChunkRef> =
            chunks(&(0..1300u64).map(|i| (i * 4096, 4096)).collect::<Vec<_>>());
        let got = cut(&small);
        let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            vec![BATCH_CHUNKS, BATCH_CHUNKS, 1300 - 2 * BATCH_CHUNKS]
        );
        assert_eq!(got.concat(), small);
        let mib = 1u32 << 20;
        let big = chunks(&[
            (0, 20 * mib),
            (0, 20 * mib),
            (0, 100 * mib),
            (0, mib),
            (0, mib),
        ]);
        let sizes: Vec<usize> = cut(&big).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 1, 1, 2]);
        assert!(cut(&[]).is_empty());
    }

    #[test]
    fn a_batch_is_read_in_aligned_runs_and_each_chunk_found() {
        // Unaligned starts and lengths, neighbours, a gap, a chunk in the last partial
        // page of the device, an area placed at an unaligned offset.
        let size = 1 << 20;
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let dev = MemDevice::from_vec(data.clone(), 512);
        let t = 1000u64;
        let list = chunks(&[
            (0, 3000),
            (3000, 5000),
            (8000, 100),
            (70_000, 4096),
            (74_096, 1),
            ((size as u64) - t - 10, 10),
        ]);
        let mut buf = Vec::new();
        let at = read_batch(&dev, t, &list, &mut buf).unwrap();
        assert_eq!(at.len(), list.len());
        for (c, &p) in list.iter().zip(&at) {
            let want = &data[(t + c.offset) as usize..(t + c.offset) as usize + c.len as usize];
            assert_eq!(&buf[p..p + c.len as usize], want, "chunk at {}", c.offset);
            assert_eq!(
                (buf.as_ptr() as usize + p - (t + c.offset) as usize % DIRECT_ALIGN) % DIRECT_ALIGN,
                0,
                "the run holding the chunk at {} is read into a page-aligned place",
                c.offset
            );
        }
    }

    #[test]
    fn every_written_chunk_is_checked_and_a_changed_byte_named() {
        use crate::progress::NoProgress;
        use crate::repo::id::ChunkId;
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 253) as u8).collect();
        // Chunks of uneven lengths over the first 200 000 bytes, one of them zero (not
        // written on a zeroed target), placed at 4096 on the device.
        let mut list = Vec::new();
        let mut off = 0u64;
        for (i, len) in [5000u32, 70_000, 1, 4095, 60_904, 60_000]
            .into_iter()
            .enumerate()
        {
            let bytes = &data[off as usize..(off + u64::from(len)) as usize];
            let id = (i != 3).then(|| ChunkId::of(bytes));
            list.push(ChunkRef {
                offset: off,
                len,
                id,
            });
            off += u64::from(len);
        }
        let whole = Manifest::of_areas(1 << 20, vec![("p1", list)]);
        let dir = tempfile::tempdir().unwrap();
        let s = crate::repo::manifest_stream::Spilled::from_manifest(&whole, dir.path()).unwrap();
        let m = &s.head;
        let placed = [Placed::new(&s, 0, 4096, 0).unwrap()];
        let mut disk = vec![0u8; 4096];
        disk.extend_from_slice(&data[..off as usize]);
        disk.resize(disk.len() + 5000, 0);
        let good = MemDevice::from_vec(disk.clone(), 512);
        let n = read_back(m, &placed, &good, true, &NoProgress, None).unwrap();
        assert_eq!(n, off - 4095, "every written chunk read back");
        for at in [4096 + 5000 + 69_999, 4096 + off as usize - 1] {
            let mut bad = disk.clone();
            bad[at] ^= 1;
            let e = read_back(
                m,
                &placed,
                &MemDevice::from_vec(bad, 512),
                true,
                &NoProgress,
                None,
            )
            .expect_err("a changed byte must fail the read-back");
            let RepoError::ReadBackMismatch { target_offset, .. } = e else {
                panic!("{e}");
            };
            let c = whole.areas[0]
                .chunks
                .iter()
                .find(|c| 4096 + c.offset + u64::from(c.len) > at as u64)
                .unwrap();
            assert_eq!(target_offset, 4096 + c.offset, "byte {at}");
        }
    }
}
