//! Restore: check everything the image needs, then write, then read back.
//!
//! The check runs before the first write: every chunk must be in the index and its
//! pack record must match the index and its CRC (cheap: one read of the stored bytes,
//! no decompression), or with `deep_precheck` be decompressed and hashed too. So a
//! damaged repository is refused while the target is still untouched. While writing,
//! every chunk is decompressed and its blake3 checked again; afterwards the target is
//! read back and hashed (`verify_after`).

use super::error::{RepoError, Result};
use super::id::PackId;
use super::lock::ReadLock;
use super::manifest::{AreaManifest, ChunkRef, Manifest};
use super::manifest_stream::Spilled;
use super::pack;
use super::restore_cache::CheckedRecords;
use super::restore_chunks::AreaChunks;
use super::restore_passes::Passes;
use super::storage::{ObjectReader, Storage};
use super::Repository;
use crate::device::BlockDevice;
use crate::progress::{Progress, ProgressEvent, Scaled};
use serde::Serialize;
use std::collections::HashMap;
use std::ops::Range;
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
    /// The most chunks checked and written in one pass (restore_passes): what bounds
    /// the restore's memory for a large image.
    pub pass_chunks: usize,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            verify_after: true,
            target_is_zeroed: false,
            deep_precheck: false,
            pass_chunks: super::restore_passes::default_pass_chunks(),
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

/// An area being restored: where it goes on the target and its chunk list.
pub(super) struct Placed<'a> {
    pub a: &'a AreaManifest,
    pub t: u64,
    pub chunks: AreaChunks<'a>,
    /// The number of its first chunk among all placed areas' chunks (the index's
    /// name for it after the check, `Index::number`).
    pub first: usize,
    /// Bytes of its chunks, and of its zero chunks.
    pub bytes: u64,
    pub zero_bytes: u64,
}

impl<'a> Placed<'a> {
    /// Area `i` of `s`, placed at `t` after areas of `first` chunks: one pass over
    /// its chunk list for its sizes.
    pub fn new(s: &'a Spilled, i: usize, t: u64, first: usize) -> Result<Placed<'a>> {
        let len = s.areas.get(i).map_or(0, |r| r.len());
        Placed::part(s, i, 0..len, t, first)
    }

    /// Chunks `r` of area `i` of `s`, as `new` places the whole area.
    pub fn part(
        s: &'a Spilled,
        i: usize,
        r: Range<usize>,
        t: u64,
        first: usize,
    ) -> Result<Placed<'a>> {
        let (Some(a), Some(chunks)) = (s.head.areas.get(i), AreaChunks::part_of(s, i, r)) else {
            return Err(RepoError::Pipeline(format!("no area {i} in the manifest")));
        };
        let (bytes, zero_bytes) = chunks.bytes()?;
        Ok(Placed {
            a,
            t,
            chunks,
            first,
            bytes,
            zero_bytes,
        })
    }
}

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
    // The chunk lists stay in a scratch file (restore_chunks).
    let s = repo.load_spilled(image)?;
    let m = &s.head;
    // The placed areas, and their indexes in the manifest.
    let mut chosen = Vec::new();
    let mut placed = Vec::new();
    for (i, a) in m.areas.iter().enumerate() {
        let Some(t) = mapping(a) else { continue };
        match t.checked_add(a.len) {
            Some(end) if end <= target.size() => {}
            end => {
                return Err(RepoError::TargetTooSmall {
                    target: target.describe(),
                    area: a.name.clone(),
                    offset: t,
                    end: end.unwrap_or(u64::MAX),
                    size: target.size(),
                })
            }
        }
        let first = placed
            .last()
            .map_or(0, |p: &Placed| p.first + p.chunks.len());
        chosen.push(i);
        placed.push(Placed::new(&s, i, t, first)?);
    }
    let total: u64 = placed.iter().map(|p| p.bytes).sum();
    // The job moves: stored bytes checked, bytes written, bytes read back.
    let after = if opts.verify_after {
        total.saturating_mul(2)
    } else {
        total
    };
    let checked = Arc::new(CheckedRecords::new(CheckedRecords::budget(
        repo.store().is_local(),
    )));
    let passes = Passes::new(&s, &placed, &chosen, opts.pass_chunks)?;
    let announce = match passes.parts.len() {
        1 => Some(after),
        _ => {
            // Each pass's check is reported in its own bytes (`Scaled`).
            progress.report(ProgressEvent::JobStart {
                job: format!("restore {}", m.name),
                total_bytes: total.saturating_add(after),
            });
            None
        }
    };
    // Every pass is checked before the first write; the last one's index is kept.
    let mut held = None;
    for (n, pass) in passes.parts.iter().enumerate() {
        // The previous pass's index goes before this one's is loaded.
        drop(held.take());
        let scaled = Scaled::new(progress, passes.bytes(n, &placed));
        let shown: &dyn Progress = match announce {
            Some(_) => progress,
            None => &scaled,
        };
        match super::restore_check::precheck(repo, &s, pass, opts, announce, &checked, shown) {
            Ok(locs) => held = Some(locs),
            Err(e) => {
                if matches!(e, RepoError::RestoreRefused { .. }) {
                    progress.report(ProgressEvent::JobEnd { ok: false });
                }
                return Err(e);
            }
        }
    }
    let mut packs = Packs {
        store: repo.store_arc(),
        open: HashMap::new(),
        checked,
    };
    let mut report = RestoreReport {
        image: image.to_string(),
        areas: placed.iter().map(|p| p.a.name.clone()).collect(),
        ..Default::default()
    };
    // The last pass first: its index is held, and a remote store's records kept by
    // the check are its. Writes are positional, so the order is free.
    for (n, areas) in passes.parts.iter().enumerate().rev() {
        let locs = match held.take() {
            Some(locs) => locs,
            None => super::restore_check::locate(repo, &s, areas)?,
        };
        super::restore_write::write_areas(
            m,
            passes.placed(n, &placed),
            &locs,
            &mut packs,
            target,
            opts.target_is_zeroed,
            progress,
            &mut report,
            repo.keys(),
        )?;
    }
    target.flush()?;
    // Where the chunks are is not needed to read them back (16 bytes a chunk), nor
    // the packs and any record the check kept.
    drop(packs);
    if opts.verify_after {
        report.bytes_verified = super::restore_readback::read_back(
            m,
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
