//! The seam between the TUI and the rest of ironclone. The screens call only this trait,
//! so they are tested against `demo::FakeServices` and the binary plugs in the real disk
//! discovery, repository and restore code without the TUI changing.

use super::model::{
    BackupRequest, CloneRequest, DiskView, ImageView, JobReport, PlanView, RepoCandidate,
    RepoTarget, RestoreOptions, RestoreRequest, ScheduleRequest, VerifyRequest,
};
use crate::progress::Progress;
use crossbeam_channel::{bounded, Receiver};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

thread_local! {
    /// Set on job threads: the TUI's panic hook leaves the terminal alone for them,
    /// because the job's panic is caught and shown on the done screen instead.
    pub static IN_JOB: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

pub use super::error::ServiceError;

/// What the picker asks of a repository once it is open, gathered in one go: on a
/// network location each answer is a request to the server, so for those it is
/// gathered on the opening thread, not the screen's (a slow or failing server must not
/// freeze it).
#[derive(Debug)]
pub struct RepoFacts {
    /// Encrypted and not unlocked in this session (`Services::repo_locked`).
    pub locked: bool,
    /// No repository there yet (`Services::repo_is_new`).
    pub new: bool,
    /// Its images (`Services::list_images`); not asked of a locked repository.
    pub images: Option<Result<Vec<ImageView>, ServiceError>>,
}

/// How a job ended: its report, or what failed and where, typed so the result screen
/// still knows a media error from a refused request.
pub type JobOutcome = Result<JobReport, ServiceError>;

/// A job running in the background. Progress goes through the `Progress` given to
/// `start_*`; the outcome arrives once on `done`.
pub struct JobHandle {
    /// Set to ask the job to stop. A job that stops leaves no half image behind.
    pub cancel: Arc<AtomicBool>,
    pub done: Receiver<JobOutcome>,
}

impl JobHandle {
    /// Runs `work` on its own thread; `work` should poll the flag it is given.
    pub fn spawn<F>(work: F) -> JobHandle
    where
        F: FnOnce(&AtomicBool) -> JobOutcome + Send + 'static,
    {
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, done) = bounded(1);
        let flag = Arc::clone(&cancel);
        std::thread::spawn(move || {
            IN_JOB.with(|j| j.set(true));
            // A bug in a job must end the job with an error screen, not leave the TUI
            // waiting forever for an outcome that never comes.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&flag)))
                .unwrap_or_else(|payload| {
                    let what = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown".into());
                    Err(ServiceError::Internal(what))
                });
            // The receiver may be gone when the TUI quit; nothing to tell then.
            let _ = tx.send(outcome);
        });
        JobHandle { cancel, done }
    }

    /// A job that failed before it started (bad request, refused target).
    pub fn failed(error: impl Into<ServiceError>) -> JobHandle {
        let (tx, done) = bounded(1);
        let _ = tx.send(Err(error.into()));
        JobHandle {
            cancel: Arc::new(AtomicBool::new(false)),
            done,
        }
    }

    pub fn request_cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
}

/// Everything the TUI needs from the machine. Errors read as sentences for the user
/// (what failed and where, e.g. "Could not mount /dev/sdd1: wrong fs type") and keep
/// the device or repository error underneath; the TUI adds what to do next.
///
/// The contract for the `start_*` jobs, which the screens rely on:
/// - return at once; do the work on another thread (`JobHandle::spawn`);
/// - report `JobStart` (overall total), then per partition `PhaseStart`/`Advance`/
///   `PhaseEnd`, `ReadError` for each unreadable range and `Warning` for what the user
///   must know (damaged files), then `JobEnd`;
/// - poll the cancel flag between chunks; a cancelled backup removes its partial image
///   and ends with `Err(ServiceError::Cancelled(..))`;
/// - a restore or clone re-checks the target's serial and size against the request just
///   before the first write and refuses when they differ (names like sdb move), and
///   refuses a mounted target, the boot medium or the disk holding the repository.
pub trait Services: Send + Sync {
    fn list_disks(&self) -> Result<Vec<DiskView>, ServiceError>;
    /// Partitions that could hold a repository (label, filesystem, free space).
    fn list_repo_candidates(&self) -> Result<Vec<RepoCandidate>, ServiceError>;
    /// Mounts a partition (or checks a path) and returns the repository directory.
    fn open_repo(&self, target: &RepoTarget) -> Result<PathBuf, ServiceError>;
    fn list_images(&self, repo: &Path) -> Result<Vec<ImageView>, ServiceError>;
    /// Whether `repo` holds no repository yet, so that a backup there makes one (and
    /// the backup flow asks whether to encrypt it). False when unsure: the question
    /// is only for a location known to be empty of a repository.
    fn repo_is_new(&self, _repo: &Path) -> bool {
        false
    }
    /// Whether the repository at `repo` is encrypted and not unlocked in this session.
    fn repo_locked(&self, _repo: &Path) -> bool {
        false
    }
    /// `repo_locked`, `repo_is_new` and `list_images` of `repo` at once.
    fn repo_facts(&self, repo: &Path) -> RepoFacts {
        let locked = self.repo_locked(repo);
        RepoFacts {
            locked,
            new: !locked && self.repo_is_new(repo),
            images: (!locked).then(|| self.list_images(repo)),
        }
    }
    /// Unlocks the encrypted repository `repo` for the rest of the session (every later
    /// call naming it uses the passphrase); a wrong passphrase is an error saying so.
    fn unlock_repo(
        &self,
        _repo: &Path,
        _passphrase: &crate::share::Password,
    ) -> Result<(), ServiceError> {
        Ok(())
    }
    /// Checks the LUKS passphrase of `image` (one whose `needs_luks_key` is set) against
    /// the image's own LUKS header, writing nothing; a key it refuses is an error
    /// saying so.
    fn check_luks_key(
        &self,
        _repo: &Path,
        _image: &ImageView,
        _key: &crate::share::Password,
    ) -> Result<(), ServiceError> {
        Err(ServiceError::Plain(
            "LUKS passphrases cannot be checked here.".into(),
        ))
    }
    /// What the environment gives for remote stores (AWS_ENDPOINT_URL...), to prefill
    /// the credentials screen.
    fn remote_defaults(&self) -> crate::tui::remote::RemoteDefaults {
        Default::default()
    }
    /// Adds an SFTP host key the user accepted to known_hosts.
    fn trust_host_key(&self, _key: &crate::tui::remote::HostKey) -> Result<(), ServiceError> {
        Err(ServiceError::Plain(
            "Host keys cannot be accepted from here.".into(),
        ))
    }
    fn plan_restore(
        &self,
        repo: &Path,
        image: &str,
        target: &DiskView,
        options: &RestoreOptions,
    ) -> Result<PlanView, ServiceError>;
    /// What restoring one saved partition (`image` is a saveparts image's row) onto
    /// partition `part` of `target` will do; nothing is read past the image's header.
    fn plan_part_restore(
        &self,
        _repo: &Path,
        image: &str,
        _target: &DiskView,
        _part: u32,
    ) -> Result<PlanView, ServiceError> {
        Err(format!("{image} restores onto a partition, which this session cannot do.").into())
    }
    /// Same planner for a disk-to-disk clone (the source disk's layout as the "image").
    fn plan_clone(
        &self,
        source: &DiskView,
        target: &DiskView,
        options: &RestoreOptions,
    ) -> Result<PlanView, ServiceError>;
    fn start_backup(&self, req: BackupRequest, progress: Arc<dyn Progress>) -> JobHandle;
    fn start_restore(&self, req: RestoreRequest, progress: Arc<dyn Progress>) -> JobHandle;
    fn start_verify(&self, req: VerifyRequest, progress: Arc<dyn Progress>) -> JobHandle;
    fn start_clone(&self, req: CloneRequest, progress: Arc<dyn Progress>) -> JobHandle;
    /// For the default image name; None when the machine has no useful hostname.
    fn hostname(&self) -> Option<String>;
    /// Today's date as YYYY-MM-DD (a method so tests get a fixed date).
    fn today(&self) -> String;
    fn power_off(&self) -> Result<(), ServiceError>;

    /// Why scheduled backups cannot be set up from here (the live system, whose /etc
    /// is lost at power-off), or None when they can.
    fn schedule_unavailable(&self) -> Option<String> {
        Some("Scheduled backups cannot be set up from here.".into())
    }
    /// How a scheduled run finds the repository the user opened at `repo`:
    /// `uuid=<fs-uuid>:/path` for a partition (its kernel name can change), the share or
    /// the path otherwise. A share with a login is refused: a timer has nobody to type
    /// the password, and the schedule file is no place for one.
    fn schedule_location(
        &self,
        _target: &RepoTarget,
        _repo: &Path,
    ) -> Result<String, ServiceError> {
        Err(ServiceError::Plain(
            "Scheduled backups cannot be set up from here.".into(),
        ))
    }
    /// Checks a schedule (every field, the calendar): its next run when known.
    fn check_schedule(&self, _req: &ScheduleRequest) -> Result<Option<String>, ServiceError> {
        Err(ServiceError::Plain(
            "Scheduled backups cannot be set up from here.".into(),
        ))
    }
    /// The network interfaces network boot could be served on.
    fn list_interfaces(&self) -> Vec<super::deploy_model::IfaceView> {
        Vec::new()
    }
    /// Starts `ironclone deploy`'s work (and the boot server when asked) on its own
    /// thread; `events` gets its live status as it changes and, once, its end.
    /// Setting `cancel` stops it cleanly (udp-sender and the boot server stopped, the
    /// clients told); it still ends with its table, where every client without a
    /// report is CANCELLED.
    fn start_deploy(
        &self,
        _req: super::deploy_model::DeployRequest,
        _cancel: Arc<AtomicBool>,
        events: Arc<dyn Fn(super::deploy_model::DeployEvent) + Send + Sync>,
    ) {
        events(super::deploy_model::DeployEvent::Done(Err(
            ServiceError::Plain("Deploying cannot be started from here.".into()),
        )));
    }
    /// Writes the schedule and its systemd timer and starts it: what to tell the user.
    fn install_schedule(&self, _req: &ScheduleRequest) -> Result<Vec<String>, ServiceError> {
        Err(ServiceError::Plain(
            "Scheduled backups cannot be set up from here.".into(),
        ))
    }
}
