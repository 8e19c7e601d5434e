//! The restore's write phase as a pipeline: one thread reads stored records in image
//! order, every core decompresses and hashes, one thread writes.
//!
//! Writes are positional, so they need not arrive in order, and nothing waits for a
//! batch to finish: reading, decoding and writing all run at once. Buffers cycle
//! through two pools (see `bufpool`), so the phase costs no allocation per chunk.

use super::bufpool::{self, BufPool, Pools};
use super::error::{RepoError, Result};
use super::id::{ChunkId, PackId};
use super::manifest::{AreaManifest, ChunkRef, Manifest};
use super::pack::{self, RecordInfo};
use super::restore::{bad, Packs, RestoreReport};
use super::zstd_ctx::ZstdError;
use crate::device::{BlockDevice, DIRECT_ALIGN};
use crate::progress::{Progress, ProgressEvent};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Written bytes after which the disk is told to start writing them out: the disk
/// then works while chunks are decoded, not all at the end in `flush`.
const WRITEBACK_EVERY: u64 = 64 << 20;
/// Writer threads: two direct writes in flight keep a disk busy while the other
/// waits (measured: 515 MB/s for `dd oflag=direct bs=4M` here, one write at a time).
const WRITERS: usize = 2;

/// A chunk on its way to the target: where it goes and what to put there.
struct Item<'a> {
    area: &'a AreaManifest,
    chunk: ChunkRef,
    at: u64,
}

enum Data {
    Stored(RecordInfo, Vec<u8>),
    Zeros,
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
    Bytes(Aligned),
    Zeros(usize),
    Skip,
}

/// Writes every chunk of the placed areas onto `target`.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_areas(
    m: &Manifest,
    placed: &[(&AreaManifest, u64)],
    locs: &HashMap<ChunkId, (PackId, RecordInfo)>,
    packs: &mut Packs,
    target: &dyn BlockDevice,
    zero_target: bool,
    progress: &dyn Progress,
    report: &mut RestoreReport,
) -> Result<()> {
    let workers = bufpool::workers(0);
    let pools = Pools::new(workers);
    let zeros = Aligned::new(Vec::new(), m.chunk_size as usize);
    let first_err: Mutex<Option<RepoError>> = Mutex::new(None);
    let abort = AtomicBool::new(false);
    let fail = |e: RepoError| {
        abort.store(true, Ordering::Relaxed);
        let mut g = first_err.lock().unwrap_or_else(|p| p.into_inner());
        g.get_or_insert(e);
    };
    let (read, written) = std::thread::scope(|s| {
        let (read_tx, read_rx) = bounded::<(Item, Data)>(workers);
        let (ready_tx, ready_rx) = bounded::<(Item, Ready)>(workers);
        let (pools, fail, zeros, abort) = (&pools, &fail, &zeros, &abort);
        for _ in 0..workers {
            let rx = read_rx.clone();
            let tx = ready_tx.clone();
            s.spawn(move || {
                let mut d = match zstd::bulk::Decompressor::new() {
                    Ok(d) => d,
                    Err(e) => return fail(ZstdError::NoDecompressor(e).into()),
                };
                for (item, data) in rx {
                    if abort.load(Ordering::Relaxed) {
                        return;
                    }
                    let ready = match data {
                        Data::Zeros if zero_target => Ready::Skip,
                        Data::Zeros => Ready::Zeros(item.chunk.len as usize),
                        Data::Stored(info, stored) => {
                            if info.raw_len != item.chunk.len {
                                let what = format!(
                                    "chunk is {} bytes, image says {}",
                                    info.raw_len, item.chunk.len
                                );
                                return fail(bad(m, item.area, &item.chunk, &what));
                            }
                            let len = info.raw_len as usize;
                            let mut raw =
                                Aligned::new(pools.chunks.take_dirty(len + DIRECT_ALIGN), len);
                            let r = pack::decode_chunk_to(&mut d, &info, &stored, raw.bytes_mut());
                            pools.stored.give(stored);
                            if let Err(e) = r {
                                return fail(bad(m, item.area, &item.chunk, &e.to_string()));
                            }
                            Ready::Bytes(raw)
                        }
                    };
                    if tx.send((item, ready)).is_err() {
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
        let read = read_all(
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
    rx: Receiver<(Item, Ready)>,
    target: &dyn BlockDevice,
    pool: &BufPool,
    zeros: &Aligned,
    abort: &AtomicBool,
    progress: &dyn Progress,
) -> Result<(u64, u64)> {
    let (mut written, mut skipped, mut unkicked) = (0u64, 0u64, 0u64);
    for (item, ready) in rx {
        if abort.load(Ordering::Relaxed) {
            break;
        }
        let len = u64::from(item.chunk.len);
        if unkicked >= WRITEBACK_EVERY {
            target.start_writeback();
            unkicked = 0;
        }
        match ready {
            Ready::Bytes(b) => {
                target.write_bulk_at(item.at, b.bytes())?;
                pool.give(b.buf);
                written += len;
                unkicked += len;
            }
            Ready::Zeros(n) => {
                let z = zeros.bytes();
                target.write_bulk_at(item.at, z.get(..n).unwrap_or(z))?;
                written += len;
                unkicked += len;
            }
            Ready::Skip => skipped += len,
        }
        progress.report(ProgressEvent::Advance { bytes: len });
    }
    Ok((written, skipped))
}

#[allow(clippy::too_many_arguments)]
fn read_all<'a>(
    m: &Manifest,
    placed: &[(&'a AreaManifest, u64)],
    locs: &HashMap<ChunkId, (PackId, RecordInfo)>,
    packs: &mut Packs,
    tx: &Sender<(Item<'a>, Data)>,
    pool: &BufPool,
    abort: &AtomicBool,
    progress: &dyn Progress,
) -> Result<()> {
    let closed = || RepoError::Pipeline("restore pipeline stopped".into());
    for &(a, t) in placed {
        let name = format!("write {}", a.name);
        progress.report(ProgressEvent::PhaseStart {
            name: name.clone(),
            total_bytes: a.chunks.iter().map(|c| u64::from(c.len)).sum(),
        });
        for c in &a.chunks {
            if abort.load(Ordering::Relaxed) {
                return Err(closed());
            }
            if c.len > m.chunk_size {
                return Err(bad(m, a, c, "chunk longer than chunk size"));
            }
            let item = Item {
                area: a,
                chunk: *c,
                at: t + c.offset,
            };
            let data = match c.id {
                None => Data::Zeros,
                Some(id) => {
                    let (pack_id, info) = locs
                        .get(&id)
                        .copied()
                        .ok_or_else(|| bad(m, a, c, "not in index"))?;
                    let (path, f) = packs
                        .get(&pack_id)
                        .map_err(|e| bad(m, a, c, &format!("cannot open pack {pack_id}: {e}")))?;
                    let mut buf = pool.take(info.stored_len as usize);
                    let max = m.chunk_size.saturating_mul(2);
                    pack::read_record_into(f, path, &info, max, &mut buf)?;
                    Data::Stored(info, buf)
                }
            };
            tx.send((item, data)).map_err(|_| closed())?;
        }
        progress.report(ProgressEvent::PhaseEnd { name });
    }
    Ok(())
}
