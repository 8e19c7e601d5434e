//! The TUI's `Services` over the real machine: disk discovery, the image repository,
//! the restore planner and writer. The screens stay the same as with the demo data;
//! this file only translates between the library's types and the TUI's views, runs
//! the jobs on threads, and adds what only an interactive front end needs: lazy
//! filesystem scans, mounting a repository partition, cancellation.

use super::model::{
    BackupRequest, CloneRequest, DiskView, ImageView, JobReport, LayoutMode, PartView, PlanAction,
    PlanRow, PlanView, RepoCandidate, RepoTarget, RestoreOptions, RestoreRequest, SizeChoice,
    VerifyRequest,
};
use super::services::{JobHandle, JobOutcome, Services};
use crate::device::{open_path, Access, BlockDevice, DeviceError, Window};
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

/// The subdirectory of a mounted partition that holds the repository, so a backup
/// disk keeps its other files apart from ironclone's packs.
const REPO_SUBDIR: &str = "ironclone";

/// What a filesystem scan of one disk found: used bytes per partition and the
/// states a rescuer must know (hibernated NTFS, unreplayed journal...).
#[derive(Clone, Debug, Default)]
struct FsScan {
    used: HashMap<u32, u64>,
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

    fn disks(&self) -> Result<Vec<Disk>, String> {
        let all = discover::list_disks(&self.paths).map_err(|e| e.to_string())?;
        Ok(match &self.only {
            Some(only) => all.into_iter().filter(|d| only.contains(&d.path)).collect(),
            None => all,
        })
    }

    fn disk(&self, dev: &str) -> Result<Disk, String> {
        self.disks()?
            .into_iter()
            .find(|d| d.path == Path::new(dev))
            .ok_or_else(|| format!("{dev} is not connected any more (or is not a whole disk)."))
    }

    /// The cached scan of `d`, starting one in the background when there is none.
    fn scan_of(&self, d: &Disk) -> Option<FsScan> {
        let key = (
            d.path.clone(),
            d.size_bytes,
            d.partitions
                .iter()
                .map(|p| {
                    let uuid = p.filesystem.as_ref().and_then(|f| f.uuid.clone());
                    (p.number, p.start_bytes, p.size_bytes, uuid)
                })
                .collect(),
        );
        let mut g = self.scans.lock().unwrap_or_else(|e| e.into_inner());
        match g.get(&key) {
            Some(ScanState::Done(s)) => return Some(s.clone()),
            Some(ScanState::Running) => return None,
            None => {}
        }
        g.insert(key.clone(), ScanState::Running);
        drop(g);
        let scans = Arc::clone(&self.scans);
        let disk = d.clone();
        std::thread::spawn(move || {
            let s = scan_disk(&disk);
            scans
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, ScanState::Done(s));
        });
        None
    }

    fn view(&self, d: &Disk) -> DiskView {
        let scan = self.scan_of(d);
        let mut warnings = scan
            .as_ref()
            .map(|s| s.warnings.clone())
            .unwrap_or_default();
        if !d.holders.is_empty() || d.partitions.iter().any(|p| !p.holders.is_empty()) {
            warnings.push(
                "Part of this disk is in use by RAID, LVM or encryption (it has holders).".into(),
            );
        }
        DiskView {
            dev: d.path.display().to_string(),
            model: model_of(d),
            serial: d.serial.clone().unwrap_or_default(),
            size: d.size_bytes,
            transport: transport_name(d.transport).into(),
            mounted: d.has_mounted,
            boot_medium: d.is_boot,
            read_only: d.read_only,
            removable: d.removable,
            partitions: d
                .partitions
                .iter()
                .map(|p| PartView {
                    number: p.number,
                    fs: p
                        .filesystem
                        .as_ref()
                        .map(|f| f.kind.name().to_string())
                        .unwrap_or_default(),
                    label: p
                        .filesystem
                        .as_ref()
                        .and_then(|f| f.label.clone())
                        .unwrap_or_default(),
                    size: p.size_bytes,
                    used: scan.as_ref().and_then(|s| s.used.get(&p.number).copied()),
                })
                .collect(),
            warnings,
        }
    }

    fn mount(&self, part: &discover::Partition, kind: FsKind) -> Result<PathBuf, String> {
        let dir = self.mount_root.join(&part.name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("Could not create {}: {e}", dir.display()))?;
        let dev = part.path.display().to_string();
        let d = dir.display().to_string();
        let mut cmd = match kind {
            FsKind::Ntfs => {
                let mut c = std::process::Command::new("ntfs-3g");
                c.args([&dev, &d]);
                c
            }
            k => {
                let t = match k {
                    k if k.is_fat() => "vfat",
                    k => k.name(),
                };
                let mut c = std::process::Command::new("mount");
                c.args(["-t", t, "-o", "rw", &dev, &d]);
                c
            }
        };
        let out = cmd
            .output()
            .map_err(|e| format!("Could not run the mount tool for {dev}: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!("Could not mount {dev}: {}", err.trim()));
        }
        self.mounts
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(dir.clone());
        Ok(dir)
    }

    /// Refuses `target` as a restore target: the boot medium, anything mounted,
    /// read-only, or the disk holding the repository.
    fn check_target(&self, target: &Disk, what: &str, keep: &Path) -> Result<(), String> {
        if let Some(only) = &self.only {
            if !only.contains(&target.path) {
                return Err(format!(
                    "{} is not among the disks this session may use.",
                    target.path.display()
                ));
            }
        }
        discover::check_restore_target(&self.paths, target, what, keep).map_err(|e| e.to_string())
    }

    /// The identity check just before the first write: kernel names move between
    /// boots and hotplugs, so the disk must still have the serial and size the user
    /// confirmed.
    fn recheck(&self, dev: &str, serial: &str, size: u64) -> Result<Disk, String> {
        let now = self.disk(dev)?;
        let now_serial = now.serial.clone().unwrap_or_default();
        if now_serial.trim() != serial.trim() || now.size_bytes != size {
            return Err(format!(
                "{dev} is now {}, not the disk you confirmed (serial \"{serial}\", {}). Nothing was written.",
                now.describe(),
                human_bytes(size)
            ));
        }
        Ok(now)
    }

    fn plan(
        &self,
        repo: &Path,
        image: &str,
        target_size: u64,
        target_sector: u32,
        options: &RestoreOptions,
    ) -> Result<DiskRestorePlan, String> {
        let r = Repository::open(repo).map_err(|e| e.to_string())?;
        let m = r.load_manifest(image).map_err(|e| e.to_string())?;
        plan_restore(&m, target_size, target_sector, &plan_options(options))
            .map_err(|e| e.to_string())
    }
}

fn plan_options(o: &RestoreOptions) -> RestorePlanOptions {
    let mut sizes = BTreeMap::new();
    for (n, s) in &o.sizes {
        sizes.insert(
            *n,
            match s {
                SizeChoice::Bytes(b) => SizeRequest::Bytes(*b),
                SizeChoice::Max => SizeRequest::Max,
            },
        );
    }
    RestorePlanOptions {
        mode: match o.mode {
            LayoutMode::Proportional => plan::LayoutMode::Proportional,
            LayoutMode::Keep => plan::LayoutMode::Keep,
        },
        sizes,
    }
}

/// The planner's answer as the plan screen shows it.
fn plan_view(p: &DiskRestorePlan) -> PlanView {
    let label_of = |n: u32| {
        p.parts
            .iter()
            .find(|t| t.meta.partition.as_ref().map(|q| q.number) == Some(n))
            .and_then(|t| t.meta.filesystem.as_ref())
            .and_then(|f| f.label.clone())
            .unwrap_or_default()
    };
    PlanView {
        table: p
            .target_layout
            .as_ref()
            .map_or("none (one filesystem)".into(), |l| {
                l.kind.name().to_string()
            }),
        target_size: p.target_size,
        rows: p
            .plan
            .partitions
            .iter()
            .map(|r| PlanRow {
                number: r.number,
                fs: r.fs.clone(),
                label: label_of(r.number),
                old_start: r.old_start,
                old_size: r.old_size,
                new_start: r.new_start,
                new_size: r.new_size,
                used: r.used_bytes,
                action: match r.action {
                    plan::Action::Copy => PlanAction::Copy,
                    plan::Action::Grow => PlanAction::Grow,
                    plan::Action::Shrink => PlanAction::Shrink,
                },
            })
            .collect(),
        notes: vec![format!(
            "Aligned to {}. Disk and partition IDs are kept.",
            plan::mib(p.plan.alignment)
        )],
    }
}

fn model_of(d: &Disk) -> String {
    d.model.clone().unwrap_or_else(|| match &d.backing_file {
        Some(f) => format!("loop on {}", f.display()),
        None => "unknown model".into(),
    })
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Nvme => "NVMe",
        Transport::Sata => "SATA",
        Transport::Usb => "USB",
        Transport::Virtio => "virtio",
        Transport::Scsi => "SCSI",
        Transport::Loop => "loop",
        Transport::Mmc => "MMC",
        Transport::Unknown => "",
    }
}

/// Filesystems ironclone can mount to hold a repository.
fn repo_fs(kind: FsKind) -> bool {
    kind.is_ext() || kind.is_fat() || matches!(kind, FsKind::Exfat | FsKind::Ntfs)
}

/// Maps every partition's filesystem (read-only) for used bytes and warnings.
fn scan_disk(d: &Disk) -> FsScan {
    let mut s = FsScan::default();
    let Ok(dev) = open_path(&d.path, Access::ReadOnly) else {
        return s;
    };
    let whole = d
        .partitions
        .is_empty()
        .then_some((0, d.size_bytes, &d.filesystem));
    let parts = d
        .partitions
        .iter()
        .map(|p| (p.number, (p.start_bytes, p.size_bytes, &p.filesystem)));
    for (number, (start, len, fs)) in parts.chain(whole.map(|w| (0, w))) {
        let Some(kind) = fs.as_ref().map(|f| f.kind) else {
            continue;
        };
        if matches!(kind, FsKind::Swap | FsKind::Unknown) {
            continue;
        }
        let Ok(win) = Window::new(&dev, start, len) else {
            continue;
        };
        let map = map_filesystem(&win, kind);
        if !map.raw {
            s.used.insert(number, map.used_bytes);
        }
        let place = if number == 0 {
            "the whole disk".to_string()
        } else {
            format!("partition {number}")
        };
        s.warnings.extend(
            map.warnings
                .iter()
                .map(|w| format!("{kind} on {place}: {w}")),
        );
    }
    s
}

/// Wraps a device so a cancel makes the next read or write fail: the engines stop
/// on an I/O error the way they stop on a bad disk, and a backup stopped before its
/// manifest is written leaves no image.
struct Cancellable<'a> {
    inner: &'a dyn BlockDevice,
    cancel: &'a AtomicBool,
}

impl Cancellable<'_> {
    fn check(&self, offset: u64) -> Result<(), DeviceError> {
        if self.cancel.load(Ordering::SeqCst) {
            Err(DeviceError::Query {
                device: self.inner.describe(),
                what: format!("cancelled by the user at byte {offset}"),
            })
        } else {
            Ok(())
        }
    }
}

impl BlockDevice for Cancellable<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.check(offset)?;
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.check(offset)?;
        self.inner.write_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn logical_sector_size(&self) -> u32 {
        self.inner.logical_sector_size()
    }
    fn physical_sector_size(&self) -> u32 {
        self.inner.physical_sector_size()
    }
    fn flush(&self) -> Result<(), DeviceError> {
        self.inner.flush()
    }
    fn access(&self) -> crate::device::Access {
        self.inner.access()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Ends a job: `JobEnd` for the progress screen, and a cancel named as such.
fn finish(
    progress: &dyn Progress,
    cancel: &AtomicBool,
    r: Result<JobReport, String>,
    what: &str,
) -> JobOutcome {
    progress.report(ProgressEvent::JobEnd { ok: r.is_ok() });
    match r {
        Err(_) if cancel.load(Ordering::SeqCst) => Err(format!("Cancelled. {what}")),
        other => other,
    }
}

fn run_backup(
    me: &RealServices,
    req: &BackupRequest,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<JobReport, String> {
    let disk = source_disk(me, &req.source_dev, &req.source_serial)?;
    let disks = discover::list_disks(&me.paths).map_err(|e| e.to_string())?;
    if let Ok(Some(h)) = disk_holding_path(&me.paths, &disks, &req.repo) {
        if h.path == disk.path {
            return Err(format!(
                "The repository {} is on the disk being backed up ({}); store the image on another disk.",
                req.repo.display(),
                disk.describe()
            ));
        }
    }
    let dev = open_path(&disk.path, Access::ReadOnly)
        .map_err(|e| format!("Could not open the source: {e}"))?;
    let source = SourceInfo {
        path: disk.path.display().to_string(),
        model: disk.model.clone(),
        serial: disk.serial.clone(),
        size: dev.size(),
        sector_size: dev.logical_sector_size(),
    };
    let planned = plan_backup(&dev, source)
        .map_err(|e| format!("Could not read the source's layout: {e}"))?;
    for w in &planned.warnings {
        progress.report(ProgressEvent::Warning { message: w.clone() });
    }
    let repo = Repository::open_or_init(&req.repo)
        .map_err(|e| format!("Could not open the repository {}: {e}", req.repo.display()))?;
    let guarded = Cancellable {
        inner: &dev,
        cancel,
    };
    let t = std::time::Instant::now();
    let m = repo::backup(
        &repo,
        &guarded,
        &planned.plan,
        &BackupOptions::new(&req.name),
        progress,
    )
    .map_err(|e| e.to_string())?;
    let s = &m.stats;
    Ok(JobReport {
        summary: vec![
            format!(
                "Image \"{}\" stored in {} in {:.0} s.",
                m.name,
                req.repo.display(),
                t.elapsed().as_secs_f64()
            ),
            format!(
                "Read {}: {} new stored as {}, {} already in the repository, {} zeros skipped.",
                human_bytes(s.bytes_read),
                human_bytes(s.new_bytes),
                human_bytes(s.new_stored_bytes),
                human_bytes(s.dedup_bytes),
                human_bytes(s.zero_bytes)
            ),
        ],
        boot_repairs: Vec::new(),
        warnings: planned.warnings,
    })
}

fn run_restore(
    me: &RealServices,
    req: &RestoreRequest,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<JobReport, String> {
    let target = me.recheck(&req.target_dev, &req.target_serial, req.target_size)?;
    me.check_target(&target, "the image repository", &req.repo)?;
    let repo = Repository::open(&req.repo).map_err(|e| e.to_string())?;
    let dev = open_path(&target.path, Access::ReadWrite)
        .map_err(|e| format!("Could not open the target for writing: {e}"))?;
    let plan = me.plan(
        &req.repo,
        &req.image,
        dev.size(),
        dev.logical_sector_size(),
        &req.options,
    )?;
    // The last look before the first byte is written.
    me.recheck(&req.target_dev, &req.target_serial, req.target_size)?;
    let guarded = Cancellable {
        inner: &dev,
        cancel,
    };
    let rep = restore_disk(
        &repo,
        &plan,
        &guarded,
        &target.path,
        &DiskRestoreOptions {
            new_ids: false,
            verify_after: true,
            repair: true,
            nvram: true,
            scratch_dir: req.repo.join("tmp"),
            target_is_zeroed: false,
        },
        progress,
    )
    .map_err(|e| e.to_string())?;
    Ok(JobReport {
        summary: vec![
            format!(
                "Image \"{}\" restored onto {} ({}).",
                rep.image,
                req.target_dev,
                model_of(&target)
            ),
            format!(
                "{} written, {} read back and compared.",
                human_bytes(rep.bytes_written),
                human_bytes(rep.bytes_verified)
            ),
        ],
        boot_repairs: rep.steps,
        warnings: Vec::new(),
    })
}

fn run_verify(
    req: &VerifyRequest,
    progress: Arc<dyn Progress>,
    cancel: &AtomicBool,
) -> Result<JobReport, String> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let (path, image) = (req.repo.clone(), req.image.clone());
    // The verifier has no cancel hook; it only reads, so a cancelled one is left to
    // finish on its own while the user moves on.
    std::thread::spawn(move || {
        let r = Repository::open(&path)
            .and_then(|r| repo::verify(&r, Some(&image), &*progress))
            .map_err(|e| e.to_string());
        let _ = tx.send(r);
    });
    let rep = loop {
        match rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(r) => break r?,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if cancel.load(Ordering::SeqCst) {
                    return Err("stopped".into());
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err("The verifier stopped without a result.".into())
            }
        }
    };
    if !rep.ok() {
        let mut lines: Vec<String> = rep.problems.iter().map(|p| p.to_string()).collect();
        lines.extend(rep.damages.iter().map(|d| {
            format!(
                "image {} area {} bytes {}..{}: {}",
                d.image,
                d.area,
                d.area_offset,
                d.area_offset.saturating_add(d.len),
                d.what
            )
        }));
        return Err(format!("The image is damaged: {}", lines.join("; ")));
    }
    Ok(JobReport {
        summary: vec![format!(
            "Image \"{}\": every chunk read back and its checksum matches ({} chunks).",
            req.image, rep.chunks_checked
        )],
        ..Default::default()
    })
}

/// Where a clone keeps its temporary repository: `IRONCLONE_SCRATCH`, else
/// /var/tmp/ironclone.
fn scratch_root() -> PathBuf {
    std::env::var_os("IRONCLONE_SCRATCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/ironclone"))
}

/// Removes a clone's temporary repository however the clone ends.
struct TempRepo(PathBuf);
impl Drop for TempRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A clone is a backup into a temporary repository followed by a restore from it:
/// the same planner, resize and boot repair as a restore, and the same checks.
fn run_clone(
    me: &RealServices,
    req: &CloneRequest,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<JobReport, String> {
    let src = source_disk(me, &req.source_dev, &req.source_serial)?;
    let target = me.recheck(&req.target_dev, &req.target_serial, req.target_size)?;
    if target.path == src.path {
        return Err("The target is the source disk.".into());
    }
    let root = scratch_root();
    std::fs::create_dir_all(&root).map_err(|e| {
        format!(
            "Could not create the scratch folder {}: {e}",
            root.display()
        )
    })?;
    me.check_target(&target, "the clone's scratch folder", &root)?;
    let dev = open_path(&src.path, Access::ReadOnly)
        .map_err(|e| format!("Could not open the source: {e}"))?;
    let planned = plan_backup(&dev, source_info(&src, &dev))
        .map_err(|e| format!("Could not read the source's layout: {e}"))?;
    let need = planned.plan.total_bytes();
    let free = nix::sys::statvfs::statvfs(&root)
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
        .unwrap_or(0);
    if free < need {
        return Err(format!(
            "A clone passes through a temporary copy in {}, which has {} free; it needs up to {}. \
             Set IRONCLONE_SCRATCH to a bigger folder, or back up and restore through a repository.",
            root.display(),
            human_bytes(free),
            human_bytes(need)
        ));
    }
    for w in &planned.warnings {
        progress.report(ProgressEvent::Warning { message: w.clone() });
    }
    let tmp = TempRepo(root.join(format!("clone-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&tmp.0);
    let repo = Repository::open_or_init(&tmp.0).map_err(|e| e.to_string())?;
    let m = repo::backup(
        &repo,
        &Cancellable {
            inner: &dev,
            cancel,
        },
        &planned.plan,
        &BackupOptions::new("clone"),
        progress,
    )
    .map_err(|e| e.to_string())?;
    let out = open_path(&target.path, Access::ReadWrite)
        .map_err(|e| format!("Could not open the target for writing: {e}"))?;
    let plan = plan_restore(
        &m,
        out.size(),
        out.logical_sector_size(),
        &plan_options(&req.options),
    )
    .map_err(|e| e.to_string())?;
    me.recheck(&req.target_dev, &req.target_serial, req.target_size)?;
    let rep = restore_disk(
        &repo,
        &plan,
        &Cancellable {
            inner: &out,
            cancel,
        },
        &target.path,
        &DiskRestoreOptions {
            new_ids: false,
            verify_after: true,
            repair: true,
            nvram: true,
            scratch_dir: tmp.0.join("tmp"),
            target_is_zeroed: false,
        },
        progress,
    )
    .map_err(|e| e.to_string())?;
    Ok(JobReport {
        summary: vec![
            format!(
                "{} ({}) cloned onto {} ({}).",
                req.source_dev,
                model_of(&src),
                req.target_dev,
                model_of(&target)
            ),
            format!(
                "{} written, {} read back and compared.",
                human_bytes(rep.bytes_written),
                human_bytes(rep.bytes_verified)
            ),
        ],
        boot_repairs: rep.steps,
        warnings: planned.warnings,
    })
}

fn source_info(d: &Disk, dev: &dyn BlockDevice) -> SourceInfo {
    SourceInfo {
        path: d.path.display().to_string(),
        model: d.model.clone(),
        serial: d.serial.clone(),
        size: dev.size(),
        sector_size: dev.logical_sector_size(),
    }
}

/// The chosen source, still the disk the user picked (names move on hotplug).
fn source_disk(me: &RealServices, dev: &str, serial: &str) -> Result<Disk, String> {
    let disk = me.disk(dev)?;
    if disk.serial.clone().unwrap_or_default().trim() != serial.trim() {
        return Err(format!(
            "{dev} is now {}, not the disk you chose. Nothing was read.",
            disk.describe()
        ));
    }
    Ok(disk)
}

impl Services for RealServices {
    fn list_disks(&self) -> Result<Vec<DiskView>, String> {
        Ok(self.disks()?.iter().map(|d| self.view(d)).collect())
    }

    fn list_repo_candidates(&self) -> Result<Vec<RepoCandidate>, String> {
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

    fn open_repo(&self, target: &RepoTarget) -> Result<PathBuf, String> {
        match target {
            RepoTarget::Path(p) => {
                if !p.is_absolute() {
                    return Err(format!(
                        "\"{}\" is not an absolute path (it must start with /).",
                        p.display()
                    ));
                }
                if p.join("config").exists() || p.is_dir() {
                    return Ok(p.clone());
                }
                match p.parent() {
                    Some(parent) if parent.is_dir() => Ok(p.clone()),
                    _ => Err(format!(
                        "{} does not exist, and neither does the folder it would be made in.",
                        p.display()
                    )),
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

    fn list_images(&self, repo: &Path) -> Result<Vec<ImageView>, String> {
        if !repo.join("config").exists() {
            return Ok(Vec::new());
        }
        let r = Repository::open(repo).map_err(|e| e.to_string())?;
        let list = r.list_images().map_err(|e| e.to_string())?;
        Ok(list
            .into_iter()
            .filter_map(Result::ok)
            .map(|s| {
                let stored = s.stats.new_stored_bytes;
                let logical = s.stats.bytes_read.saturating_sub(s.stats.zero_bytes);
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
                }
            })
            .collect())
    }

    fn plan_restore(
        &self,
        repo: &Path,
        image: &str,
        target: &DiskView,
        options: &RestoreOptions,
    ) -> Result<PlanView, String> {
        let sector = self
            .disk(&target.dev)
            .map(|d| d.logical_sector_size)
            .unwrap_or(512);
        let p = self.plan(repo, image, target.size, sector, options)?;
        Ok(plan_view(&p))
    }

    fn plan_clone(
        &self,
        source: &DiskView,
        target: &DiskView,
        options: &RestoreOptions,
    ) -> Result<PlanView, String> {
        let src = self.disk(&source.dev)?;
        let dev = open_path(&src.path, Access::ReadOnly)
            .map_err(|e| format!("Could not open the source: {e}"))?;
        let planned = plan_backup(&dev, source_info(&src, &dev))
            .map_err(|e| format!("Could not read the source's layout: {e}"))?;
        let sector = self
            .disk(&target.dev)
            .map(|d| d.logical_sector_size)
            .unwrap_or(512);
        let p = plan_restore(
            &planned.preview_manifest("clone"),
            target.size,
            sector,
            &plan_options(options),
        )
        .map_err(|e| e.to_string())?;
        Ok(plan_view(&p))
    }

    fn start_backup(&self, req: BackupRequest, progress: Arc<dyn Progress>) -> JobHandle {
        let me = self.clone_handle();
        JobHandle::spawn(move |cancel| {
            let r = run_backup(&me, &req, &*progress, cancel);
            finish(
                &*progress,
                cancel,
                r,
                "No image was kept; the chunks already stored are reused by the next backup.",
            )
        })
    }

    fn start_restore(&self, req: RestoreRequest, progress: Arc<dyn Progress>) -> JobHandle {
        let me = self.clone_handle();
        JobHandle::spawn(move |cancel| {
            let r = run_restore(&me, &req, &*progress, cancel);
            finish(
                &*progress,
                cancel,
                r,
                "The target disk is incomplete and will not boot; restore onto it again.",
            )
        })
    }

    fn start_verify(&self, req: VerifyRequest, progress: Arc<dyn Progress>) -> JobHandle {
        JobHandle::spawn(move |cancel| {
            let r = run_verify(&req, Arc::clone(&progress), cancel);
            finish(&*progress, cancel, r, "The image was not changed.")
        })
    }

    fn start_clone(&self, req: CloneRequest, progress: Arc<dyn Progress>) -> JobHandle {
        let me = self.clone_handle();
        JobHandle::spawn(move |cancel| {
            let r = run_clone(&me, &req, &*progress, cancel);
            finish(
                &*progress,
                cancel,
                r,
                "The target disk is incomplete and will not boot; clone onto it again.",
            )
        })
    }

    fn hostname(&self) -> Option<String> {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty() && h != "localhost" && h != "(none)")
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

    fn power_off(&self) -> Result<(), String> {
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
            Err(format!("poweroff -f failed ({st})."))
        }
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;
    use crate::progress::NoProgress;

    /// Sets the cancel flag after the first chunk is read, as Ctrl-C + y does.
    struct CancelAfterFirst<'a>(&'a AtomicBool);
    impl Progress for CancelAfterFirst<'_> {
        fn report(&self, ev: ProgressEvent) {
            if matches!(ev, ProgressEvent::Advance { .. }) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn a_cancelled_backup_leaves_no_image_and_a_later_one_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::open_or_init(dir.path()).expect("repo");
        let mut data = vec![0u8; 32 << 20];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes()[7];
        }
        let dev = MemDevice::from_vec(data, 512);
        let plan = repo::BackupPlan::whole_device(SourceInfo {
            path: "mem".into(),
            model: None,
            serial: None,
            size: dev.size(),
            sector_size: 512,
        });
        let cancel = AtomicBool::new(false);
        let guarded = Cancellable {
            inner: &dev,
            cancel: &cancel,
        };
        let r = repo::backup(
            &repo,
            &guarded,
            &plan,
            &BackupOptions::new("img"),
            &CancelAfterFirst(&cancel),
        );
        let err = r.expect_err("the cancel must stop the backup");
        assert!(err.to_string().contains("cancelled"), "{err}");
        assert!(
            repo.image_names().expect("names").is_empty(),
            "no image kept"
        );
        let outcome = finish(&NoProgress, &cancel, Err(err.to_string()), "x");
        assert!(outcome.expect_err("cancelled").starts_with("Cancelled."));

        cancel.store(false, Ordering::SeqCst);
        let m = repo::backup(
            &repo,
            &guarded,
            &plan,
            &BackupOptions::new("img"),
            &NoProgress,
        )
        .expect("a backup after the cancel");
        assert_eq!(m.stats.bytes_read, 32 << 20);
        assert_eq!(repo.image_names().expect("names"), vec!["img".to_string()]);
    }

    #[test]
    fn restore_options_map_onto_the_planner() {
        let mut o = RestoreOptions {
            mode: LayoutMode::Keep,
            sizes: Vec::new(),
        };
        o.set_size(3, SizeChoice::Bytes(40 << 30));
        o.set_size(2, SizeChoice::Max);
        let p = plan_options(&o);
        assert_eq!(p.mode, plan::LayoutMode::Keep);
        assert_eq!(p.sizes.get(&3), Some(&SizeRequest::Bytes(40 << 30)));
        assert_eq!(p.sizes.get(&2), Some(&SizeRequest::Max));
    }
}
