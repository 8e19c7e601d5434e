//! Mark objects: the first phase of prune's mark-wait-sweep (prune.rs; the protocol
//! in docs/FORMAT.md, "Concurrent writers and prune").
//!
//! Backups run beside prune without a global lock, and a running backup may already
//! have decided to reuse chunks of a pack that prune finds unused (it loaded the
//! index before its manifest existed), or may have published a pack whose index or
//! manifest is still to come. So prune never deletes a pack in the run that finds
//! it unused; it writes `prune/mark-<uuid>.json` listing such packs and the backups
//! alive at that moment, and a pack is swept only once each of those backups has
//! ended (its lock gone or stale) and the pack is still not needed. Backups read
//! the marks after writing their own lock and never reuse chunks of a marked pack
//! (they store them again), so no backup that starts later can come to need one.
//!
//! Marks are plain JSON, not sealed: they name packs and lock objects, whose names
//! any listing shows, and a forged mark can only make backups store chunks again
//! or let prune delete a pack that no image needs (the sweep checks again).

use super::error::{RepoError, Result};
use super::id::PackId;
use super::lock;
use super::Repository;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Where mark objects live.
pub(crate) const MARK_PREFIX: &str = "prune/";
/// Marks are small (a pack id is 66 bytes of JSON); bound what we read.
const MAX_MARK: u64 = 64 << 20;
const MARK_VERSION: u32 = 1;

/// One mark object's body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Mark {
    pub version: u32,
    /// When prune wrote it (the marking machine's clock; shown, not compared).
    pub created_unix: u64,
    /// Packs to delete once the writers below have ended, if still not needed.
    pub packs: Vec<PackId>,
    /// The writer locks (`locks/write-*`) alive right after the mark was first
    /// written; `None` while prune has not yet listed them (a prune killed in
    /// between: the next prune fills in the writers alive then, a superset of
    /// those still alive from that time).
    pub writers: Option<Vec<String>>,
}

/// A mark and its object's name.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub name: String,
    pub mark: Mark,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn put(repo: &Repository, name: &str, mark: &Mark) -> Result<()> {
    let body = serde_json::to_vec(mark).map_err(|e| RepoError::BadConfig {
        path: repo.loc(name),
        what: e.to_string(),
    })?;
    repo.put(name, &body)
}

fn parse(repo: &Repository, name: &str) -> std::result::Result<Mark, String> {
    let bytes = repo
        .store()
        .get(name, MAX_MARK)
        .map_err(|e| e.to_string())?;
    let m: Mark = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if m.version != MARK_VERSION {
        return Err(format!("mark version {}", m.version));
    }
    Ok(m)
}

/// Mark objects that cannot be read: (object name, why).
pub(crate) type Unreadable = Vec<(String, String)>;

/// Every mark, and the mark objects that cannot be read.
pub(crate) fn load_all(repo: &Repository) -> Result<(Vec<Pending>, Unreadable)> {
    let mut names: Vec<String> = repo
        .store()
        .list(MARK_PREFIX)
        .map_err(RepoError::io(repo.loc("prune")))?
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for name in names {
        match parse(repo, &name) {
            Ok(mark) => good.push(Pending { name, mark }),
            Err(why) => bad.push((name, why)),
        }
    }
    Ok((good, bad))
}

/// The packs a backup must not reuse chunks from. Unreadable marks are returned as
/// warnings: prune cannot sweep by a mark it cannot read either.
pub(crate) fn marked_packs(repo: &Repository) -> Result<(HashSet<PackId>, Vec<String>)> {
    let (marks, bad) = load_all(repo)?;
    let packs = marks.iter().flat_map(|p| p.mark.packs.iter().copied());
    let warnings = bad
        .into_iter()
        .map(|(n, why)| format!("{}: unreadable prune mark: {why}", repo.loc(&n).display()))
        .collect();
    Ok((packs.collect(), warnings))
}

/// Writes a new mark for `packs`: first without writers, then, once the live writers
/// are listed, with them. The order is what makes it safe: a backup writes its lock
/// before reading the marks, prune writes the mark before listing the locks, so a
/// backup either sees the mark or is in its list.
pub(crate) fn write(repo: &Repository, packs: Vec<PackId>) -> Result<Pending> {
    let name = format!("{MARK_PREFIX}mark-{}.json", uuid::Uuid::new_v4());
    let mut mark = Mark {
        version: MARK_VERSION,
        created_unix: now(),
        packs,
        writers: None,
    };
    put(repo, &name, &mark)?;
    mark.writers = Some(lock::live_writers(repo.store(), true)?);
    put(repo, &name, &mark)?;
    Ok(Pending { name, mark })
}

/// The writers of `p` still alive (empty: its packs may be swept). A mark whose
/// writers were never listed gets the writers alive now, written back.
pub(crate) fn waiting_on(repo: &Repository, p: &mut Pending) -> Result<Vec<String>> {
    let store = repo.store();
    match &p.mark.writers {
        Some(ws) => Ok(ws
            .iter()
            .filter(|w| lock::writer_alive(store, w))
            .cloned()
            .collect()),
        None => {
            let live = lock::live_writers(store, false)?;
            p.mark.writers = Some(live.clone());
            put(repo, &p.name, &p.mark)?;
            Ok(live)
        }
    }
}

/// Removes a mark object once its packs are dealt with.
pub(crate) fn remove(repo: &Repository, name: &str) -> Result<()> {
    repo.store()
        .delete(name)
        .map_err(RepoError::io(repo.loc(name)))
}
