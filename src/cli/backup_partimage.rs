//! `ironclone backup sda1.ext4-ptcl-img.zst REPO`: a standalone partclone or ntfsclone
//! image file as the source. It is decoded once (every checksum it carries checked)
//! into a sparse scratch file of the filesystem's size, which the ordinary backup then
//! reads like a partition: used maps from the filesystem itself, dedup, verify. The
//! image file is only read; the scratch file is removed however the backup ends.

use anyhow::Context;
use ironclone::foreign::clonezilla::{unpack, PartImageKind};
use ironclone::units::human_bytes;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// The unpacked scratch file, removed on drop.
pub struct Staged(PathBuf);

impl Staged {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Unpacks `source` into `scratch_dir` when it is a partition image file; `None` for
/// any other source.
pub fn stage(
    source: &Path,
    scratch_dir: &Path,
    quiet: bool,
    cancel: &AtomicBool,
) -> anyhow::Result<Option<Staged>> {
    let Some(kind) = unpack::standalone_kind(source) else {
        return Ok(None);
    };
    let what = match &kind {
        PartImageKind::Partclone { fs } => format!("partclone ({fs})"),
        _ => "ntfsclone".to_string(),
    };
    let out = scratch_dir.join(format!("ironclone-partimage-{}.img", std::process::id()));
    if !quiet {
        eprintln!(
            "source {} is a {what} image: checking and unpacking it into {}",
            source.display(),
            out.display()
        );
    }
    let t = std::time::Instant::now();
    let unpacked = unpack::unpack_standalone_until(source, kind, &out, cancel)
        .with_context(|| format!("unpacking the image {}", source.display()));
    let what = format!("unpacking {}", source.display());
    let done = super::cancel::before_store(unpacked, cancel, &what)?;
    let staged = Staged(out);
    if !quiet {
        eprintln!(
            "unpacked {} used of a {} filesystem in {:.1} s",
            human_bytes(done.used_bytes),
            human_bytes(done.image_bytes),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(Some(staged))
}
