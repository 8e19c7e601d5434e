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
