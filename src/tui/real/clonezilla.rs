//! Clonezilla image folders (Clonezilla's /home/partimag) in the folder the user opened
//! as a repository, listed beside ironclone's images through the same reader as
//! `ironclone images DIR`. Folders that do not open are left out of the picker; the
//! CLI's listing names why. A Clonezilla image is planned and restored through the
//! library's `clonezilla::restore` (what the CLI's restore of a folder uses), with
//! the same target checks, confirmation, progress and result as an ironclone image.
//! An image of several disks is one row per disk (`NAME/DISK`), each restored alone.

use super::disks::{model_of, plan_options};
use super::jobs::{written_and_compared, Cancellable};
use super::RealServices;
use crate::device::{open_path, Access, BlockDevice};
use crate::foreign::clonezilla::restore::{ClonezillaRestore, RestoreError, Route};
use crate::foreign::clonezilla::{self, ClonezillaImage, PartImageKind};
use crate::imaging::{plan_restore, DiskRestoreOptions, DiskRestorePlan};
use crate::progress::{Progress, ProgressEvent};
use crate::tui::model::{ImageView, JobReport, RestoreOptions, RestoreRequest, VerifyRequest};
use crate::tui::services::ServiceError;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The picker's rows for one image folder: one row, or one per disk of a savedisk
/// image of several disks (`NAME/DISK`, restored as `restore --disk DISK` is; a
/// restore writes one disk at a time, as the CLI's `images` lists them).
fn views(img: &ClonezillaImage) -> Vec<ImageView> {
    let row = |name: String, what: String, size: u64| ImageView {
        name,
        date: img.created.clone().unwrap_or_default(),
        source_model: format!("clonezilla: {what}"),
        source_serial: String::new(),
        source_size: size,
        stored_bytes: img.stored_bytes,
        data_bytes: img.stored_bytes,
        dedup_ratio: 1.0,
        clonezilla: true,
        partition: None,
        // A LUKS partition saved opened: restored with the key its header accepts.
        table_less: false,
        needs_luks_key: !img.luks.is_empty(),
    };
    if img.is_saveparts() {
        // No disk was saved: each partition (an LVM PV too) restores onto a partition
        // of its own (clonezilla_parts.rs), one row each, in the order saved.
        let pv_of = |part: &str| {
            img.lvm
                .as_ref()
                .and_then(|l| l.pvs.iter().find(|p| p.dev == part))
                .map(|p| p.vg.clone())
        };
        let luks_of = |part: &str| img.luks.iter().find(|v| v.part == part);
        return img
            .parts
            .iter()
            .filter_map(|part| {
                if let Some(v) = luks_of(part) {
                    // Restored with the key its saved header accepts (clonezilla_parts_luks.rs).
                    return Some(ImageView {
                        partition: Some(part.clone()),
                        table_less: false,
                        needs_luks_key: true,
                        ..row(
                            format!("{}/{part}", img.name),
                            format!("{part} (LUKS, {} inside)", v.inner_kind()),
                            0,
                        )
                    });
                }
                let what = match (pv_of(part), img.partitions.iter().find(|p| &p.part == part)) {
                    (Some(vg), _) => format!("{part} (LVM PV of {vg})"),
                    (None, Some(p)) => match &p.kind {
                        PartImageKind::Partclone { fs } => format!("{part} ({fs})"),
                        PartImageKind::Ntfsclone => format!("{part} (ntfs)"),
                        PartImageKind::Dd => format!("{part} (dd)"),
                        PartImageKind::Swap => return None,
                    },
                    (None, None) => return None,
                };
                // The filesystem's size is in the image's header, read when a target
                // is planned: listing does not open every image.
                Some(ImageView {
                    partition: Some(part.clone()),
                    table_less: false,
                    needs_luks_key: false,
                    ..row(format!("{}/{part}", img.name), what, 0)
                })
            })
            .collect();
    }
    match img.layouts.as_slice() {
        [_, _, ..] => img
            .layouts
            .iter()
            .enumerate()
            .map(|(i, l)| {
                row(
                    format!("{}/{}", img.name, l.disk),
                    format!("{}, disk {} of {}", l.disk, i + 1, img.layouts.len()),
                    l.disk_bytes().unwrap_or(0),
                )
            })
            .collect(),
        _ => {
            let disks = match img.disks.is_empty() {
                true => img.parts.join(" "),
                false => img.disks.join(" "),
            };
            vec![row(img.name.clone(), disks, img.disk_bytes().unwrap_or(0))]
        }
    }
}

/// A picker row's image as the folder's name and, for one disk of several, the disk
/// (for one partition of a saveparts image, the partition).
pub(super) fn folder_and_disk(image: &str) -> (&str, Option<&str>) {
    match image.split_once('/') {
        Some((folder, disk)) => (folder, Some(disk)),
        None => (image, None),
    }
}

/// The Clonezilla images directly under `dir` (none when it holds none or is unreadable).
pub(super) fn images(dir: &Path) -> Vec<ImageView> {
    if !dir.is_dir() {
        return Vec::new();
    }
    clonezilla::list(dir)
        .map(|l| {
            l.iter()
                .filter_map(|(_, r)| r.as_ref().ok())
                .flat_map(views)
                .collect()
        })
        .unwrap_or_default()
}

/// True when `image` in the folder `repo` is a Clonezilla image folder (the folder is
/// then no ironclone repository).
pub(super) fn is_image(repo: &Path, image: &str) -> bool {
    clonezilla::names_image(repo, folder_and_disk(image).0)
}

/// Opens and plans `repo/image` (a picker row: `NAME` or `NAME/DISK`) as a restore
/// source. Reading its layout decodes the start of each partition image (the
/// filesystems' metadata).
fn open(repo: &Path, image: &str) -> Result<ClonezillaRestore, ServiceError> {
    let scratch = super::jobs::scratch_root();
    std::fs::create_dir_all(&scratch).map_err(|e| {
        format!(
            "Could not make the scratch folder {} (set IRONCLONE_SCRATCH to another): {e}",
            scratch.display()
        )
    })?;
    let (folder, disk) = folder_and_disk(image);
    ClonezillaRestore::open(&repo.join(folder), disk, &scratch).map_err(|e| from_restore(image, e))
}

/// A Clonezilla restore's error as the TUI shows it: a disk's or the restore's own
/// error stays typed (the screen's advice depends on it); the image's are worded.
fn from_restore(image: &str, e: RestoreError) -> ServiceError {
    match e {
        RestoreError::Imaging(source) => ServiceError::from(*source),
        other => format!("The Clonezilla image {image}: {other}").into(),
    }
}

/// The restore plan of the Clonezilla image `image` onto a disk of this size.
pub(super) fn plan(
    repo: &Path,
    image: &str,
    target_size: u64,
    target_sector: u32,
    options: &RestoreOptions,
) -> Result<DiskRestorePlan, ServiceError> {
    let src = open(repo, image)?;
    plan_restore(
        src.manifest(),
        target_size,
        target_sector,
        &plan_options(options),
    )
    .map_err(ServiceError::from)
}

/// Restores a Clonezilla image as `run_restore` does an ironclone one: the same target
/// checks, and the whole image checked before the target's identity is looked at a
/// last time and the first byte written.
pub(super) fn run_restore(
    me: &RealServices,
    req: &RestoreRequest,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<JobReport, ServiceError> {
    let target = me.recheck(&req.target_dev, &req.target_serial, req.target_size)?;
    me.check_target(&target, "the Clonezilla images", &req.repo)?;
    let src = open(&req.repo, &req.image)?;
    let dev = open_path(&target.path, Access::ReadWrite).map_err(ServiceError::device(
        "Could not open the target for writing",
    ))?;
    let plan = plan_restore(
        src.manifest(),
        dev.size(),
        dev.logical_sector_size(),
        &plan_options(&req.options),
    )?;
    for w in src.warnings() {
        progress.report(ProgressEvent::Warning { message: w.clone() });
    }
    let opts = DiskRestoreOptions {
        new_ids: false,
        verify_after: true,
        repair: true,
        nvram: true,
        fallback: true,
        scratch_dir: super::jobs::scratch_root(),
        target_is_zeroed: false,
        // The passphrase the picker checked against the image's header.
        luks_key: req
            .luks_key
            .as_ref()
            .map(|p| std::sync::Arc::new(p.luks_key())),
    };
    // The check is the long part before any write; a cancel during it stops the job
    // at the first write, with the target untouched.
    progress.report(ProgressEvent::JobStart {
        job: format!("restore {}", req.image),
        total_bytes: 0,
    });
    src.check(progress)
        .map_err(|e| from_restore(&req.image, e))?;
    if cancel.load(Ordering::SeqCst) {
        return Err("stopped before writing".into());
    }
    // The last look before the first byte is written.
    me.recheck(&req.target_dev, &req.target_serial, req.target_size)?;
    let guarded = Cancellable {
        inner: &dev,
        cancel,
    };
    let (rep, route) = src
        .restore(&plan, &guarded, &target.path, &opts, true, progress)
        .map_err(|e| from_restore(&req.image, e))?;
    let mut summary = vec![
        format!(
            "Clonezilla image \"{}\" restored onto {} ({}).",
            req.image,
            req.target_dev,
            model_of(&target)
        ),
        written_and_compared(rep.bytes_written, rep.bytes_verified),
    ];
    if let Route::TempRepository(why) = route {
        summary.push(format!("{why}: restored through a temporary repository."));
    }
    Ok(JobReport {
        summary,
        boot_repairs: rep.steps,
        warnings: Vec::new(),
    })
}

/// Verifies the folder of the picker's row `req.image` whole (every disk and partition
/// of it): its checksum lists and every image decoded with every checksum it carries,
/// nothing written (`clonezilla::verify`).
pub(super) fn run_verify(
    req: &VerifyRequest,
    progress: Arc<dyn Progress>,
    cancel: &AtomicBool,
) -> Result<JobReport, ServiceError> {
    let name = folder_and_disk(&req.image).0;
    let img = ClonezillaImage::open(&req.repo.join(name))
        .map_err(|e| ServiceError::Plain(format!("Clonezilla image \"{name}\": {e}")))?;
    progress.report(ProgressEvent::JobStart {
        job: format!("verify {name}"),
        total_bytes: 0,
    });
    let done = clonezilla::verify::verify(&img, &*progress, cancel).map_err(|e| match e {
        // Esc, then yes: not damage.
        clonezilla::assemble::AssembleError::Cancelled { .. } => "stopped".into(),
        e => ServiceError::Plain(format!(
            "Clonezilla image \"{name}\" is damaged; restoring it would stop there: {e}"
        )),
    })?;
    let sums = img.checksums.len();
    Ok(JobReport {
        summary: vec![format!(
            "Clonezilla image \"{name}\": {} decoded whole, every checksum they carry matches{}.",
            crate::units::count(done.len() as u64, "image", "images"),
            match sums {
                0 => " (the folder has no MD5SUMS, SHA1SUMS or B2SUMS)".to_string(),
                n => format!(", and the folder's {n} checksum list(s)"),
            }
        )],
        ..Default::default()
    })
}
