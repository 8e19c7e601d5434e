//! An ESP's file tree, read through `browse` (the image's FAT), so that it can be
//! counted against a new FAT32, written out to a host directory for mcopy, and
//! compared with what the new FAT32 holds afterwards.

use crate::browse::{Browse, BrowseError, Kind};
use crate::progress::{Progress, ProgressEvent};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TreeError {
    #[error(transparent)]
    Browse(#[from] BrowseError),
    #[error("{path}: {source}")]
    Host {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One directory or file, by absolute '/'-separated path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    pub path: String,
    pub dir: bool,
    pub size: u64,
    pub mtime_unix: Option<i64>,
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// Every directory and file under the root, parents before their children, sorted
/// by path within a directory. Anything else (FAT has nothing else) is skipped.
pub fn walk(fs: &mut dyn Browse) -> Result<Vec<TreeEntry>, BrowseError> {
    let mut out = Vec::new();
    let mut stack = vec!["/".to_string()];
    while let Some(dir) = stack.pop() {
        let mut subdirs = Vec::new();
        for e in fs.list(&dir)? {
            let path = join(&dir, &e.name);
            let is_dir = e.kind == Kind::Dir;
            if !is_dir && e.kind != Kind::File {
                continue;
            }
            if is_dir {
                subdirs.push(path.clone());
            }
            out.push(TreeEntry {
                path,
                dir: is_dir,
                size: e.size,
                mtime_unix: e.mtime_unix,
            });
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(out)
}

fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((p, _)) => p,
    }
}

/// Directory entries one name takes at most: a long-name entry per 13 UTF-16 units,
/// then the short entry (mtools writes no long name for a name that fits 8.3).
fn entries_for(name: &str) -> u64 {
    (name.encode_utf16().count() as u64).div_ceil(13) + 1
}

/// Clusters of `cluster` bytes the tree needs in a new FAT32, whose root already
/// has its first cluster: each file's bytes and each directory's entries (with `.`
/// and `..` outside the root) rounded up, a directory at least one cluster.
pub fn clusters_needed(tree: &[TreeEntry], cluster: u64) -> u64 {
    let cluster = cluster.max(1);
    let mut dir_entries: std::collections::BTreeMap<&str, u64> =
        std::collections::BTreeMap::from([("/", 0)]);
    let mut clusters = 0u64;
    for e in tree {
        let name = e.path.rsplit('/').next().unwrap_or_default();
        *dir_entries.entry(parent(&e.path)).or_insert(2) += entries_for(name);
        if e.dir {
            dir_entries.entry(e.path.as_str()).or_insert(2);
        } else {
            clusters = clusters.saturating_add(e.size.div_ceil(cluster));
        }
    }
    for (dir, n) in dir_entries {
        let c = n.saturating_mul(32).div_ceil(cluster).max(1);
        clusters = clusters.saturating_add(if dir == "/" { c - 1 } else { c });
    }
    clusters
}

/// Writes the tree out under `to` (which must exist), files with their FAT
/// modification time (taken as UTC, as `browse` shows it). Returns the bytes copied.
pub fn extract(
    fs: &mut dyn Browse,
    tree: &[TreeEntry],
    to: &Path,
    progress: &dyn Progress,
) -> Result<u64, TreeError> {
    let mut bytes = 0u64;
    for e in tree {
        let host = to.join(e.path.trim_start_matches('/'));
        let err = |source| TreeError::Host {
            path: host.clone(),
            source,
        };
        if e.dir {
            std::fs::create_dir(&host).map_err(err)?;
            continue;
        }
        let mut f = std::fs::File::create(&host).map_err(err)?;
        let n = fs.copy_to(&e.path, &mut f)?;
        if let Some(t) = e.mtime_unix.and_then(|t| u64::try_from(t).ok()) {
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
            f.set_modified(when).map_err(err)?;
        }
        progress.report(ProgressEvent::Advance { bytes: n });
        bytes = bytes.saturating_add(n);
    }
    Ok(bytes)
}

/// The first difference between what was to be copied and what the new FAT holds
/// (paths compared without case, as FAT does; sizes and kinds exactly).
pub fn first_difference(want: &[TreeEntry], got: &[TreeEntry]) -> Option<String> {
    let key = |e: &TreeEntry| (e.path.to_lowercase(), e.dir, if e.dir { 0 } else { e.size });
    let mut a: Vec<_> = want.iter().map(key).collect();
    let mut b: Vec<_> = got.iter().map(key).collect();
    a.sort();
    b.sort();
    if let Some(x) = a.iter().find(|x| !b.contains(x)) {
        return Some(format!("{} ({} bytes) did not arrive", x.0, x.2));
    }
    b.iter()
        .find(|x| !a.contains(x))
        .map(|x| format!("{} appeared, which the image does not have", x.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(path: &str, dir: bool, size: u64) -> TreeEntry {
        TreeEntry {
            path: path.into(),
            dir,
            size,
            mtime_unix: None,
        }
    }

    #[test]
    fn clusters_for_files_and_directories() {
        let tree = vec![
            e("/EFI", true, 0),
            e("/EFI/debian", true, 0),
            e("/EFI/debian/grubx64.efi", false, 9000),
            e("/EFI/debian/x", false, 0),
            e("/startup.nsh", false, 1),
        ];
        // Files: 3 + 0 + 1 clusters; directories: EFI and debian one each, the
        // root's entries fit the cluster it already has.
        assert_eq!(clusters_needed(&tree, 4096), 6);
        // 200 names in one directory: 2 + 200 x 2 entries of 32 bytes = 4 clusters.
        let mut many = vec![e("/d", true, 0)];
        many.extend((0..200).map(|i| e(&format!("/d/f{i}"), false, 0)));
        assert_eq!(clusters_needed(&many, 4096), 4);
        assert_eq!(entries_for("BOOTX64.EFI"), 2);
        assert_eq!(entries_for("12345678901234"), 3);
    }

    #[test]
    fn differences_are_named() {
        let a = vec![e("/EFI", true, 0), e("/EFI/a.efi", false, 5)];
        assert_eq!(first_difference(&a, &a), None);
        let b = vec![e("/efi", true, 0), e("/EFI/A.EFI", false, 5)];
        assert_eq!(first_difference(&a, &b), None);
        let c = vec![e("/EFI", true, 0), e("/EFI/a.efi", false, 4)];
        assert!(first_difference(&a, &c)
            .unwrap()
            .contains("/efi/a.efi (5 bytes)"));
    }
}
