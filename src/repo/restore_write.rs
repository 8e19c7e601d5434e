//! The restore's write phase as a pipeline: one thread reads stored records in image
//! order, every core decompresses and hashes, one thread writes.
//!
//! Writes are positional, so they need not arrive in order, and nothing waits for a
//! batch to finish: reading, decoding and writing all run at once. Buffers cycle
//! through a pool (see `bufpool`), so the phase costs no allocation per chunk.

use super::bufpool::BufPool;
use super::error::{RepoError, Result};
use super::id::{ChunkId, PackId};
use super::manifest::{AreaManifest, ChunkRef, Manifest};
use super::pack::{self, RecordInfo};
use super::restore::{bad, Packs, RestoreReport};
use crate::device::BlockDevice;
use crate::progress::{Progress, ProgressEvent};
use crossbeam_channel::{bounded, Sender};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

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

enum Ready {
    Bytes(Vec<u8>),
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
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = BufPool::new(6 * workers + 4);
    let zeros = vec![0u8; m.chunk_size as usize];
    let first_err: Mutex<Option<RepoError>> = Mutex::new(None);
    let abort = AtomicBool::new(false);
    let fail = |e: RepoError| {
        abort.store(true, Ordering::Relaxed);
        let mut g = first_err.lock().unwrap_or_else(|p| p.into_inner());
        g.get_or_insert(e);
    };
    let (read, written) = std::thread::scope(|s| {
        let (read_tx, read_rx) = bounded::<(Item, Data)>(2 * workers);
        let (ready_tx, ready_rx) = bounded::<(Item, Ready)>(2 * workers);
        let (pool, fail, zeros, abort) = (&pool, &fail, &zeros, &abort);
        for _ in 0..workers {
            let rx = read_rx.clone();
            let tx = ready_tx.clone();
            s.spawn(move || {
                let mut d = match zstd::bulk::Decompressor::new() {
                    Ok(d) => d,
                    Err(e) => return fail(RepoError::Compression(e.to_string())),
                };
                for (item, data) in rx {
                    if abort.load(Ordering::Relaxed) {
                        return;
                    }
                    let ready = match data {
                        Data::Zeros if zero_target => Ready::Skip,
                        Data::Zeros => Ready::Zeros(item.chunk.len as usize),
                        Data::Stored(info, stored) => {
                            let mut raw = pool.take(info.raw_len as usize);
                            let r = pack::decode_chunk_into(&mut d, &info, &stored, &mut raw);
                            pool.give(stored);
                            match r {
                                Err(e) => return fail(bad(m, item.area, &item.chunk, &e)),
                                Ok(()) if raw.len() != item.chunk.len as usize => {
                                    let what = format!(
                                        "chunk is {} bytes, image says {}",
                                        raw.len(),
                                        item.chunk.len
                                    );
                                    return fail(bad(m, item.area, &item.chunk, &what));
                                }
                                Ok(()) => Ready::Bytes(raw),
                            }
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
        let writer = s.spawn(move || -> Result<(u64, u64)> {
            let (mut written, mut skipped) = (0u64, 0u64);
            for (item, ready) in ready_rx {
                let len = u64::from(item.chunk.len);
                match ready {
                    Ready::Bytes(b) => {
                        target.write_at(item.at, &b)?;
                        pool.give(b);
                        written += len;
                    }
                    Ready::Zeros(n) => {
                        target.write_at(item.at, zeros.get(..n).unwrap_or(zeros))?;
                        written += len;
                    }
                    Ready::Skip => skipped += len,
                }
                progress.report(ProgressEvent::Advance { bytes: len });
            }
            Ok((written, skipped))
        });
        let read = read_all(m, placed, locs, packs, &read_tx, pool, abort, progress);
        drop(read_tx);
        let w = writer
            .join()
            .unwrap_or_else(|_| Err(RepoError::Pipeline("restore writer panicked".into())));
        (read, w)
    });
    // The first real error wins: a worker's, then the writer's; the reader then only
    // saw a closed queue. A reader's own error (a pack it cannot open) stops the rest.
    if let Some(e) = first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let (w, z) = written?;
    read?;
    report.bytes_written += w;
    report.zero_bytes_skipped += z;
    Ok(())
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
