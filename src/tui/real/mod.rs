//! The TUI's `Services` over the real machine: disk discovery, the image repository,
//! the restore planner and writer. The screens stay the same as with the demo data;
//! this file only translates between the library's types and the TUI's views, runs
//! the jobs on threads, and adds what only an interactive front end needs: lazy
//! filesystem scans, mounting a repository partition, cancellation.

use super::model::{
    BackupRequest, CloneRequest, DiskView, ImageView, JobReport, LayoutMode, PartView, PlanAction,
    PlanRow, PlanView, RepoCandidate, RepoTarget, RestoreOptions, RestoreRequest, ScheduleRequest,
    SizeChoice, VerifyRequest, VolumeView,
};
use super::services::{JobHandle, JobOutcome, ServiceError, Services};
use crate::device::{open_path, Access, BlockDevice, Window};
use crate::discover::{self, disk_holding_path, Disk, SysPaths, Transport};
use crate::imaging::{
    plan_backup, plan_restore, restore_disk, DiskRestoreOptions, DiskRestorePlan,
    RestorePlanOptions,
};
use crate::plan::{self, SizeRequest};
use crate::probe::FsKind;
use crate::progress::{Progress, ProgressEvent};
use crate::repo::{self, BackupOptions, Repository, SourceInfo};
use crate::units::human_bytes;
use crate::usedmap::map_filesystem;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

mod clonezilla;
mod clonezilla_parts;
mod clonezilla_parts_luks;
/// The subdirectory of a mounted partition that holds the repository, so a backup
/// disk keeps its other files apart from ironclone's packs.
mod deploy;
mod disks;
mod jobs;
mod luks_key;
mod native_part;
mod remote;
mod schedule;
mod share;

use disks::*;
use jobs::*;

const REPO_SUBDIR: &str = "ironclone";

/// What a filesystem scan of one disk found: used bytes per partition and the
/// states a rescuer must know (hibernated NTFS, unreplayed journal...).
#[derive(Clone, Debug, Default)]
struct FsScan {
    used: HashMap<u32, u64>,
    /// The LVs of PV partitions.
    volumes: HashMap<u32, Vec<VolumeView>>,
    warnings: Vec<String>,
}

/// A disk's path, size and partitions (number, start, size, filesystem UUID): a disk
/// swapped under the same name, or rewritten by a restore, is scanned again.
type ScanKey = (PathBuf, u64, Vec<(u32, u64, u64, Option<String>)>);

enum ScanState {
    Running,
    Done(FsScan),
}

pub struct RealServices {
    paths: SysPaths,
    /// When set, only these disks are shown and written (a rescuer's or a test's
    /// fence: `IRONCLONE_ONLY_DISKS=/dev/sdb,/dev/sdc`).
    only: Option<Vec<PathBuf>>,
    /// Where repository partitions are mounted.
    mount_root: PathBuf,
    /// Used-block maps are too slow to compute for every disk at every refresh, so
    /// each disk is scanned once in the background and cached by what it looks like
    /// (see `ScanKey`).
    scans: Arc<Mutex<HashMap<ScanKey, ScanState>>>,
    /// What this session mounted; unmounted when the TUI quits.
    mounts: Arc<Mounts>,
    /// Passphrases of the encrypted repositories unlocked in this session.
    unlocked: Unlocked,
}

/// Encrypted repositories unlocked in this session, by directory.
pub(super) type Unlocked = Arc<Mutex<HashMap<PathBuf, crate::share::Password>>>;

/// Opens `path` with its session passphrase, if it has one.
pub(super) fn open_repository(
    unlocked: &Unlocked,
    path: &Path,
) -> Result<Repository, crate::repo::RepoError> {
    let pass = unlocked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(path)
        .cloned();
    match pass {
        Some(p) => Repository::open_with_secret(path, p.secret_bytes()),
        None => Repository::open(path),
    }
}

/// Repository partitions mounted by this session. Dropped with the last copy of the
/// services (the TUI's, after every job thread's), which unmounts them so a backup
/// disk can be unplugged safely once ironclone has quit.
#[derive(Default)]
struct Mounts(Mutex<Vec<PathBuf>>);

impl Drop for Mounts {
    fn drop(&mut self) {
        let dirs = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        for d in dirs {
            let ok = std::process::Command::new("umount")
                .arg(&d)
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                let _ = std::fs::remove_dir(&d);
            }
        }
    }
}

impl RealServices {
    pub fn new(only: Option<Vec<PathBuf>>) -> Self {
        RealServices {
            paths: SysPaths::default(),
            only,
            mount_root: PathBuf::from("/run/ironclone/repos"),
            scans: Arc::new(Mutex::new(HashMap::new())),
            mounts: Arc::new(Mounts::default()),
            unlocked: Arc::default(),
        }
    }

    /// Reads `IRONCLONE_ONLY_DISKS` (comma-separated `/dev` paths).
    pub fn from_env() -> Self {
        let only = std::env::var("IRONCLONE_ONLY_DISKS").ok().map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                // /dev/disk/by-id/... names the same disk as the kernel path.
                .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p)))
                .collect()
        });
        Self::new(only)
    }
}

impl Services for RealServices {
    fn list_disks(&self) -> Result<Vec<DiskView>, ServiceError> {
        Ok(self.disks()?.iter().map(|d| self.view(d)).collect())
    }

    fn list_repo_candidates(&self) -> Result<Vec<RepoCandidate>, ServiceError> {
        let mut out = Vec::new();
        for d in self.disks()? {
            let scan = self.scan_of(&d);
            for p in &d.partitions {
                let Some(fs) = &p.filesystem else { continue };
                if !repo_fs(fs.kind) {
                    continue;
                }
                let mount_point = p.mountpoints.first().cloned();
                let free = match &mount_point {
                    Some(m) => nix::sys::statvfs::statvfs(m)
                        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
                        .unwrap_or(0),
                    None => scan
                        .as_ref()
                        .and_then(|s| s.used.get(&p.number))
                        .map_or(0, |u| p.size_bytes.saturating_sub(*u)),
                };
                let has_repo = mount_point.as_ref().is_some_and(|m| {
                    m.join(REPO_SUBDIR).join("config").exists() || m.join("config").exists()
                });
                out.push(RepoCandidate {
                    dev: p.path.display().to_string(),
                    disk_model: model_of(&d),
                    label: fs.label.clone().unwrap_or_default(),
                    fs: fs.kind.name().into(),
                    size: p.size_bytes,
                    free,
                    mount_point,
                    has_repo,
                });
            }
        }
        Ok(out)
    }

    fn open_repo(&self, target: &RepoTarget) -> Result<PathBuf, ServiceError> {
        match target {
            RepoTarget::Path(p) if crate::share::is_share_location(&p.to_string_lossy()) => {
                share::open_share(&p.to_string_lossy(), REPO_SUBDIR, &Default::default())
            }
            RepoTarget::Share { location, .. } => {
                share::open_share(location, REPO_SUBDIR, &target.login())
            }
            RepoTarget::Remote { location, creds } => remote::open(location, creds),
            RepoTarget::Path(p) => {
                if !p.is_absolute() {
                    return Err(format!(
                        "\"{}\" is not an absolute path (it must start with /).",
                        p.display()
                    )
                    .into());
                }
                if p.join("config").exists() || p.is_dir() {
                    return Ok(p.clone());
                }
                match p.parent() {
                    Some(parent) if parent.is_dir() => Ok(p.clone()),
                    _ => Err(format!(
                        "{} does not exist, and neither does the folder it would be made in.",
                        p.display()
                    )
                    .into()),
                }
            }
            RepoTarget::Partition(dev) => {
                let disks = self.disks()?;
                let part = disks
                    .iter()
                    .flat_map(|d| d.partitions.iter())
                    .find(|p| p.path == Path::new(dev))
                    .ok_or_else(|| format!("{dev} is not connected any more."))?;
                let kind = part
                    .filesystem
                    .as_ref()
                    .map(|f| f.kind)
                    .filter(|k| repo_fs(*k))
                    .ok_or_else(|| {
                        format!("{dev} has no filesystem ironclone can store images on.")
                    })?;
                let base = match part.mountpoints.first() {
                    Some(m) => m.clone(),
                    None => self.mount(part, kind)?,
                };
                if base.join("config").exists() && !base.join(REPO_SUBDIR).exists() {
                    Ok(base)
                } else {
                    Ok(base.join(REPO_SUBDIR))
                }
            }
        }
    }

    fn list_images(&self, repo: &Path) -> Result<Vec<ImageView>, ServiceError> {
        let remote = !matches!(
            repo::storage::parse_location(repo),
            Ok(repo::storage::Location::Local(_))
        );
        // A remote store is asked (a new bucket prefix has no config yet).
        let exists = match remote {
            true => Repository::exists(repo)?,
            false => repo.join("config").exists(),
        };
        let foreign = match remote {
            true => Vec::new(),
            false => clonezilla::images(repo),
        };
        if !exists {
            return Ok(foreign);
        }
        let r = open_repository(&self.unlocked, repo)?;
        let list = r.list_images()?;
        let mut mine: Vec<ImageView> = list
            .into_iter()
            .filter_map(Result::ok)
            .map(|s| {
                let stored = s.stats.new_stored_bytes;
                // Unchanged bytes (changed-block tracking) are image data not read.
                let logical = s
                    .stats
                    .bytes_read
                    .saturating_add(s.stats.unchanged_bytes)
                    .saturating_sub(s.stats.zero_bytes);
                ImageView {
                    date: crate::timefmt::utc_human(s.created_unix)
                        .trim_end_matches(" UTC")
                        .to_string(),
                    source_model: s
                        .source
                        .model
                        .clone()
                        .unwrap_or_else(|| s.source.path.clone()),
                    source_serial: s.source.serial.clone().unwrap_or_default(),
                    source_size: s.source.size,
                    stored_bytes: stored,
                    data_bytes: s.data_bytes,
                    dedup_ratio: if stored == 0 {
                        1.0
                    } else {
                        logical as f64 / stored as f64
                    },
                    name: s.name,
                    clonezilla: false,
                    partition: None,
                    // One filesystem (or LUKS partition) saved without a table.
                    table_less: s
                        .areas
                        .iter()
                        .any(|a| a == crate::imaging::meta::WHOLE_FS_AREA),
                    // Backed up with `--unlock`: its plaintext areas (`meta.luks`).
                    needs_luks_key: s
                        .areas
                        .iter()
                        .any(|a| a.ends_with(crate::imaging::PLAINTEXT_SUFFIX)),
                }
            })
            .collect();
        mine.extend(foreign);
        Ok(mine)
    }

    fn plan_restore(
        &self,
        repo: &Path,
        image: &str,
        target: &DiskView,
        options: &RestoreOptions,
    ) -> Result<PlanView, ServiceError> {
        let sector = self
            .disk(&target.dev)
            .map(|d| d.logical_sector_size)
            .unwrap_or(512);
        let p = self.plan(repo, image, target.size, sector, options)?;
        Ok(plan_view(&p))
    }

    fn plan_part_restore(
        &self,
        repo: &Path,
        image: &str,
        target: &DiskView,
        part: u32,
    ) -> Result<PlanView, ServiceError> {
        if clonezilla::is_image(repo, image) {
            return clonezilla_parts::plan(repo, image, target, part);
        }
        native_part::plan(self, repo, image, target, part)
    }

    fn plan_clone(
        &self,
        source: &DiskView,
        target: &DiskView,
        options: &RestoreOptions,
    ) -> Result<PlanView, ServiceError> {
        let src = self.disk(&source.dev)?;
        let dev = open_path(&src.path, Access::ReadOnly)
            .map_err(ServiceError::device("Could not open the source"))?;
        let planned = plan_backup(&dev, source_info(&src, &dev))
            .map_err(ServiceError::imaging("Could not read the source's layout"))?;
        let sector = self
            .disk(&target.dev)
            .map(|d| d.logical_sector_size)
            .unwrap_or(512);
        let p = plan_restore(
            &planned.preview_manifest("clone"),
            target.size,
            sector,
            &plan_options(options),
        )?;
        Ok(plan_view(&p))
    }

    fn start_backup(&self, req: BackupRequest, progress: Arc<dyn Progress>) -> JobHandle {
        self.spawn_job(
            progress,
            "No image was kept; the chunks already stored are reused by the next backup.",
            move |me, p, cancel| run_backup(me, &req, p, cancel),
        )
    }

    fn start_restore(&self, req: RestoreRequest, progress: Arc<dyn Progress>) -> JobHandle {
        self.spawn_job(
            progress,
            "The target disk is incomplete and will not boot; restore onto it again.",
            move |me, p, cancel| run_restore(me, &req, p, cancel),
        )
    }

    fn remote_defaults(&self) -> crate::tui::remote::RemoteDefaults {
        remote::defaults()
    }

    fn trust_host_key(&self, key: &crate::tui::remote::HostKey) -> Result<(), ServiceError> {
        remote::trust(key)
    }

    fn repo_is_new(&self, repo: &Path) -> bool {
        matches!(Repository::exists(repo), Ok(false))
    }

    fn repo_locked(&self, repo: &Path) -> bool {
        let known = self
            .unlocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(repo);
        !known && Repository::is_encrypted(repo).unwrap_or(false)
    }

    fn check_luks_key(
        &self,
        repo: &Path,
        image: &ImageView,
        key: &crate::share::Password,
    ) -> Result<(), ServiceError> {
        luks_key::check(&self.unlocked, repo, image, key)
    }

    fn unlock_repo(
        &self,
        repo: &Path,
        passphrase: &crate::share::Password,
    ) -> Result<(), ServiceError> {
        Repository::open_with_secret(repo, passphrase.secret_bytes())?;
        self.unlocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(repo.to_path_buf(), passphrase.clone());
        Ok(())
    }

    fn start_verify(&self, req: VerifyRequest, progress: Arc<dyn Progress>) -> JobHandle {
        let unlocked = Arc::clone(&self.unlocked);
        JobHandle::spawn(move |cancel| {
            let r = run_verify(&req, Arc::clone(&progress), cancel, unlocked);
            finish(&*progress, cancel, r, "The image was not changed.")
        })
    }

    fn start_clone(&self, req: CloneRequest, progress: Arc<dyn Progress>) -> JobHandle {
        self.spawn_job(
            progress,
            "The target disk is incomplete and will not boot; clone onto it again.",
            move |me, p, cancel| run_clone(me, &req, p, cancel),
        )
    }

    fn hostname(&self) -> Option<String> {
        // "localhost" names no machine: not worth suggesting as an image name.
        crate::hostname::hostname().filter(|h| h != "localhost")
    }

    fn today(&self) -> String {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        crate::timefmt::utc_human(secs)
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_string()
    }

    fn power_off(&self) -> Result<(), ServiceError> {
        if std::process::id() != 1 && !Path::new("/run/ironclone/boot-device").exists() {
            return Err(
                "ironclone is not running as the live system here, so it does not power the \
                 machine off. Quit and use the system's own shutdown."
                    .into(),
            );
        }
        let st = std::process::Command::new("poweroff")
            .arg("-f")
            .status()
            .map_err(|e| format!("Could not run poweroff: {e}"))?;
        if st.success() {
            Ok(())
        } else {
            Err(format!("poweroff -f failed ({st}).").into())
        }
    }

    fn schedule_unavailable(&self) -> Option<String> {
        schedule::unavailable()
    }

    fn schedule_location(&self, target: &RepoTarget, repo: &Path) -> Result<String, ServiceError> {
        schedule::location(target, repo)
    }

    fn check_schedule(&self, req: &ScheduleRequest) -> Result<Option<String>, ServiceError> {
        schedule::check_request(req)
    }

    fn list_interfaces(&self) -> Vec<crate::tui::deploy_model::IfaceView> {
        deploy::interfaces()
    }

    fn start_deploy(
        &self,
        req: crate::tui::deploy_model::DeployRequest,
        cancel: Arc<std::sync::atomic::AtomicBool>,
        events: Arc<dyn Fn(crate::tui::deploy_model::DeployEvent) + Send + Sync>,
    ) {
        deploy::start(Arc::clone(&self.unlocked), req, cancel, events);
    }

    fn install_schedule(&self, req: &ScheduleRequest) -> Result<Vec<String>, ServiceError> {
        schedule::install_request(req)
    }
}

impl RealServices {
    /// A copy for a job thread: same settings, same scan cache.
    fn clone_handle(&self) -> RealServices {
        RealServices {
            paths: self.paths.clone(),
            only: self.only.clone(),
            mount_root: self.mount_root.clone(),
            scans: Arc::clone(&self.scans),
            mounts: Arc::clone(&self.mounts),
            unlocked: Arc::clone(&self.unlocked),
        }
    }

    /// Runs `run` on a job thread with its own handle on these services, and ends it
    /// with `finish` (a cancel is reported with `on_cancel`, what it left behind).
    fn spawn_job<F>(
        &self,
        progress: Arc<dyn Progress>,
        on_cancel: &'static str,
        run: F,
    ) -> JobHandle
    where
        F: FnOnce(&RealServices, &dyn Progress, &AtomicBool) -> Result<JobReport, ServiceError>
            + Send
            + 'static,
    {
        let me = self.clone_handle();
        JobHandle::spawn(move |cancel| {
            let r = run(&me, &*progress, cancel);
            finish(&*progress, cancel, r, on_cancel)
        })
    }
}

#[cfg(test)]
mod tests;
