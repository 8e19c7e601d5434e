//! Image summaries: `images/<name>.sum`, what `images` and the TUI's image picker show
//! of an image (name, date, source, sizes, damage) in a few hundred bytes.
//!
//! Why a second object: a manifest lists every chunk (about 41 bytes each compressed:
//! ~170 MB for 1 TB of 256 KiB chunks), and listing a repository used to read every
//! manifest whole. A repository shared by a fleet holds dozens of such images, and on
//! S3 or SFTP each is a download: the picker would fetch gigabytes to show a table.
//! Now a listing reads one small object per image.
//!
//! The backup writes the summary just before it publishes the manifest, so a listed
//! image has one. Where it has none (images from before summaries, or a crash between
//! the two writes) or it cannot be read (damaged, or sealed with another key), the
//! listing reads the manifest as it always did: the manifest stays the authority, the
//! summary names its root hash, and `verify` checks the two agree. Sealed like the
//! manifest (zstd JSON, then the AEAD) with its own AAD (`Aad::image_summary`), so a
//! summary cannot pass for another image's or for a manifest.

use super::crypto::Aad;
use super::error::{RepoError, Result};
use super::fsutil;
use super::manifest::Manifest;
use super::storage::PutMode;
use super::{ImageSummary, Repository};
use serde::{Deserialize, Serialize};

/// A summary is a few KB even with a damage report; more is not one of ours.
const MAX_SUMMARY: u64 = 16 << 20;

/// The object as stored.
#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    /// The manifest's root hash (`Manifest::root`): which manifest this summarises.
    root: String,
    summary: ImageSummary,
}

pub(crate) fn object_name(image: &str) -> String {
    format!("images/{image}.sum")
}

impl ImageSummary {
    /// The summary of `m`; `data_bytes` is what its chunks cover (`Manifest::data_bytes`,
    /// or the plan's extents while the manifest is still being written).
    pub(crate) fn of(m: &Manifest, data_bytes: u64) -> ImageSummary {
        ImageSummary {
            data_bytes,
            damage: m.damage_lines(),
            damage_reports: m
                .areas
                .iter()
                .filter(|a| !a.unreadable.is_empty())
                .map(|a| super::AreaDamage {
                    area: a.name.clone(),
                    unreadable: a.unreadable.clone(),
                    report: a.damage.clone(),
                })
                .collect(),
            plaintext_areas: m
                .areas
                .iter()
                .filter(|a| a.meta["luks"]["role"] == "plaintext")
                .map(|a| a.name.clone())
                .collect(),
            areas: m.areas.iter().map(|a| a.name.clone()).collect(),
            name: m.name.clone(),
            created_unix: m.created_unix,
            source: m.source.clone(),
            stats: m.stats.clone(),
        }
    }
}

/// Writes the summary of image `s.name`, whose manifest has root hash `root`
/// (replacing one a crashed backup of that name left).
pub(crate) fn write(repo: &Repository, s: &ImageSummary, root: &str) -> Result<()> {
    let obj = object_name(&s.name);
    let path = repo.loc(&obj);
    let stored = Stored {
        version: 1,
        root: root.to_string(),
        summary: s.clone(),
    };
    let mut body = fsutil::compress_json(&stored).map_err(RepoError::io(&path))?;
    if let Some(k) = repo.keys() {
        k.seal_vec(&Aad::image_summary(&s.name), &mut body)
            .map_err(|e| RepoError::Crypto {
                path: path.clone(),
                source: e,
            })?;
    }
    repo.store()
        .put(&obj, &body, PutMode::Replace)
        .map_err(RepoError::io(&path))
}

/// The summary of image `name` and the root hash it names; `None` when it has none
/// (an image from before summaries); an error says why the one there is unusable
/// (damaged, sealed with another key, another image's). The caller reads the manifest
/// instead either way.
pub(crate) fn read(
    repo: &Repository,
    name: &str,
) -> std::result::Result<Option<(ImageSummary, String)>, String> {
    // One request: a missing object is the store's NotFound (a stat first would be a
    // second round trip per image on S3 and SFTP).
    let bytes = match repo.store().get(&object_name(name), MAX_SUMMARY) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let bytes = match repo.keys() {
        None => bytes,
        Some(k) => k
            .open(&Aad::image_summary(name), &bytes)
            .map_err(|e| e.to_string())?,
    };
    let json = fsutil::unpack_json(bytes, MAX_SUMMARY)?;
    let s: Stored = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
    if s.version != 1 || s.summary.name != name {
        return Err(format!(
            "a version {} summary of image {}",
            s.version, s.summary.name
        ));
    }
    Ok(Some((s.summary, s.root)))
}

/// What is wrong with image `m`'s summary, if anything: unreadable, or saying other
/// than its manifest (`verify`), whose chunks cover `data_bytes` (`m` may be a
/// manifest's head, its chunk lists read apart). None for an image without one.
pub(crate) fn check(repo: &Repository, m: &Manifest, data_bytes: u64) -> Option<String> {
    let obj = repo.loc(&object_name(&m.name));
    let cure = "remove it: listings then read the manifest";
    match read(repo, &m.name) {
        Ok(None) => None,
        Ok(Some((s, root))) if root == m.root && s == ImageSummary::of(m, data_bytes) => None,
        Ok(Some(_)) => Some(format!(
            "{} does not describe the image's manifest ({cure})",
            obj.display()
        )),
        Err(why) => Some(format!("{} cannot be read: {why} ({cure})", obj.display())),
    }
}
