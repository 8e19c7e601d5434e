//! Prune's last step on S3: abort the unfinished multipart uploads of backups that
//! no longer run. A backup killed while its manifest streams (storage/
//! remote_stream.rs) leaves one: no listing shows it, but the store keeps its parts
//! (up to the manifest's size) until it is aborted or a lifecycle rule
//! (`AbortIncompleteMultipartUpload`) expires it. SFTP needs nothing here: a killed
//! backup's temp file is under `tmp/`, which `clear_partial` empties.
//!
//! The rule: an upload of key `images/<name>.json` is aborted when no live backup's
//! writer lock names that manifest. Why that never aborts a running backup's:
//! 1. A backup writes its lock, naming its manifest (lock.rs, `writer_body`),
//!    before it reads anything, and starts the upload at its very end: the lock
//!    exists before the upload does.
//! 2. The uploads are listed completely first, the locks read after. So for each
//!    listed upload, its backup's lock existed before the listing began; if the
//!    backup is alive when its lock is read, the lock is live and names the key,
//!    and the upload is kept.
//! 3. Otherwise the backup ended (one that ends well completes its upload, which is
//!    then not listed; one that fails aborts it) or is dead by the lock protocol
//!    (stale on another host, its pid gone on this one), the judgement by which prune
//!    already sweeps its packs. Its dead lock is deleted: should it wake up, its
//!    check before the completion fails (`Lock::check_held`), and the completion of
//!    an aborted upload fails too; no image appears either way.
//! 4. A live lock naming a manifest keeps every upload of it (also an earlier killed
//!    backup's of the same name) until that backup ends. A live lock naming none (a
//!    backup of an older build) or one that cannot be read keeps them all.
//!
//! The upload's `Initiated` time is not used: it is on the store's clock, and a
//! large manifest may stream for longer than any timeout.
//!
//! A listing, size or abort that fails is a warning, not a failed prune: the
//! repository's data is the same either way, and the next prune tries again.

use super::lock;
use super::prune::PruneReport;
use super::storage::UnfinishedUpload;
use super::Repository;
use crate::progress::{Progress, ProgressEvent};
use serde::Serialize;

/// What prune did about unfinished multipart uploads (S3 only).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct UploadsReport {
    /// Uploads of backups that no longer run, aborted.
    pub aborted: usize,
    /// The bytes their parts held (`ListParts`); `None` when a size could not be read.
    pub bytes_freed: Option<u64>,
    /// Uploads kept: a running backup's, or any while a backup runs whose lock names
    /// no manifest.
    pub kept: usize,
}

fn warn(progress: &dyn Progress, rep: &mut PruneReport, message: String) {
    progress.report(ProgressEvent::Warning {
        message: message.clone(),
    });
    rep.warnings.push(message);
}

/// Aborts the unfinished uploads no running backup owns (the rule above); says in
/// `rep.uploads` what it did, and warns about what failed.
pub(super) fn abort_abandoned(repo: &Repository, progress: &dyn Progress, rep: &mut PruneReport) {
    let store = repo.store();
    let uploads = match store.unfinished_uploads() {
        Ok(None) => return,
        Ok(Some(u)) => u,
        Err(e) => {
            let w = format!(
                "{}: unfinished multipart uploads could not be listed ({e}); none aborted",
                repo.path().display()
            );
            return warn(progress, rep, w);
        }
    };
    let mut out = UploadsReport {
        bytes_freed: Some(0),
        ..Default::default()
    };
    if uploads.is_empty() {
        rep.uploads = Some(out);
        return;
    }
    // Read only now, after the listing (point 2 of the rule).
    let writing = match lock::live_writer_manifests(store) {
        Ok(w) => w,
        Err(e) => {
            let w = format!("unfinished multipart uploads kept: the locks could not be read ({e})");
            warn(progress, rep, w);
            None
        }
    };
    let owned = |u: &UnfinishedUpload| writing.as_ref().is_none_or(|w| w.contains(&u.name));
    for u in &uploads {
        if owned(u) {
            out.kept += 1;
            continue;
        }
        let size = store.upload_bytes(u);
        let at = repo.loc(&u.name);
        if let Err(e) = store.abort_upload(u) {
            let w = format!(
                "{}: the unfinished upload {} could not be aborted ({e})",
                at.display(),
                u.upload_id
            );
            warn(progress, rep, w);
            continue;
        }
        out.aborted += 1;
        out.bytes_freed = match (out.bytes_freed, size) {
            (Some(sum), Ok(b)) => sum.checked_add(b),
            (_, Err(e)) => {
                let w = format!(
                    "{}: the size of the aborted upload {} is unknown ({e})",
                    at.display(),
                    u.upload_id
                );
                warn(progress, rep, w);
                None
            }
            (None, _) => None,
        };
    }
    rep.uploads = Some(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use crate::repo::config::RepoConfig;
    use crate::repo::lock::{Job, Lock};
    use crate::repo::storage::{LocalStorage, ObjectInfo, ObjectReader, ObjectWriter, Storage};
    use std::io;
    use std::sync::{Arc, Mutex};

    /// A local store that also "has" scripted unfinished uploads (its locks are real).
    struct Scripted {
        local: LocalStorage,
        uploads: io::Result<Vec<UnfinishedUpload>>,
        size_fails: bool,
        aborted: Mutex<Vec<String>>,
    }

    fn upload(name: &str) -> UnfinishedUpload {
        UnfinishedUpload {
            name: name.into(),
            key: format!("repo/{name}"),
            upload_id: format!("id-{name}"),
            initiated: None,
        }
    }

    impl Storage for Scripted {
        fn location(&self, n: &str) -> std::path::PathBuf {
            self.local.location(n)
        }
        fn create(&self) -> io::Result<()> {
            self.local.create()
        }
        fn list(&self, p: &str) -> io::Result<Vec<(String, u64)>> {
            self.local.list(p)
        }
        fn stat(&self, n: &str) -> io::Result<Option<ObjectInfo>> {
            self.local.stat(n)
        }
        fn get(&self, n: &str, max: u64) -> io::Result<Vec<u8>> {
            self.local.get(n, max)
        }
        fn open(&self, n: &str) -> io::Result<Arc<dyn ObjectReader>> {
            self.local.open(n)
        }
        fn put(&self, n: &str, d: &[u8], m: crate::repo::storage::PutMode) -> io::Result<()> {
            self.local.put(n, d, m)
        }
        fn delete(&self, n: &str) -> io::Result<()> {
            self.local.delete(n)
        }
        fn writer(&self) -> io::Result<Box<dyn ObjectWriter>> {
            self.local.writer()
        }
        fn clear_partial(&self) -> io::Result<usize> {
            self.local.clear_partial()
        }
        fn is_local(&self) -> bool {
            true
        }
        fn unfinished_uploads(&self) -> io::Result<Option<Vec<UnfinishedUpload>>> {
            match &self.uploads {
                Ok(u) => Ok(Some(u.clone())),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            }
        }
        fn upload_bytes(&self, _: &UnfinishedUpload) -> io::Result<u64> {
            match self.size_fails {
                true => Err(io::Error::other("ListParts: HTTP 500")),
                false => Ok(5 << 20),
            }
        }
        fn abort_upload(&self, u: &UnfinishedUpload) -> io::Result<()> {
            self.aborted.lock().unwrap().push(u.name.clone());
            Ok(())
        }
    }

    /// A repository on `Scripted`; its store, to read what was aborted.
    fn repo(
        dir: &std::path::Path,
        uploads: io::Result<Vec<UnfinishedUpload>>,
        size_fails: bool,
    ) -> (Repository, Arc<Scripted>) {
        Repository::init(dir, 1 << 20, 1 << 24).unwrap();
        let store = Arc::new(Scripted {
            local: LocalStorage::new(dir.to_path_buf()),
            uploads,
            size_fails,
            aborted: Mutex::new(Vec::new()),
        });
        let config = RepoConfig::read(store.as_ref()).unwrap();
        (Repository::from_config(dir, store.clone(), config), store)
    }

    #[test]
    fn only_uploads_no_live_backup_names_are_aborted() {
        let dir = tempfile::tempdir().unwrap();
        let list = vec![upload("images/live.json"), upload("images/dead.json")];
        let (r, store) = repo(dir.path(), Ok(list), false);
        let live = Lock::backup(&r, "images/live.json").unwrap();
        let rep = crate::repo::prune(&r, &NoProgress).unwrap();
        let want = UploadsReport {
            aborted: 1,
            bytes_freed: Some(5 << 20),
            kept: 1,
        };
        assert_eq!(rep.uploads, Some(want));
        assert_eq!(*store.aborted.lock().unwrap(), ["images/dead.json"]);
        // A live backup of an older build names no manifest: nothing is aborted.
        let old = Lock::acquire(&r, Job::Backup).unwrap();
        let rep = crate::repo::prune(&r, &NoProgress).unwrap();
        assert_eq!(rep.uploads.map(|u| (u.aborted, u.kept)), Some((0, 2)));
        drop((live, old));
    }

    #[test]
    fn a_failed_listing_or_size_is_a_warning_not_a_failed_prune() {
        let dir = tempfile::tempdir().unwrap();
        let denied = io::Error::new(io::ErrorKind::PermissionDenied, "HTTP 403");
        let (r, _) = repo(dir.path(), Err(denied), false);
        let rep = crate::repo::prune(&r, &NoProgress).unwrap();
        assert_eq!(rep.uploads, None);
        assert!(
            rep.warnings.iter().any(|w| w.contains("HTTP 403")),
            "{rep:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let (r, store) = repo(dir.path(), Ok(vec![upload("images/x.json")]), true);
        let rep = crate::repo::prune(&r, &NoProgress).unwrap();
        assert_eq!(
            rep.uploads.as_ref().map(|u| (u.aborted, u.bytes_freed)),
            Some((1, None))
        );
        assert!(
            rep.warnings.iter().any(|w| w.contains("HTTP 500")),
            "{rep:?}"
        );
        assert_eq!(store.aborted.lock().unwrap().len(), 1);
    }
}
