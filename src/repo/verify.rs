//! Repository verification: every pack record is decompressed and hashed, every index
//! entry is checked against the pack it names, every manifest's root hash is checked,
//! and every chunk reference is resolved. Damage is reported in the user's terms:
//! which image, which area (partition), which byte range of the disk it touches.
//!
//! On a large remote repository reading every pack is slow and costs egress, so
//! `DataSubset` limits the data read (restic's `--read-data-subset`): only the
//! chosen packs are read and hashed; the structure is always checked whole (every
//! manifest, every index file, every pack's existence and that it is long enough for
//! the records its index names, every chunk reference resolved).

use super::error::{RepoError, Result};
use super::id::{ChunkId, PackId};
use super::id_set::gather_ids;
use super::index::Index;
use super::lock::ReadLock;
use super::manifest_stream::Spilled;
use super::restore_chunks::{AreaChunks, SpilledIds};
use super::verify_pass::{self, Packs};
use super::Repository;
use crate::progress::{Progress, ProgressEvent, Scaled};
use serde::Serialize;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

/// Which packs `verify` reads and hashes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DataSubset {
    /// Every pack (the default).
    All,
    /// `n/m`: the packs whose id, read as a big-endian number from its first four
    /// bytes, is `n - 1` modulo `m`. Deterministic: runs 1/m .. m/m read each pack once.
    Bucket { n: u32, m: u32 },
    /// `x%`: that share of the packs (rounded up), drawn at random on each run, so
    /// repeated runs cover the repository over time.
    Percent(f64),
}

impl std::str::FromStr for DataSubset {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let x: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("{s:?}: not a percentage (e.g. 10%)"))?;
            if !(x > 0.0 && x <= 100.0) {
                return Err(format!(
                    "{s:?}: the percentage must be over 0 and at most 100"
                ));
            }
            return Ok(DataSubset::Percent(x));
        }
        let (n, m) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected n/m (e.g. 1/10) or x% (e.g. 5%)"))?;
        let num = |v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?}: {v:?} is not a whole number"))
        };
        let (n, m) = (num(n)?, num(m)?);
        if n == 0 || m == 0 || n > m {
            return Err(format!("{s:?}: n/m needs 1 <= n <= m"));
        }
        Ok(DataSubset::Bucket { n, m })
    }
}

impl DataSubset {
    /// The packs of `all` whose data this subset reads.
    fn select(&self, all: &[(PackId, String, u64)]) -> HashSet<PackId> {
        match *self {
            DataSubset::All => all.iter().map(|(p, ..)| *p).collect(),
            DataSubset::Bucket { n, m } => all
                .iter()
                .map(|(p, ..)| *p)
                .filter(|p| {
                    let b = p.0;
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) % m == n - 1
                })
                .collect(),
            DataSubset::Percent(x) => {
                // Ranked by a hash keyed with a fresh random key: a new sample each run.
                let key = *blake3::hash(uuid::Uuid::new_v4().as_bytes()).as_bytes();
                let mut ranked: Vec<([u8; 32], PackId)> = all
                    .iter()
                    .map(|(p, ..)| (*blake3::keyed_hash(&key, &p.0).as_bytes(), *p))
                    .collect();
                ranked.sort();
                let want = (all.len() as f64 * x / 100.0).ceil() as usize;
                ranked.into_iter().take(want).map(|(_, p)| p).collect()
            }
        }
    }
}

/// One damaged piece of one image.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Damage {
    pub image: String,
    /// The area (partition) name, or "(manifest)" when the manifest itself is bad.
    pub area: String,
    /// Byte range relative to the area start.
    pub area_offset: u64,
    pub len: u64,
    /// The same range as a byte offset on the source disk.
    pub disk_offset: u64,
    pub chunk: Option<ChunkId>,
    pub what: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub images: Vec<String>,
    pub packs_checked: usize,
    /// Packs whose data was not read (`DataSubset`); their structure was checked.
    pub packs_not_read: usize,
    pub chunks_checked: usize,
    pub bytes_checked: u64,
    pub damages: Vec<Damage>,
    /// Damage not tied to an image (index files, pack names, unreferenced packs).
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.damages.is_empty() && self.problems.is_empty()
    }
}

/// Every `packs/xx/<id>.pack` object, with the id its name claims and its length.
pub(crate) fn list_packs(repo: &Repository) -> Result<Vec<(PackId, String, u64)>> {
    let mut out: Vec<(PackId, String, u64)> = repo
        .store()
        .list("packs/")
        .map_err(RepoError::io(repo.loc("packs")))?
        .into_iter()
        .filter_map(|(name, len)| {
            let file = name.strip_prefix("packs/")?.split_once('/')?.1;
            let id = PackId::from_hex(file.strip_suffix(".pack")?)?;
            Some((id, name, len))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Verifies the image `name`, or the whole repository when `None`, reading every pack.
pub fn verify(
    repo: &Repository,
    name: Option<&str>,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    verify_subset(repo, name, DataSubset::All, progress)
}

/// `verify`, reading only the packs of `subset`.
pub fn verify_subset(
    repo: &Repository,
    name: Option<&str>,
    subset: DataSubset,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let passes = super::restore_passes::default_pass_chunks();
    verify_in_passes(repo, name, subset, passes, progress)
}

/// `verify_subset`, one image's chunks taken at most `pass_chunks` at a time.
pub(super) fn verify_in_passes(
    repo: &Repository,
    name: Option<&str>,
    subset: DataSubset,
    pass_chunks: usize,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let _reading = ReadLock::acquire(repo, "verify")?;
    let mut rep = VerifyReport::default();
    let names = match name {
        Some(n) => vec![n.to_string()],
        None => repo.image_names()?,
    };
    // The images whose manifests read, and the distinct chunks they need. A manifest
    // is read as a stream into a scratch file of its chunk lists (manifest_load.rs), not
    // held: its stored bytes and parsed lists were over 100 bytes a chunk, and a
    // fleet's repository holds many images of 1 TB. The last pass reads them again,
    // only when some chunk did not check out.
    let mut loaded: Vec<&String> = Vec::new();
    let mut needed: Vec<ChunkId> = Vec::new();
    // One image's chunks are named by their number in its scratch file, as a
    // restore's are (index_wanted.rs): 8 bytes a chunk where an id gathered is 32.
    // Several images share most chunks, which the gathered ids keep once.
    // Its scratch list is kept, and read again to name its damage.
    let mut one: Option<Arc<Spilled>> = None;
    for n in &names {
        rep.images.push(n.clone());
        let gathered = repo.load_spilled(n).and_then(|s| match name {
            Some(_) => Ok((s.data_bytes()?, s)),
            None => Ok((gather_ids(&s, &mut needed)?, s)),
        });
        match gathered {
            Ok((data_bytes, s)) => {
                if let Some(p) = super::summary::check(repo, &s.head, data_bytes) {
                    rep.problems.push(format!("image {n}: {p}"));
                }
                if name.is_some() {
                    one = Some(s);
                }
                loaded.push(n);
            }
            Err(e @ RepoError::NoImage { .. }) => return Err(e),
            Err(e) => rep.damages.push(Damage {
                image: n.clone(),
                area: "(manifest)".into(),
                area_offset: 0,
                len: 0,
                disk_offset: 0,
                chunk: None,
                what: e.to_string(),
            }),
        }
    }
    let all_packs = list_packs(repo)?;
    let chosen = subset.select(&all_packs);
    let mut packs = Packs::new(repo, all_packs, chosen);
    rep.packs_not_read = packs.not_read.len();
    match one {
        Some(s) => one_image(repo, &s, pass_chunks, &mut packs, &mut rep, progress)?,
        None => {
            // Only the images' chunks are kept (46 bytes each): the whole index as a
            // map was about 90 bytes for every chunk the repository holds.
            let idx = Index::load_only(repo, needed)?;
            verify_pass::index_problems(repo, &idx, &packs, &mut rep);
            let found = verify_pass::scan(repo, &idx, &mut packs, true, true, &mut rep, progress)?;
            // Every chunk sound: no image has damage, and no manifest is read again.
            let damaged = !found.all_sound(&idx, &packs);
            for n in loaded.into_iter().filter(|_| damaged) {
                let s = match repo.load_spilled(n) {
                    Ok(s) => s,
                    Err(e) => {
                        let p = format!("image {n}: its manifest could not be read again: {e}");
                        rep.problems.push(p);
                        continue;
                    }
                };
                let whole: Vec<_> = s
                    .areas
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (i, 0..r.len()))
                    .collect();
                verify_pass::name_damage(repo, &s, &whole, &idx, &packs, &found, &mut rep);
            }
        }
    }
    packs.finish(&mut rep);
    progress.report(ProgressEvent::JobEnd { ok: rep.ok() });
    Ok(rep)
}

/// The verify of one image, in passes of at most `pass_chunks` of its chunks
/// (verify_pass.rs): each pass's index refers to the image's scratch list.
fn one_image(
    repo: &Repository,
    s: &Arc<Spilled>,
    pass_chunks: usize,
    packs: &mut Packs,
    rep: &mut VerifyReport,
    progress: &dyn Progress,
) -> Result<()> {
    let lens: Vec<usize> = s.areas.iter().map(|r| r.len()).collect();
    let passes = super::restore_passes::split(&lens, pass_chunks);
    let parts: Vec<Vec<(usize, Range<usize>)>> = passes
        .iter()
        .map(|pass| pass.iter().map(|p| (p.placed, p.chunks.clone())).collect())
        .collect();
    // Several passes: the job is counted in the image's bytes, each pass's scan as
    // its share (the packs a pass reads are known only once its index is loaded).
    let shares: Vec<u64> = match parts.len() {
        1 => vec![0],
        _ => {
            let mut shares = Vec::with_capacity(parts.len());
            for pass in &parts {
                let mut bytes = 0u64;
                for (i, r) in pass {
                    if let Some(list) = AreaChunks::part_of(s, *i, r.clone()) {
                        bytes = bytes.saturating_add(list.bytes()?.0);
                    }
                }
                shares.push(bytes);
            }
            progress.report(ProgressEvent::JobStart {
                job: "verify".into(),
                total_bytes: shares.iter().sum(),
            });
            shares
        }
    };
    for (n, (pass, share)) in parts.iter().zip(shares).enumerate() {
        let (ids, idx) = SpilledIds::index(repo, s, pass)?;
        if n == 0 {
            verify_pass::index_problems(repo, &idx, packs, rep);
        }
        let scaled = Scaled::new(progress, share);
        let shown: &dyn Progress = match parts.len() {
            1 => progress,
            _ => &scaled,
        };
        let announce = parts.len() == 1;
        let found = verify_pass::scan(repo, &idx, packs, false, announce, rep, shown)?;
        // The scan confirmed what it found against ids read from the scratch file.
        ids.check()?;
        if !found.all_sound(&idx, packs) {
            verify_pass::name_damage(repo, s, pass, &idx, packs, &found, rep);
            // The damage was looked up by id, read from the scratch file too.
            ids.check()?;
        }
    }
    Ok(())
}
