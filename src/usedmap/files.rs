//! Where files' data lies in a partition: runs of one file's bytes that are contiguous on
//! disk, with their position inside the file.
//!
//! The backup cuts chunks on each file's own grid (docs/FORMAT.md, "Chunking"), so the same
//! file yields the same chunks wherever it lies on disk: on another machine, after a
//! defragmenter or a resize. Used blocks outside every run (metadata, directories, journal,
//! unknown filesystems) are cut on a small grid counted from the area start instead.

use serde::{Deserialize, Serialize};

/// `len` bytes of one file at partition byte `offset`, holding the file's bytes from
/// `logical` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileRun {
    pub offset: u64,
    pub len: u64,
    pub logical: u64,
}
