//! Restoring single partition images onto existing partitions, as Clonezilla's
//! `restoreparts` does for a saveparts image (no table saved, so none is written).
//!
//! Each image is first decoded into a sparse scratch file (every checksum it carries
//! checked on the way) and fitted there to the target partition's size with the
//! filesystem's own resize tool (`resize2fs`, `ntfsresize`, `btrfs`): grown to fill a
//! larger partition, shrunk into a smaller one when the tool can (refused, naming the
//! smallest size, when it cannot). Only when every partition has been decoded and
//! fitted is the first byte written: the scratch file's data runs (its holes are free
//! blocks, as partclone's restore skips them) are copied onto the partition, then
//! read back and compared.

use super::unpack::{self, UnpackError};
use super::{PartImage, PartImageKind};
use crate::probe::FsKind;
use crate::resize::{self, ToolError};
use nix::unistd::{lseek, Whence};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Bytes copied (and compared) per read.
const COPY_CHUNK: usize = 4 << 20;

#[derive(Debug, Error)]
pub enum PartsError {
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error("partition {part}: {source}")]
    Tool {
        part: String,
        #[source]
        source: ToolError,
    },
    #[error("partition {part}: the {fs} filesystem needs at least {need} bytes, {target} holds {have}{why}; nothing was written")]
    TooSmall {
        part: String,
        fs: String,
        need: u64,
        target: PathBuf,
        have: u64,
        why: &'static str,
    },
    #[error("{part} is swap: Clonezilla saved no data for it (run mkswap on the target)")]
    Swap { part: String },
    #[error("{file}: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{target}: reading back what was written for {part} differs at byte {at}")]
    Verify {
        part: String,
        target: PathBuf,
        at: u64,
    },
}

/// How the filesystem was fitted to its target partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    Same,
    Grown,
    Shrunk,
    /// Smaller than the partition and kept so: this filesystem is not grown here.
    Kept,
}

/// One partition image decoded and fitted in its scratch file, ready to be written.
#[derive(Debug, serde::Serialize)]
pub struct Staged {
    pub part: String,
    pub filesystem: String,
    pub used_bytes: u64,
    /// The filesystem's size in the image.
    pub image_bytes: u64,
    /// Its size now (what will be written, at most the target's size).
    pub fs_bytes: u64,
    pub fit: Fit,
    #[serde(skip)]
    pub scratch: PathBuf,
}

fn io_err(file: &Path) -> impl Fn(io::Error) -> PartsError + '_ {
    move |source| PartsError::Io {
        file: file.to_path_buf(),
        source,
    }
}

/// The filesystem kind of the decoded image (its superblock, not its file name).
fn kind_of(scratch: &Path) -> Option<FsKind> {
    let dev = crate::device::open_path(scratch, crate::device::Access::ReadOnly).ok()?;
    crate::probe::probe(&dev).map(|i| i.kind)
}

/// Decodes `p` into `scratch` (a new file) and fits it to `target_bytes`.
/// On error `scratch` may be left for the caller to remove.
pub fn stage(
    p: &PartImage,
    scratch: &Path,
    target: &Path,
    target_bytes: u64,
) -> Result<Staged, PartsError> {
    if p.kind == PartImageKind::Swap {
        return Err(PartsError::Swap {
            part: p.part.clone(),
        });
    }
    let done = unpack::unpack_standalone(&p.path, p.kind.clone(), scratch)?;
    let tool = |source| PartsError::Tool {
        part: p.part.clone(),
        source,
    };
    let kind = kind_of(scratch);
    let fs_name = kind.map_or(done.filesystem.clone(), |k| k.name().to_string());
    let too_small = |need: u64, why| PartsError::TooSmall {
        part: p.part.clone(),
        fs: fs_name.clone(),
        need,
        target: target.to_path_buf(),
        have: target_bytes,
        why,
    };
    let from = done.image_bytes;
    let file = File::options()
        .write(true)
        .open(scratch)
        .map_err(io_err(scratch))?;
    let (fit, fs_bytes) = match kind {
        _ if from == target_bytes => (Fit::Same, from),
        Some(k) if from < target_bytes && resize::can_grow(k) && k != FsKind::Xfs => {
            file.set_len(target_bytes).map_err(io_err(scratch))?;
            resize::resize(k, scratch, target_bytes).map_err(tool)?;
            (Fit::Grown, target_bytes)
        }
        _ if from < target_bytes => (Fit::Kept, from),
        Some(k) if resize::can_shrink(k) => {
            let min = resize::min_size(k, scratch).map_err(tool)?.unwrap_or(from);
            if min > target_bytes {
                return Err(too_small(
                    min,
                    " (its smallest size, as its resize tool computes it)",
                ));
            }
            resize::resize(k, scratch, target_bytes).map_err(tool)?;
            file.set_len(target_bytes).map_err(io_err(scratch))?;
            (Fit::Shrunk, target_bytes)
        }
        _ => return Err(too_small(from, " (this filesystem is not shrunk here)")),
    };
    Ok(Staged {
        part: p.part.clone(),
        filesystem: fs_name,
        used_bytes: done.used_bytes,
        image_bytes: from,
        fs_bytes,
        fit,
        scratch: scratch.to_path_buf(),
    })
}

/// The data runs (offset, length) of the sparse file `f`, `len` bytes long.
fn data_runs(f: &File, file: &Path, len: u64) -> Result<Vec<(u64, u64)>, PartsError> {
    let fd = f.as_raw_fd();
    let mut runs = Vec::new();
    let mut at = 0u64;
    while at < len {
        let Ok(pos) = i64::try_from(at) else { break };
        let start = match lseek(fd, pos, Whence::SeekData) {
            Ok(s) => u64::try_from(s).unwrap_or(len),
            // ENXIO: no data after `at`.
            Err(nix::errno::Errno::ENXIO) => break,
            Err(e) => return Err(io_err(file)(io::Error::from(e))),
        };
        if start >= len {
            break;
        }
        let Ok(spos) = i64::try_from(start) else {
            break;
        };
        let end = match lseek(fd, spos, Whence::SeekHole) {
            Ok(e) => u64::try_from(e).unwrap_or(len).min(len),
            Err(e) => return Err(io_err(file)(io::Error::from(e))),
        };
        runs.push((start, end.saturating_sub(start)));
        at = end.max(start.saturating_add(1));
    }
    Ok(runs)
}

/// Copies the staged filesystem onto `target` (opened for writing), then reads it back
/// and compares; the bytes written.
pub fn write(s: &Staged, target: &File, target_path: &Path) -> Result<u64, PartsError> {
    let src = File::open(&s.scratch).map_err(io_err(&s.scratch))?;
    let runs = data_runs(&src, &s.scratch, s.fs_bytes)?;
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut back = vec![0u8; COPY_CHUNK];
    let mut written = 0u64;
    for &(start, len) in &runs {
        let mut off = 0u64;
        while off < len {
            let n = usize::try_from(len - off).map_or(COPY_CHUNK, |r| r.min(COPY_CHUNK));
            let chunk = &mut buf[..n];
            src.read_exact_at(chunk, start + off)
                .map_err(io_err(&s.scratch))?;
            target
                .write_all_at(chunk, start + off)
                .map_err(io_err(target_path))?;
            off += n as u64;
            written += n as u64;
        }
    }
    target.sync_all().map_err(io_err(target_path))?;
    for &(start, len) in &runs {
        let mut off = 0u64;
        while off < len {
            let n = usize::try_from(len - off).map_or(COPY_CHUNK, |r| r.min(COPY_CHUNK));
            src.read_exact_at(&mut buf[..n], start + off)
                .map_err(io_err(&s.scratch))?;
            target
                .read_exact_at(&mut back[..n], start + off)
                .map_err(io_err(target_path))?;
            if let Some(i) = buf[..n].iter().zip(&back[..n]).position(|(a, b)| a != b) {
                return Err(PartsError::Verify {
                    part: s.part.clone(),
                    target: target_path.to_path_buf(),
                    at: start + off + i as u64,
                });
            }
            off += n as u64;
        }
    }
    Ok(written)
}
