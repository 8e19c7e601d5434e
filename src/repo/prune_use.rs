//! What prune needs of each index file, read once and in parallel: whether any of its
//! pack's records is still used, and the stored bytes of those that are.
//!
//! Prune used to read every index file twice: all of them first (in parallel) only to
//! refuse a repository with an unreadable one before sweeping anything, then one at a
//! time again to decide each pack's fate. On a remote store each read is a round trip,
//! so the second, sequential pass was most of a prune's time on S3 or SFTP. Now the
//! first pass keeps this small summary per file (a few dozen bytes, where the entries
//! were 35 bytes a chunk), and only the mostly unused packs, whose live records are
//! copied, have their index file read again.

use super::error::Result;
use super::id_set::UsedIds;
use super::index;
use super::Repository;
use std::collections::HashMap;

/// One pack's use, from its index file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct PackUse {
    /// Records at least one of whose chunks an image uses.
    pub live_records: usize,
    /// Their stored bytes, headers included.
    pub live_bytes: u64,
}

/// Every index file's `PackUse` by its object name, given the chunks in use. The
/// first file that cannot be read or parsed, in name order, is the error: prune
/// refuses before it deletes anything.
pub(super) fn pack_uses(repo: &Repository, used: &UsedIds) -> Result<HashMap<String, PackUse>> {
    use rayon::prelude::*;
    let names = index::file_names(repo)?;
    let mut out = HashMap::with_capacity(names.len());
    for batch in names.chunks(index::LOAD_BATCH) {
        let got: Vec<Result<PackUse>> = batch
            .par_iter()
            .map(|n| Ok(of_entries(&index::read(repo, n)?.entries, used)))
            .collect();
        for (name, u) in batch.iter().zip(got) {
            out.insert(name.clone(), u?);
        }
    }
    Ok(out)
}

/// The use of a pack whose index lists `entries`.
pub(super) fn of_entries(entries: &[super::pack::Entry], used: &UsedIds) -> PackUse {
    let mut u = PackUse::default();
    for e in entries.iter().filter(|e| super::prune::is_live(e, used)) {
        u.live_records += 1;
        u.live_bytes += super::prune::stored_bytes(e);
    }
    u
}
