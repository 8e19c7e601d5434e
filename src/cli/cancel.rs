//! Ctrl-C and SIGTERM as a clean cancel for the long CLI jobs (backup, import, deploy).
//!
//! The default action of both signals ends the process where it stands: no destructor
//! runs, so a backup would leave its lock in the repository (other machines' prune
//! waits until it goes stale), its scratch files, a LUKS mapping or a qemu process it
//! opened, and on S3 a manifest upload the store keeps until its own expiry. Instead
//! the first signal sets a flag the job polls (for a backup: through
//! `device::Cancellable` on its source) and the job unwinds through its error path.
//! A second signal ends the process at once, for a job stuck where it cannot poll.

use super::progress::Renderer;
use anyhow::{bail, Context};
use ironclone::device::{BlockDevice, Cancellable};
use ironclone::repo::{self, BackupOptions, BackupPlan, Manifest, Repository};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Installs the handlers; the flag is set by the first SIGINT or SIGTERM.
pub fn on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag as it was before this signal set it.
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&cancel))
            .context("installing the signal handler")?;
        signal_hook::flag::register(sig, Arc::clone(&cancel))
            .context("installing the signal handler")?;
    }
    Ok(cancel)
}

/// `repo::backup` of `dev`, stopped at its next read of `dev` once `cancel` is set:
/// then nothing is published and the error says so. `r` is finished either way.
pub fn backup(
    repo: &Repository,
    dev: &dyn BlockDevice,
    plan: &BackupPlan,
    opts: &BackupOptions,
    r: &Renderer,
    cancel: &AtomicBool,
) -> anyhow::Result<Manifest> {
    let guarded = Cancellable { inner: dev, cancel };
    let backed_up = repo::backup(repo, &guarded, plan, opts, r);
    r.finish();
    if !cancel.load(Ordering::SeqCst) {
        return Ok(backed_up?);
    }
    match backed_up {
        Ok(m) => {
            // The signal came after the last read: the image is whole and published.
            eprintln!(
                "warning: cancel requested after the source was read; image {} is complete",
                m.name
            );
            Ok(m)
        }
        Err(_) => bail!(
            "backup cancelled (SIGINT/SIGTERM): no image {} was published; the packs it had \
             stored are removed by the next prune",
            opts.name
        ),
    }
}

/// `r` of a step before anything is stored (an import's check, a partition image's
/// unpack): once `cancel` is set its error is the cancel's, said plainly, whatever
/// read failed first.
pub fn before_store<T>(r: anyhow::Result<T>, cancel: &AtomicBool, what: &str) -> anyhow::Result<T> {
    match r {
        Err(_) if cancel.load(Ordering::SeqCst) => {
            bail!("cancelled (SIGINT/SIGTERM) while {what}: nothing was stored")
        }
        r => r,
    }
}
