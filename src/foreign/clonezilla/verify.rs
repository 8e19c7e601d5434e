//! `ironclone verify DIR IMAGE` of a Clonezilla image folder: every checksum the folder
//! and its images carry, checked with no target (what Clonezilla's `ocs-chkimg` does).
//! The folder's checksum lists (`MD5SUMS`, `SHA1SUMS`, `B2SUMS`) are checked, and every
//! image in it (partitions, LVs, the contents of LUKS volumes) is decoded to its end
//! through the stream a restore reads (`stream::PartStream`, which checks partclone's
//! and ntfsclone's checksums as it passes them and names the file, the partition and
//! the byte offset of a mismatch). Nothing is written, not even a scratch file: a
//! restore's check (`device::ImageDevice`) also builds the disk's table file and keeps
//! decoded blocks for its copy, which a verify has no use for.

use super::assemble::{poll, AssembleError, PartDone};
use super::luks::LuksInner;
use super::partimg::PartImage;
use super::stream::{Advance, PartStream};
use super::ClonezillaImage;
use crate::progress::{Progress, ProgressEvent};
use rayon::prelude::*;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Every image of `img`: its partitions, its LVs and its LUKS volumes' contents.
fn images(img: &ClonezillaImage) -> Vec<&PartImage> {
    let lvs = img.lvm.iter().flat_map(|l| l.lvs.iter().map(|v| &v.image));
    let luks = img.luks.iter().filter_map(|v| match &v.inner {
        LuksInner::Image(p) => Some(p),
        LuksInner::Pv { .. } => None,
    });
    img.partitions.iter().chain(lvs).chain(luks).collect()
}

/// Checks `img` whole: its checksum lists and every image decoded, side by side on
/// every core (each decode is one stream). The images as they decoded, in the order of
/// [`images`]; of several damaged images the first in that order is named, and a
/// damaged image before a checksum list that disagrees.
pub fn verify(
    img: &ClonezillaImage,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Vec<PartDone>, AssembleError> {
    // Every header first (a garbage one is told before anything is decoded); their
    // used bytes are the progress's total (a dd image announces none).
    let streams = images(img)
        .into_iter()
        // No partition to fit: the image's own size is what it is.
        .map(|p| PartStream::open(p, u64::MAX).map(|s| (p, s)))
        .collect::<Result<Vec<_>, _>>()?;
    let total = streams
        .iter()
        .filter_map(|(_, s)| s.used_hint())
        .fold(0u64, u64::saturating_add);
    let phase = format!("verify {}", img.name);
    progress.report(ProgressEvent::PhaseStart {
        name: phase.clone(),
        total_bytes: total,
    });
    let (lists, done) = rayon::join(
        || img.verify_checksums(),
        || {
            streams
                .into_par_iter()
                .map(|(p, s)| decode(p, s, progress, cancel))
                .collect::<Vec<_>>()
        },
    );
    progress.report(ProgressEvent::PhaseEnd { name: phase });
    let done = done.into_iter().collect::<Result<Vec<_>, _>>()?;
    lists?;
    Ok(done)
}

/// Checks a standalone partition image file (`sda1.ext4-ptcl-img.zst`, an ntfsclone
/// image; any compression, split volumes): decoded to its end, every checksum checked.
/// `None` when `path` is no such file.
pub fn verify_file(
    path: &Path,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Option<PartDone>, AssembleError> {
    let Some(kind) = super::unpack::standalone_kind(path) else {
        return Ok(None);
    };
    // Clonezilla's name starts with the partition's (`sda1.ext4-ptcl-img.zst`).
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let part = name.split('.').next().unwrap_or_default().to_string();
    let p = PartImage {
        part,
        kind,
        path: path.to_path_buf(),
    };
    let s = PartStream::open(&p, u64::MAX)?;
    let phase = format!("verify {name}");
    progress.report(ProgressEvent::PhaseStart {
        name: phase.clone(),
        total_bytes: s.used_hint().unwrap_or(0),
    });
    let done = decode(&p, s, progress, cancel);
    progress.report(ProgressEvent::PhaseEnd { name: phase });
    done.map(Some)
}

/// Decodes `p` to its end, every checksum checked; its used bytes.
fn decode(
    p: &PartImage,
    mut s: PartStream,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<PartDone, AssembleError> {
    let mut buf = Vec::new();
    let mut used = 0u64;
    let mut advance = Advance::new(progress);
    while s.next_run(&mut buf)?.is_some() {
        poll(cancel, p)?;
        used = used.saturating_add(buf.len() as u64);
        advance.add(buf.len() as u64);
    }
    advance.finish();
    Ok(PartDone {
        part: p.part.clone(),
        filesystem: s.filesystem().to_string(),
        offset: 0,
        used_bytes: used,
        image_bytes: s.image_bytes(),
    })
}
