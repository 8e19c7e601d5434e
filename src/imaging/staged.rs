//! A filesystem prepared off the target in a sparse scratch file (a shrink, a
//! re-created ESP), so that whatever can fail fails before the target's first
//! write; copied in afterwards, only its used byte ranges.

use super::plan_restore::PartTarget;
use super::ImagingError;
use crate::device::{open_path, Access, BlockDevice, Window};
use crate::progress::{Progress, ProgressEvent};
use crate::repo::{self, AreaManifest, Repository, RestoreOptions};
use crate::usedmap::ByteExtent;
use std::path::PathBuf;

/// A scratch file and the byte ranges of it to copy; removed when dropped, so an
/// error on the way leaves nothing behind.
pub(super) struct Staged {
    pub path: PathBuf,
    pub extents: Vec<ByteExtent>,
    /// The report line of a lost primary rebuilt in the scratch file.
    pub rebuilt: Option<String>,
}

impl Staged {
    /// Creates the sparse scratch file `name` of `len` bytes in `dir`.
    pub fn create(dir: &std::path::Path, name: &str, len: u64) -> Result<Staged, ImagingError> {
        std::fs::create_dir_all(dir).map_err(|source| ImagingError::Scratch {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(name);
        let scratch_err = |source| ImagingError::Scratch {
            path: path.clone(),
            source,
        };
        let f = std::fs::File::create(&path).map_err(scratch_err)?;
        let staged = Staged {
            path: path.clone(),
            extents: vec![],
            rebuilt: None,
        };
        f.set_len(len).map_err(scratch_err)?;
        Ok(staged)
    }
}

impl Staged {
    /// Restores the image's area `area` (as it was, at offset 0) into the scratch
    /// file, which is new and sparse, so its zero chunks need no writing.
    pub fn restore_area(
        &self,
        repo: &Repository,
        image: &str,
        area: &str,
        progress: &dyn Progress,
    ) -> Result<(), ImagingError> {
        let dev = open_path(&self.path, Access::ReadWrite)?;
        let mapping = move |a: &AreaManifest| (a.name == area).then_some(0);
        let opts = RestoreOptions {
            verify_after: false,
            target_is_zeroed: true,
            deep_precheck: false,
            ..Default::default()
        };
        repo::restore(repo, image, &dev, &mapping, &opts, progress)?;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A scratch directory, removed with everything in it when dropped.
pub(super) struct ScratchDir {
    pub path: PathBuf,
}

impl ScratchDir {
    pub fn create(dir: &std::path::Path, name: &str) -> Result<ScratchDir, ImagingError> {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).map_err(|source| ImagingError::Scratch {
            path: path.clone(),
            source,
        })?;
        Ok(ScratchDir { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What `copy_staged` moved: bytes written, and bytes read back from the target and
/// found equal to the scratch file's (0 without `verify`).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Copied {
    pub written: u64,
    pub verified: u64,
}

/// Copies the used ranges of `s` into partition `p` of `target`; with `verify`, reads
/// them back afterwards and compares them with the scratch file. The repository's
/// chunks were checked when the scratch file was filled, but a shrunk or re-created
/// filesystem is new bytes no chunk hash covers: only this comparison shows that the
/// target holds them (a restore that says "read back and checked" must mean all of it).
pub(super) fn copy_staged(
    s: &Staged,
    target: &dyn BlockDevice,
    p: &PartTarget,
    verify: bool,
    progress: &dyn Progress,
) -> Result<Copied, ImagingError> {
    let src = open_path(&s.path, Access::ReadOnly)?;
    let dst = Window::new(target, p.new_offset, p.new_size)?;
    let total: u64 = s.extents.iter().map(|e| e.len).sum();
    let what = match (p.recreate, p.new_size.cmp(&p.old_size)) {
        (true, _) => "re-created",
        (false, std::cmp::Ordering::Less) => "shrunk",
        _ => "staged",
    };
    let mut buf = vec![0u8; STEP];
    each_step(
        s,
        progress,
        format!("write {} ({what})", p.area),
        total,
        |off, n| {
            src.read_at(off, &mut buf[..n])?;
            dst.write_at(off, &buf[..n])?;
            Ok(())
        },
    )?;
    if !verify {
        return Ok(Copied {
            written: total,
            verified: 0,
        });
    }
    dst.flush()?;
    let mut back = vec![0u8; STEP];
    each_step(
        s,
        progress,
        format!("verify {} ({what})", p.area),
        total,
        |off, n| {
            src.read_at(off, &mut buf[..n])?;
            dst.read_direct_at(off, &mut back[..n])?;
            // device_copy's comparison: slice `!=` is musl's byte-by-byte memcmp.
            if !super::device_copy::same_bytes(&buf[..n], &back[..n]) {
                let at = buf[..n]
                    .iter()
                    .zip(&back[..n])
                    .position(|(a, b)| a != b)
                    .unwrap_or(0) as u64;
                return Err(ImagingError::StagedReadBack {
                    area: p.area.clone(),
                    what,
                    offset: off + at,
                    target_offset: p.new_offset.saturating_add(off + at),
                });
            }
            Ok(())
        },
    )?;
    Ok(Copied {
        written: total,
        verified: total,
    })
}

/// The bytes moved per read or write.
const STEP: usize = 4 << 20;

/// Calls `f(offset, len)` for each step of at most `STEP` bytes over the used ranges
/// of `s`, inside one progress phase.
fn each_step(
    s: &Staged,
    progress: &dyn Progress,
    name: String,
    total: u64,
    mut f: impl FnMut(u64, usize) -> Result<(), ImagingError>,
) -> Result<(), ImagingError> {
    progress.report(ProgressEvent::PhaseStart {
        name: name.clone(),
        total_bytes: total,
    });
    for e in &s.extents {
        let mut off = e.offset;
        let end = e.end();
        while off < end {
            let n = ((end - off) as usize).min(STEP);
            f(off, n)?;
            progress.report(ProgressEvent::Advance { bytes: n as u64 });
            off += n as u64;
        }
    }
    progress.report(ProgressEvent::PhaseEnd { name });
    Ok(())
}

#[cfg(test)]
#[path = "staged_tests.rs"]
mod tests;
