//! The jobs behind the screens: backup, restore, verify and clone on job threads,
//! cancellable through a device wrapper, each ending in a `JobReport`.

use super::*;
pub(super) use crate::device::Cancellable;

/// Ends a job: `JobEnd` for the progress screen, and a cancel named as such.
pub(super) fn finish(
    progress: &dyn Progress,
    cancel: &AtomicBool,
    r: Result<JobReport, ServiceError>,
    what: &str,
) -> JobOutcome {
    progress.report(ProgressEvent::JobEnd { ok: r.is_ok() });
    match r {
        Err(_) if cancel.load(Ordering::SeqCst) => Err(ServiceError::Cancelled(what.into())),
        other => other,
    }
}

pub(super) fn run_backup(
    me: &RealServices,
    req: &BackupRequest,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<JobReport, ServiceError> {
    let disk = source_disk(me, &req.source_dev, &req.source_serial)?;
    let disks = discover::list_disks(&me.paths)?;
    if let Ok(Some(h)) = disk_holding_path(&me.paths, &disks, &req.repo) {
        if h.path == disk.path {
            return Err(format!(
                "The repository {} is on the disk being backed up ({}); store the image on another disk.",
                req.repo.display(),
                disk.describe()
            ).into());
        }
    }
    let dev = open_path(&disk.path, Access::ReadOnly)
        .map_err(ServiceError::device("Could not open the source"))?;
    let source = SourceInfo {
        path: disk.path.display().to_string(),
        model: disk.model.clone(),
        serial: disk.serial.clone(),
        size: dev.size(),
        sector_size: dev.logical_sector_size(),
    };
    let planned = plan_backup(&dev, source)
        .map_err(ServiceError::imaging("Could not read the source's layout"))?;
    for w in &planned.warnings {
        progress.report(ProgressEvent::Warning { message: w.clone() });
    }
    // A remote store is asked whether it holds a repository (an encrypted one must be
    // opened with its session passphrase, not initialised).
    let exists = match crate::repo::storage::parse_location(&req.repo) {
        Ok(crate::repo::storage::Location::Local(_)) => req.repo.join("config").exists(),
        _ => Repository::exists(&req.repo).unwrap_or(false),
    };
    let opened = match (exists, &req.encrypt) {
        (true, _) => super::open_repository(&me.unlocked, &req.repo),
        (false, None) => Repository::open_or_init(&req.repo),
        // The key slot's Argon2id runs beside the backup; the slot and the config are
        // written before the first pack is published (repo/keys_deferred.rs).
        (false, Some(p)) => Repository::init_encrypted_deferred(
            &req.repo,
            crate::repo::DEFAULT_CHUNK_SIZE,
            crate::repo::DEFAULT_PACK_SIZE,
            p.secret_bytes(),
        ),
    };
    let repo = opened.map_err(ServiceError::repo(format!(
        "Could not open the repository {}",
        req.repo.display()
    )))?;
    if let (false, Some(p)) = (exists, &req.encrypt) {
        // Unlocked for the rest of the session, as if its passphrase had been typed
        // on the unlock screen: the verify that follows, and a restore, open it.
        me.unlocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(req.repo.clone(), p.clone());
    }
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
    )?;
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

pub(super) fn run_restore(
    me: &RealServices,
    req: &RestoreRequest,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<JobReport, ServiceError> {
    if let Some(n) = req.target_part {
        if super::clonezilla::is_image(&req.repo, &req.image) {
            return super::clonezilla_parts::run(me, req, n, progress, cancel);
        }
        return super::native_part::run(me, req, n, progress, cancel);
    }
    if super::clonezilla::is_image(&req.repo, &req.image) {
        return super::clonezilla::run_restore(me, req, progress, cancel);
    }
    let target = me.recheck(&req.target_dev, &req.target_serial, req.target_size)?;
    me.check_target(&target, "the image repository", &req.repo)?;
    let repo = super::open_repository(&me.unlocked, &req.repo)?;
    let dev = open_path(&target.path, Access::ReadWrite).map_err(ServiceError::device(
        "Could not open the target for writing",
    ))?;
    let plan = super::disks::plan_native(
        &repo,
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
        &restore_options(req, true),
        progress,
    )?;
    Ok(JobReport {
        summary: vec![
            format!(
                "Image \"{}\" restored onto {} ({}).",
                rep.image,
                req.target_dev,
                model_of(&target)
            ),
            written_and_compared(rep.bytes_written, rep.bytes_verified),
        ],
        boot_repairs: rep.steps,
        warnings: Vec::new(),
    })
}

/// A native restore's options: NVRAM and the fallback loader only onto a whole disk
/// (a partition has neither an NVRAM entry's disk nor an ESP of its own).
pub(super) fn restore_options(req: &RestoreRequest, whole_disk: bool) -> DiskRestoreOptions {
    DiskRestoreOptions {
        new_ids: false,
        verify_after: true,
        repair: true,
        nvram: whole_disk,
        fallback: whole_disk,
        // A remote repository has no local tmp/ to lend (as in the CLI's restore).
        scratch_dir: match crate::repo::storage::parse_location(&req.repo) {
            Ok(crate::repo::storage::Location::Local(_)) => req.repo.join("tmp"),
            _ => std::env::temp_dir(),
        },
        target_is_zeroed: false,
        // The passphrase the picker checked against the image's header.
        luks_key: req
            .luks_key
            .as_ref()
            .map(|p| std::sync::Arc::new(p.luks_key())),
    }
}

pub(super) fn run_verify(
    req: &VerifyRequest,
    progress: Arc<dyn Progress>,
    cancel: &AtomicBool,
    unlocked: super::Unlocked,
) -> Result<JobReport, ServiceError> {
    if super::clonezilla::is_image(&req.repo, &req.image) {
        return super::clonezilla::run_verify(req, progress, cancel);
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let (path, image) = (req.repo.clone(), req.image.clone());
    // The verifier has no cancel hook; it only reads, so a cancelled one is left to
    // finish on its own while the user moves on.
    std::thread::spawn(move || {
        let r = super::open_repository(&unlocked, &path)
            .and_then(|r| repo::verify(&r, Some(&image), &*progress))
            .map_err(ServiceError::from);
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
        return Err(format!("The image is damaged: {}", lines.join("; ")).into());
    }
    Ok(JobReport {
        summary: vec![format!(
            "Image \"{}\": every chunk read back and its checksum matches ({}).",
            req.image,
            crate::units::count(rep.chunks_checked, "chunk", "chunks")
        )],
        ..Default::default()
    })
}

/// Where a clone keeps its temporary repository: `IRONCLONE_SCRATCH`, else
/// /var/tmp/ironclone.
pub(super) fn scratch_root() -> PathBuf {
    std::env::var_os("IRONCLONE_SCRATCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/ironclone"))
}

/// The scratch folder, made when missing.
pub(super) fn scratch_dir() -> Result<PathBuf, ServiceError> {
    let root = scratch_root();
    std::fs::create_dir_all(&root)
        .map_err(|e| format!("Could not make the scratch folder {}: {e}", root.display()))?;
    Ok(root)
}

/// Removes a clone's temporary repository however the clone ends.
pub(super) struct TempRepo(PathBuf);
impl Drop for TempRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A clone is a backup into a temporary repository followed by a restore from it:
/// the same planner, resize and boot repair as a restore, and the same checks.
pub(super) fn run_clone(
    me: &RealServices,
    req: &CloneRequest,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<JobReport, ServiceError> {
    let src = source_disk(me, &req.source_dev, &req.source_serial)?;
    let target = me.recheck(&req.target_dev, &req.target_serial, req.target_size)?;
    if target.path == src.path {
        return Err("The target is the source disk.".into());
    }
    let root = scratch_dir()?;
    me.check_target(&target, "the clone's scratch folder", &root)?;
    let dev = open_path(&src.path, Access::ReadOnly)
        .map_err(ServiceError::device("Could not open the source"))?;
    let planned = plan_backup(&dev, source_info(&src, &dev))
        .map_err(ServiceError::imaging("Could not read the source's layout"))?;
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
        ).into());
    }
    for w in &planned.warnings {
        progress.report(ProgressEvent::Warning { message: w.clone() });
    }
    let tmp = TempRepo(root.join(format!("clone-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&tmp.0);
    let repo = Repository::open_or_init(&tmp.0)?;
    let m = repo::backup(
        &repo,
        &Cancellable {
            inner: &dev,
            cancel,
        },
        &planned.plan,
        &BackupOptions::new("clone"),
        progress,
    )?;
    let out = open_path(&target.path, Access::ReadWrite).map_err(ServiceError::device(
        "Could not open the target for writing",
    ))?;
    let plan = plan_restore(
        &m,
        out.size(),
        out.logical_sector_size(),
        &plan_options(&req.options),
    )?;
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
            fallback: true,
            scratch_dir: tmp.0.join("tmp"),
            target_is_zeroed: false,
            luks_key: None,
        },
        progress,
    )?;
    Ok(JobReport {
        summary: vec![
            format!(
                "{} ({}) cloned onto {} ({}).",
                req.source_dev,
                model_of(&src),
                req.target_dev,
                model_of(&target)
            ),
            written_and_compared(rep.bytes_written, rep.bytes_verified),
        ],
        boot_repairs: rep.steps,
        warnings: planned.warnings,
    })
}

pub(super) fn source_info(d: &Disk, dev: &dyn BlockDevice) -> SourceInfo {
    SourceInfo {
        path: d.path.display().to_string(),
        model: d.model.clone(),
        serial: d.serial.clone(),
        size: dev.size(),
        sector_size: dev.logical_sector_size(),
    }
}

/// The chosen source, still the disk the user picked (names move on hotplug).
pub(super) fn source_disk(
    me: &RealServices,
    dev: &str,
    serial: &str,
) -> Result<Disk, ServiceError> {
    let disk = me.disk(dev)?;
    if disk.serial.clone().unwrap_or_default().trim() != serial.trim() {
        return Err(format!(
            "{dev} is now {}, not the disk you chose. Nothing was read.",
            disk.describe()
        )
        .into());
    }
    Ok(disk)
}

/// The restore and clone summaries' second line.
pub(super) fn written_and_compared(written: u64, verified: u64) -> String {
    format!(
        "{} written, {} read back and compared.",
        human_bytes(written),
        human_bytes(verified)
    )
}
