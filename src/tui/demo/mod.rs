//! Realistic fake machine for the TUI: tests drive every screen with it, and
//! `ironclone --demo-data` lets a person try the flows without touching a disk.
//! It records every job request so tests can check what the TUI asked for.

use super::model::{
    BackupRequest, CloneRequest, DiskView, ImageView, JobReport, PlanAction, PlanRow, PlanView,
    RepoCandidate, RepoTarget, RestoreOptions, RestoreRequest, ScheduleRequest, VerifyRequest,
};
use super::services::{JobHandle, JobOutcome, ServiceError, Services};
use crate::progress::{Progress, ProgressEvent};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) mod deploy;
mod layout;
mod machine;
mod remote;
use machine::windows_layout;
pub use machine::{
    demo_check_luks_key, demo_clonezilla_images, demo_disks, demo_images, part,
    DEMO_LUKS_PASSPHRASE,
};
pub use remote::DEMO_ENDPOINT;

/// Where the demo NAS's share `//nas/backups` is mounted once bob logs in.
const DEMO_SHARE_REPO: &str = "/run/ironclone/shares/nas-backups/ironclone";

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const GB: u64 = 1_000_000_000;

/// A job request the fake received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    Backup(BackupRequest),
    Restore(RestoreRequest),
    Verify(VerifyRequest),
    Clone(CloneRequest),
    Schedule(ScheduleRequest),
    Deploy(crate::tui::deploy_model::DeployRequest),
    PowerOff,
}

pub struct FakeServices {
    pub disks: Mutex<Vec<DiskView>>,
    pub images: Vec<ImageView>,
    pub recorded: Mutex<Vec<Recorded>>,
    /// Pause between progress steps; zero in tests, visible in the demo.
    pub step_delay: Duration,
    /// When set, listing partitions fails with this message (error-screen tests).
    pub fail_listing: Mutex<Option<String>>,
    /// When set, the next backup fails at once with this error (result-screen tests).
    pub fail_backup: Mutex<Option<ServiceError>>,
    pub remote: remote::DemoRemote,
    /// The last deploy's cancel flag, as the app handed it (tests read it).
    pub deploy_cancel: Mutex<Option<Arc<AtomicBool>>>,
    /// Which thread asked `repo_is_new`, `list_images` (tests: never the screen's for a
    /// network location), a plan or a LUKS key check (never the screen's).
    pub asked_on: Mutex<Vec<(&'static str, std::thread::ThreadId)>>,
}

impl Default for FakeServices {
    fn default() -> Self {
        Self::new(Duration::ZERO)
    }
}

impl FakeServices {
    pub fn new(step_delay: Duration) -> Self {
        FakeServices {
            disks: Mutex::new(demo_disks()),
            images: demo_images(),
            recorded: Mutex::new(Vec::new()),
            step_delay,
            fail_listing: Mutex::new(None),
            fail_backup: Mutex::new(None),
            remote: Default::default(),
            deploy_cancel: Mutex::new(None),
            asked_on: Mutex::new(Vec::new()),
        }
    }

    fn asked(&self, what: &'static str) {
        self.asked_on
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((what, std::thread::current().id()));
    }

    /// Whether the app asked the last deploy to stop.
    pub fn deploy_cancelled(&self) -> bool {
        self.deploy_cancel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst))
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Simulates a USB disk being plugged in (hotplug test).
    pub fn plug(&self, disk: DiskView) {
        self.disks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(disk);
    }

    /// Pulls the disk at kernel path `dev` out.
    pub fn unplug(&self, dev: &str) {
        self.disks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|d| d.dev != dev);
    }

    /// Plugs `disk` in at row `index`, as a disk whose kernel name sorts first does.
    pub fn plug_at(&self, index: usize, disk: DiskView) {
        let mut disks = self.disks.lock().unwrap_or_else(|e| e.into_inner());
        let index = index.min(disks.len());
        disks.insert(index, disk);
    }

    fn record(&self, r: Recorded) {
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(r);
    }

    fn disk(&self, dev: &str) -> Option<DiskView> {
        self.disks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|d| d.dev == dev)
            .cloned()
    }

    fn run_phases(
        &self,
        job: &str,
        phases: Vec<(String, u64)>,
        progress: Arc<dyn Progress>,
        report: JobReport,
    ) -> JobHandle {
        let delay = self.step_delay;
        let job = job.to_string();
        JobHandle::spawn(move |cancel: &AtomicBool| -> JobOutcome {
            let total = phases.iter().map(|(_, b)| b).sum();
            progress.report(ProgressEvent::JobStart {
                job: job.clone(),
                total_bytes: total,
            });
            for (name, bytes) in phases {
                progress.report(ProgressEvent::PhaseStart {
                    name: name.clone(),
                    total_bytes: bytes,
                });
                let step = (bytes / 20).max(1);
                let mut done = 0;
                while done < bytes {
                    if cancel.load(Ordering::SeqCst) {
                        progress.report(ProgressEvent::JobEnd { ok: false });
                        return Err(ServiceError::Cancelled("Nothing partial was kept.".into()));
                    }
                    let n = step.min(bytes - done);
                    progress.report(ProgressEvent::Advance { bytes: n });
                    done += n;
                    if !delay.is_zero() {
                        std::thread::sleep(delay);
                    }
                }
                progress.report(ProgressEvent::PhaseEnd { name });
            }
            for w in &report.warnings {
                progress.report(ProgressEvent::Warning { message: w.clone() });
            }
            progress.report(ProgressEvent::JobEnd { ok: true });
            Ok(report)
        })
    }
}

impl Services for FakeServices {
    fn check_luks_key(
        &self,
        _repo: &Path,
        image: &ImageView,
        key: &crate::share::Password,
    ) -> Result<(), ServiceError> {
        self.asked("check_luks_key");
        demo_check_luks_key(image, key)
    }
    fn list_disks(&self) -> Result<Vec<DiskView>, ServiceError> {
        Ok(self.disks.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    fn list_repo_candidates(&self) -> Result<Vec<RepoCandidate>, ServiceError> {
        if let Some(e) = self
            .fail_listing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(e.into());
        }
        Ok(vec![
            RepoCandidate {
                dev: "/dev/sdd1".into(),
                disk_model: "Seagate Expansion Desk".into(),
                label: "backups".into(),
                fs: "ext4".into(),
                size: 1862 * GIB,
                free: 1251 * GIB,
                mount_point: None,
                has_repo: true,
            },
            RepoCandidate {
                dev: "/dev/sdb1".into(),
                disk_model: "WDC WD10EZEX-08WN4A0".into(),
                label: "home".into(),
                fs: "ext4".into(),
                size: 931 * GIB,
                free: 529 * GIB,
                mount_point: None,
                has_repo: false,
            },
        ])
    }

    fn open_repo(&self, target: &RepoTarget) -> Result<PathBuf, ServiceError> {
        self.asked("open_repo");
        match target {
            RepoTarget::Partition(dev) if dev == "/dev/sdd1" => {
                Ok(PathBuf::from("/run/ironclone/sdd1/ironclone"))
            }
            RepoTarget::Partition(dev) => Ok(PathBuf::from(format!(
                "/run/ironclone/{}/ironclone",
                dev.trim_start_matches("/dev/")
            ))),
            // A share of the demo NAS wants bob's login (as CORP\\bob or bob). Compared
            // as text: `Path::starts_with` takes "/nas" for "//nas".
            RepoTarget::Path(p) if p.to_string_lossy().starts_with("//nas") => Err(format!(
                "Could not mount {}: permission denied (wrong user name or password).",
                p.display()
            )
            .into()),
            RepoTarget::Share { location, .. } => {
                let login = target.login();
                match (login.user.as_deref(), login.password) {
                    (Some("bob"), Some(pw)) if pw == crate::share::Password::new("secret") => {
                        Ok(PathBuf::from(DEMO_SHARE_REPO))
                    }
                    _ => Err(format!(
                        "Could not mount {location}: permission denied (wrong user name or password)."
                    ).into()),
                }
            }
            RepoTarget::Remote { location, creds } => self.remote.open(location, creds),
            RepoTarget::Path(p) if p.is_absolute() => Ok(p.clone()),
            RepoTarget::Path(p) => Err(format!(
                "\"{}\" is not an absolute path (it must start with /).",
                p.display()
            )
            .into()),
        }
    }

    /// The demo's locations without a repository: any typed path or bucket whose name
    /// has "new" in it (`/mnt/usb/new`, `s3://new-bucket`).
    fn repo_is_new(&self, repo: &Path) -> bool {
        self.asked("repo_is_new");
        repo.to_string_lossy().contains("new")
    }

    fn list_images(&self, repo: &Path) -> Result<Vec<ImageView>, ServiceError> {
        self.asked("list_images");
        if repo == Path::new("/home/partimag") {
            return Ok(demo_clonezilla_images());
        }
        let remote = ["s3://lab-images", "sftp://"]
            .iter()
            .any(|r| repo.to_string_lossy().starts_with(r));
        if repo.starts_with("/run/ironclone/sdd1") || repo == Path::new(DEMO_SHARE_REPO) || remote {
            Ok(self.images.clone())
        } else {
            Ok(Vec::new())
        }
    }

    fn remote_defaults(&self) -> crate::tui::remote::RemoteDefaults {
        remote::defaults()
    }

    fn trust_host_key(&self, key: &crate::tui::remote::HostKey) -> Result<(), ServiceError> {
        self.remote.trust(key)
    }

    fn plan_restore(
        &self,
        _repo: &Path,
        image: &str,
        target: &DiskView,
        options: &RestoreOptions,
    ) -> Result<PlanView, ServiceError> {
        self.asked("plan_restore");
        if image.starts_with("nas-home") {
            self.layout(
                vec![(1, "ext4", "home", 931 * GIB, 401 * GIB)],
                target.size,
                options,
            )
        } else {
            self.layout(windows_layout(), target.size, options)
        }
    }

    fn plan_part_restore(
        &self,
        _repo: &Path,
        _image: &str,
        target: &DiskView,
        part: u32,
    ) -> Result<PlanView, ServiceError> {
        self.asked("plan_part_restore");
        // The saved NTFS partition: 120 GiB, 41 GiB used; grown or shrunk to the target's.
        let (old, used) = (120 * GIB, 41 * GIB);
        let p = target
            .partitions
            .iter()
            .find(|p| p.number == part)
            .ok_or_else(|| format!("{} has no partition {part}.", target.dev))?;
        let action = match p.size.cmp(&old) {
            std::cmp::Ordering::Equal => PlanAction::Copy,
            std::cmp::Ordering::Greater => PlanAction::Grow,
            std::cmp::Ordering::Less => PlanAction::Shrink,
        };
        Ok(PlanView {
            table: "no".into(),
            target_size: p.size,
            rows: vec![PlanRow {
                number: part,
                fs: "ntfs".into(),
                label: p.label.clone(),
                old_start: 0,
                old_size: old,
                new_start: 0,
                new_size: p.size,
                used,
                action,
            }],
            notes: vec![
                "Before the first byte is written, the image is decoded and every \
                checksum checked into a scratch file under /var/tmp/ironclone, and the \
                filesystem fitted there."
                    .into(),
            ],
        })
    }

    fn plan_clone(
        &self,
        source: &DiskView,
        target: &DiskView,
        options: &RestoreOptions,
    ) -> Result<PlanView, ServiceError> {
        self.asked("plan_clone");
        let rows = source
            .partitions
            .iter()
            .map(|p| {
                let fs: &'static str = match p.fs.as_str() {
                    "vfat" => "vfat",
                    "msr" => "msr",
                    "ntfs" => "ntfs",
                    "swap" => "swap",
                    _ => "ext4",
                };
                (p.number, fs, "", p.size, p.used.unwrap_or(p.size))
            })
            .collect();
        self.layout(rows, target.size, options)
    }

    fn start_backup(&self, req: BackupRequest, progress: Arc<dyn Progress>) -> JobHandle {
        self.record(Recorded::Backup(req.clone()));
        if let Some(e) = self
            .fail_backup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return JobHandle::failed(e);
        }
        let Some(disk) = self.disk(&req.source_dev) else {
            return JobHandle::failed(format!("{} is gone.", req.source_dev));
        };
        let phases = disk
            .partitions
            .iter()
            .map(|p| {
                (
                    format!("partition {} ({})", p.number, p.fs),
                    p.used.unwrap_or(p.size),
                )
            })
            .collect();
        let report = JobReport {
            summary: vec![
                format!("Image \"{}\" stored in {}.", req.name, req.repo.display()),
                format!(
                    "{}, used blocks only.",
                    crate::units::count(disk.partitions.len(), "partition", "partitions")
                ),
            ],
            boot_repairs: Vec::new(),
            warnings: disk.warnings.clone(),
        };
        self.run_phases("backup", phases, progress, report)
    }

    fn start_restore(&self, req: RestoreRequest, progress: Arc<dyn Progress>) -> JobHandle {
        self.record(Recorded::Restore(req.clone()));
        let report = JobReport {
            summary: vec![format!(
                "Image \"{}\" restored onto {}; read back and checked.",
                req.image, req.target_dev
            )],
            boot_repairs: vec![
                "GPT rewritten for the new size: backup header at the last LBA.".into(),
                "NTFS partition 3 grown with ntfsresize; boot sector total sectors updated.".into(),
                "EFI boot entry \"Windows Boot Manager\" points at the ESP.".into(),
            ],
            warnings: Vec::new(),
        };
        let phases = vec![
            ("partition 1 (vfat)".into(), 38 * MIB),
            ("partition 3 (ntfs)".into(), 212 * GIB),
            ("partition 4 (ntfs)".into(), 520 * MIB),
            ("read back and compare".into(), 212 * GIB),
        ];
        self.run_phases("restore", phases, progress, report)
    }

    fn start_verify(&self, req: VerifyRequest, progress: Arc<dyn Progress>) -> JobHandle {
        self.record(Recorded::Verify(req.clone()));
        let report = JobReport {
            summary: vec![format!(
                "Image \"{}\": every chunk read back and its checksum matches.",
                req.image
            )],
            ..Default::default()
        };
        self.run_phases(
            "verify",
            vec![("checksums".into(), 14 * GIB)],
            progress,
            report,
        )
    }

    fn start_clone(&self, req: CloneRequest, progress: Arc<dyn Progress>) -> JobHandle {
        self.record(Recorded::Clone(req.clone()));
        let report = JobReport {
            summary: vec![format!(
                "{} cloned onto {}.",
                req.source_dev, req.target_dev
            )],
            boot_repairs: vec!["GPT rewritten for the new size.".into()],
            warnings: Vec::new(),
        };
        self.run_phases(
            "clone",
            vec![("copy used blocks".into(), 200 * GIB)],
            progress,
            report,
        )
    }

    fn hostname(&self) -> Option<String> {
        Some("latitude-7490".into())
    }

    fn today(&self) -> String {
        "2026-11-23".into()
    }

    fn power_off(&self) -> Result<(), ServiceError> {
        self.record(Recorded::PowerOff);
        Ok(())
    }

    fn schedule_unavailable(&self) -> Option<String> {
        None
    }

    fn schedule_location(&self, target: &RepoTarget, repo: &Path) -> Result<String, ServiceError> {
        match target {
            RepoTarget::Partition(_) => Ok(format!(
                "uuid=2f6c0a4e-9b1d-4c3e-8f27-5a1e0c9d7b31:/{}",
                repo.file_name().unwrap_or_default().to_string_lossy()
            )),
            RepoTarget::Path(p) => Ok(p.display().to_string()),
            RepoTarget::Share { location, .. } | RepoTarget::Remote { location, .. } => {
                Err(ServiceError::Plain(format!(
                    "{location} needs a login, and a timer has nobody to type the password"
                )))
            }
        }
    }

    fn check_schedule(&self, req: &ScheduleRequest) -> Result<Option<String>, ServiceError> {
        // The real check is systemd-analyze's; the demo knows the default and one error.
        match req.calendar.as_str() {
            "daily" => Ok(Some("Tue 2026-11-24 00:00:00 CET".into())),
            other => Err(ServiceError::Plain(format!(
                "calendar \"{other}\": systemd-analyze calendar rejected it (exit code 1): Failed to parse calendar specification"
            ))),
        }
    }

    fn list_interfaces(&self) -> Vec<crate::tui::deploy_model::IfaceView> {
        deploy::interfaces()
    }

    fn start_deploy(
        &self,
        req: crate::tui::deploy_model::DeployRequest,
        cancel: Arc<AtomicBool>,
        events: Arc<dyn Fn(crate::tui::deploy_model::DeployEvent) + Send + Sync>,
    ) {
        self.record(Recorded::Deploy(req.clone()));
        *self.deploy_cancel.lock().unwrap_or_else(|e| e.into_inner()) = Some(cancel.clone());
        deploy::play(&req, cancel, events, self.step_delay);
    }

    fn install_schedule(&self, req: &ScheduleRequest) -> Result<Vec<String>, ServiceError> {
        self.record(Recorded::Schedule(req.clone()));
        Ok(vec![
            "Schedule saved in /etc/ironclone/schedule.json.".into(),
            "Timer ironclone-backup.timer started; next run Tue 2026-11-24 00:00:00 CET.".into(),
            "`ironclone schedule status` shows the last run and what failed.".into(),
        ])
    }
}
