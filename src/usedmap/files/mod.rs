//! Where files' data lies in a partition: runs of one file's bytes that are contiguous on
//! disk, with their position inside the file.
//!
//! The backup cuts chunks on each file's own grid (docs/FORMAT.md, "Chunking"), so the same
//! file yields the same chunks wherever it lies on disk: on another machine, after a
//! defragmenter or a resize. Used blocks outside every run (metadata, directories, journal,
//! unknown filesystems) are cut on a small grid counted from the area start instead.
//!
//! Runs only steer deduplication, never what is copied, so listing them never fails a
//! backup: a damaged inode or MFT record is skipped and counted, a walk that cannot start
//! gives no runs and a warning, and the list is capped.

mod normalize;

use crate::device::BlockDevice;
use crate::probe::FsKind;
use crate::usedmap::UsedMap;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// `len` bytes of one file at partition byte `offset`, holding the file's bytes from
/// `logical` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileRun {
    pub offset: u64,
    pub len: u64,
    pub logical: u64,
}

impl FileRun {
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// The runs of every regular file of a filesystem, and what could not be walked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileRuns {
    /// Sorted by offset, non-overlapping, inside the used map's extents; pieces of one
    /// file that are contiguous both on disk and in the file are one run.
    pub runs: Vec<FileRun>,
    pub warnings: Vec<String>,
}

/// At 32 bytes a run while collected, 8 M runs are 256 MiB: enough for tens of millions
/// of files on a sane filesystem, and a bound on a garbage one.
pub const MAX_RUNS: usize = 8 << 20;

/// Why a filesystem's files could not be walked at all.
#[derive(Debug, Error)]
enum WalkError {
    #[error(transparent)]
    Ext(#[from] crate::rescue::owners::OwnerError),
    #[error(transparent)]
    Ntfs(#[from] crate::usedmap::NtfsError),
}

/// Lists the data runs of every regular file of the `kind` filesystem on `dev`, clipped
/// to `map`'s extents. Never fails (see the module documentation); filesystems without a
/// walker, and raw maps, have no runs.
pub fn file_runs(dev: &dyn BlockDevice, kind: FsKind, map: &UsedMap) -> FileRuns {
    if map.raw {
        return FileRuns::default();
    }
    let mut sink = Collector::new(MAX_RUNS);
    let walked: Result<Vec<String>, WalkError> = match kind {
        k if k.is_ext() => super::ext::files::walk(dev, &mut sink).map_err(WalkError::from),
        FsKind::Ntfs => super::ntfs::files::walk(dev, &mut sink).map_err(WalkError::from),
        _ => return FileRuns::default(),
    };
    match walked {
        Ok(warnings) => sink.finish(&map.extents, warnings),
        Err(e) => FileRuns {
            runs: Vec::new(),
            warnings: vec![format!(
                "files' runs not listed ({e}); every byte is backed up all the same, \
                 deduplicated on the partition's grid"
            )],
        },
    }
}

/// What the walkers hand their findings to: bounded, counting what it drops.
pub(crate) struct Collector {
    /// (file id, run): the id keeps two files' runs from being merged.
    runs: Vec<(u64, FileRun)>,
    cap: usize,
    dropped: u64,
    skipped: u64,
    first_skip: Option<String>,
}

impl Collector {
    pub(crate) fn new(cap: usize) -> Self {
        Collector {
            runs: Vec::new(),
            cap,
            dropped: 0,
            skipped: 0,
            first_skip: None,
        }
    }

    /// Adds `len` bytes of file `file` at partition byte `offset`, file byte `logical`.
    pub(crate) fn push(&mut self, file: u64, offset: u64, len: u64, logical: u64) {
        if len == 0 {
            return;
        }
        if offset.checked_add(len).is_none() || logical.checked_add(len).is_none() {
            self.skip(format!("file {file}: a run at byte {offset} overflows"));
            return;
        }
        if self.runs.len() >= self.cap {
            self.dropped += 1;
            return;
        }
        self.runs.push((
            file,
            FileRun {
                offset,
                len,
                logical,
            },
        ));
    }

    /// Counts a file (or one of its streams) that could not be followed.
    pub(crate) fn skip(&mut self, why: String) {
        self.skipped += 1;
        self.first_skip.get_or_insert(why);
    }

    fn finish(self, used: &[crate::usedmap::ByteExtent], mut warnings: Vec<String>) -> FileRuns {
        if self.skipped > 0 {
            warnings.push(format!(
                "files' runs: {} not followed (damaged block maps or records), the first: {}",
                crate::units::count(self.skipped, "file", "files"),
                self.first_skip.unwrap_or_default()
            ));
        }
        if self.dropped > 0 {
            warnings.push(format!(
                "files' runs: more than {} runs; {} more are not listed",
                self.cap, self.dropped
            ));
        }
        FileRuns {
            runs: normalize::normalize(self.runs, used),
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usedmap::ByteExtent;

    #[test]
    fn the_cap_and_skipped_files_are_said_not_silent() {
        let mut sink = Collector::new(2);
        for i in 0..5 {
            sink.push(i, i * 4096, 4096, 0);
        }
        sink.skip("inode 12: bad extent header magic".into());
        // An overflowing run is skipped, not wrapped.
        sink.push(9, u64::MAX - 10, 4096, 0);
        let out = sink.finish(
            &[ByteExtent {
                offset: 0,
                len: 1 << 20,
            }],
            Vec::new(),
        );
        assert_eq!(out.runs.len(), 2);
        assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
        assert!(
            out.warnings[0].contains("2 files not followed"),
            "{:?}",
            out.warnings
        );
        assert!(out.warnings[0].contains("inode 12"), "{:?}", out.warnings);
        assert!(out.warnings[1].contains("3 more"), "{:?}", out.warnings);
    }
}
