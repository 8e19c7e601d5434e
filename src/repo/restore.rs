//! Restore: check everything the image needs, then write, then read back.
//!
//! The check runs before the first write: every chunk must be in the index and its
//! pack record must match the index and its CRC (cheap: one read of the stored bytes,
//! no decompression), or with `deep_precheck` be decompressed and hashed too. So a
//! damaged repository is refused while the target is still untouched. While writing,
//! every chunk is decompressed and its blake3 checked again; afterwards the target is
//! read back and hashed (`verify_after`).

use super::crypto::{chunk_id, Keys};
use super::error::{RepoError, Result};
use super::id::PackId;
use super::lock::ReadLock;
use super::manifest::{AreaManifest, ChunkRef, Manifest};
use super::pack;
use super::restore_cache::CheckedRecords;
use super::storage::{ObjectReader, Storage};
use super::Repository;
use crate::device::BlockDevice;
use crate::progress::{Progress, ProgressEvent};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Maps an area of the image to the byte offset where it goes on the target, or
/// `None` to leave it out. Restoring "as it was" is `|a| Some(a.offset)`.
pub type AreaMapping<'a> = &'a (dyn Fn(&AreaManifest) -> Option<u64> + Sync);

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Read the target back and compare hashes (default on).
    pub verify_after: bool,
    /// The target is known to read as zeros (a fresh sparse file, a discarded SSD):
    /// zero chunks need not be written.
    pub target_is_zeroed: bool,
    /// Decompress and hash every chunk before writing, not only CRC-check it.
    pub deep_precheck: bool,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            verify_after: true,
            target_is_zeroed: false,
            deep_precheck: false,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreReport {
    pub image: String,
    pub areas: Vec<String>,
    pub bytes_written: u64,
    pub zero_bytes_skipped: u64,
    pub bytes_verified: u64,
}

/// Bytes read back per batch and hashed in parallel: 16 chunks of version 1's 8 MiB, or
/// up to 512 of version 2's small ones (a batch of 16 of those was 1 MiB a read).
const BATCH_BYTES: u64 = 128 << 20;
const BATCH_CHUNKS: usize = 512;

pub(super) struct Packs {
    store: Arc<dyn Storage>,
    open: HashMap<PackId, (PathBuf, Arc<dyn ObjectReader>)>,
    /// Records the check kept for the write phase (remote stores).
    pub(super) checked: Arc<CheckedRecords>,
}

/// Records fetched at once from a remote store during a restore (each a round trip).
const REMOTE_READ_AHEAD: usize = 8;

impl Packs {
    /// How many records the restore reads at once: one on a local disk (reads come
    /// from the page cache or a disk that prefers them in order).
    pub(super) fn read_ahead(&self) -> usize {
        match self.store.is_local() {
            true => 1,
            false => REMOTE_READ_AHEAD,
        }
    }

    pub(super) fn get(
        &mut self,
        id: &PackId,
    ) -> std::io::Result<&(PathBuf, Arc<dyn ObjectReader>)> {
        if !self.open.contains_key(id) {
            let name = pack::pack_name(id);
            let f = self.store.open(&name)?;
            self.open.insert(*id, (self.store.location(&name), f));
        }
        self.open
            .get(id)
            .ok_or_else(|| std::io::Error::other("pack vanished"))
    }
}

/// Restores image `image` onto `target`, placing each area where `mapping` says.
pub fn restore(
    repo: &Repository,
    image: &str,
    target: &dyn BlockDevice,
    mapping: AreaMapping<'_>,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let _reading = ReadLock::acquire(repo, "restore")?;
    let m = repo.load_manifest(image)?;
    // The placed areas, and their indexes in the manifest.
    let (chosen, placed): (Vec<usize>, Vec<(&AreaManifest, u64)>) = m
        .areas
        .iter()
        .enumerate()
        .filter_map(|(i, a)| mapping(a).map(|t| (i, (a, t))))
        .unzip();
    for (a, t) in &placed {
        match t.checked_add(a.len) {
            Some(end) if end <= target.size() => {}
            end => {
                return Err(RepoError::TargetTooSmall {
                    target: target.describe(),
                    area: a.name.clone(),
                    offset: *t,
                    end: end.unwrap_or(u64::MAX),
                    size: target.size(),
                })
            }
        }
    }
    let total: u64 = placed
        .iter()
        .flat_map(|(a, _)| a.chunks.iter())
        .map(|c| u64::from(c.len))
        .sum();
    // The job moves: stored bytes checked, bytes written, bytes read back.
    let after = if opts.verify_after {
        total.saturating_mul(2)
    } else {
        total
    };
    let checked = Arc::new(CheckedRecords::new(CheckedRecords::budget(
        repo.store().is_local(),
    )));
    let locs = super::restore_check::precheck(repo, &m, &chosen, opts, after, &checked, progress)?;
    let mut packs = Packs {
        store: repo.store_arc(),
        open: HashMap::new(),
        checked,
    };
    let mut report = RestoreReport {
        image: image.to_string(),
        areas: placed.iter().map(|(a, _)| a.name.clone()).collect(),
        ..Default::default()
    };
    super::restore_write::write_areas(
        &m,
        &placed,
        &locs,
        &mut packs,
        target,
        opts.target_is_zeroed,
        progress,
        &mut report,
        repo.keys(),
    )?;
    target.flush()?;
    // Where the chunks are is not needed to read them back (21 bytes a chunk), nor
    // the packs and any record the check kept.
    drop((locs, packs));
    if opts.verify_after {
        report.bytes_verified = read_back(
            &m,
            &placed,
            target,
            opts.target_is_zeroed,
            progress,
            repo.keys(),
        )?;
    }
    progress.report(ProgressEvent::JobEnd { ok: true });
    Ok(report)
}

pub(super) fn bad(m: &Manifest, a: &AreaManifest, c: &ChunkRef, what: &str) -> RepoError {
    RepoError::BadChunk {
        image: m.name.clone(),
        area: a.name.clone(),
        id: c.id.map_or_else(|| "zero".into(), |i| i.to_hex()),
        offset: c.offset,
        len: u64::from(c.len),
        what: what.to_string(),
    }
}

/// The next batch of `chunks` into `batch`: at most `BATCH_BYTES` and `BATCH_CHUNKS`
/// (at least one chunk while any is left). Copied a batch at a time: a copy of an
/// area's list was 48 bytes a chunk beside the manifest, the peak of a restore.
fn next_batch<'c>(
    chunks: &mut std::iter::Peekable<impl Iterator<Item = &'c ChunkRef>>,
    batch: &mut Vec<ChunkRef>,
) {
    batch.clear();
    let mut bytes = 0u64;
    while let Some(c) = chunks.next_if(|c| {
        batch.is_empty() || batch.len() < BATCH_CHUNKS && bytes + u64::from(c.len) <= BATCH_BYTES
    }) {
        bytes += u64::from(c.len);
        batch.push(*c);
    }
}

/// Reads every restored chunk back from the target and compares its hash. With
/// `zeros_skipped` the zero chunks were not written (the target reads as zeros), so
/// there is nothing of ours to read back: on a nearly empty 2 TB ext4 they are a
/// 1 GiB journal, and reading a sparse file's holes is not free.
fn read_back(
    m: &Manifest,
    placed: &[(&AreaManifest, u64)],
    target: &dyn BlockDevice,
    zeros_skipped: bool,
    progress: &dyn Progress,
    keys: Option<&Keys>,
) -> Result<u64> {
    let mut n = 0u64;
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    for (a, t) in placed {
        progress.report(ProgressEvent::PhaseStart {
            name: format!("verify {}", a.name),
            total_bytes: a.chunks.iter().map(|c| u64::from(c.len)).sum(),
        });
        let skipped = |c: &&ChunkRef| zeros_skipped && c.id.is_none();
        let unwritten: u64 = a
            .chunks
            .iter()
            .filter(skipped)
            .map(|c| u64::from(c.len))
            .sum();
        if unwritten > 0 {
            progress.report(ProgressEvent::Advance { bytes: unwritten });
        }
        let mut written = a.chunks.iter().filter(|c| !skipped(c)).peekable();
        let mut batch: Vec<ChunkRef> = Vec::with_capacity(BATCH_CHUNKS);
        loop {
            next_batch(&mut written, &mut batch);
            if batch.is_empty() {
                break;
            }
            // The buffers are reused from batch to batch (see `bufpool` for why).
            bufs.resize_with(batch.len(), Vec::new);
            for (c, b) in batch.iter().zip(bufs.iter_mut()) {
                b.clear();
                b.resize(c.len as usize, 0);
                target.read_at(t + c.offset, b)?;
            }
            let ok: Vec<bool> = batch
                .par_iter()
                .zip(bufs.par_iter())
                .map(|(c, b)| match c.id {
                    Some(id) => chunk_id(keys, b) == id,
                    None => b.iter().all(|&x| x == 0),
                })
                .collect();
            for (c, good) in batch.iter().zip(ok) {
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
        }
        progress.report(ProgressEvent::PhaseEnd {
            name: format!("verify {}", a.name),
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(lens: &[u32]) -> Vec<ChunkRef> {
        let mut at = 0u64;
        lens.iter()
            .map(|&len| {
                let c = ChunkRef {
                    offset: at,
                    len,
                    id: None,
                };
                at += u64::from(len);
                c
            })
            .collect()
    }

    /// Every chunk once, in order, in batches within both limits (a chunk longer than
    /// the byte limit alone in its batch).
    fn cut(all: &[ChunkRef]) -> Vec<Vec<ChunkRef>> {
        let mut it = all.iter().peekable();
        let mut batch = Vec::new();
        let mut out = Vec::new();
        loop {
            next_batch(&mut it, &mut batch);
            if batch.is_empty() {
                return out;
            }
            out.push(batch.clone());
        }
    }

    #[test]
    fn read_back_batches_cover_every_chunk_within_the_limits() {
        let small = chunks(&vec![4096; 1300]);
        let got = cut(&small);
        let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            vec![BATCH_CHUNKS, BATCH_CHUNKS, 1300 - 2 * BATCH_CHUNKS]
        );
        assert_eq!(got.concat(), small);
        let mib = 1u32 << 20;
        let big = chunks(&[100 * mib, 100 * mib, 200 * mib, 10 * mib, 10 * mib]);
        let sizes: Vec<usize> = cut(&big).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 1, 1, 2]);
        assert!(cut(&[]).is_empty());
    }
}
