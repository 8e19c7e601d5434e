//! One partition of a Clonezilla saveparts image, restored from the TUI onto a partition
//! as `ironclone restore DIR IMAGE --part sda1=/dev/sdb2` does (src/cli/restore_parts.rs):
//! the image decoded into a scratch file with every checksum checked, the filesystem
//! fitted there to the partition (`foreign::clonezilla::parts`), and only then, after a
//! last look at the disk's identity, written, read back and compared. No table is
//! written; the disk's other partitions are left as they are.
//! An LVM physical volume of the image (no image of its own, only its LVs') goes the
//! way `restore --part` takes it by default, `foreign::clonezilla::parts_pv`: laid out
//! anew at a larger or smaller partition's size (its root LV taking the difference),
//! at its saved size onto one of its size, every LV image checked first.
//!
//! The plan is made from the image's header alone (the filesystem, its size and the
//! used bytes it announces), so the plan screen comes at once; whether a shrink fits
//! is the resize tool's answer, known after the decode and before the first write.

use super::clonezilla::folder_and_disk;
use super::jobs::{scratch_dir, scratch_root, written_and_compared, Cancellable};
use super::RealServices;
use crate::device::{open_path, Access};
use crate::foreign::clonezilla::parts::{self, Fit};
use crate::foreign::clonezilla::parts_pv::plan_pv;
use crate::foreign::clonezilla::stream::PartStream;
use crate::foreign::clonezilla::{ClonezillaImage, PartImage, PartImageKind};
use crate::plan::LayoutMode;
use crate::progress::{Progress, ProgressEvent};
use crate::tui::model::{DiskView, JobReport, PlanAction, PlanRow, PlanView, RestoreRequest};
use crate::tui::services::ServiceError;
use crate::units::human_bytes;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// How a saved PV is fitted to its partition: the plan and the job must agree, and the
/// partition route has no layout choice, so the CLI's default.
const PV_LAYOUT: LayoutMode = LayoutMode::Proportional;

/// What a picker row (`NAME/PART`) names, the folder's image read once.
enum Saved<'a> {
    /// An LVM physical volume (no image of its own, only its LVs'): the folder and
    /// the partition.
    Pv(PathBuf, &'a str),
    /// A LUKS partition (its header file and its opened volume's image).
    Luks(PathBuf, &'a str),
    /// A partition image.
    Part(Box<ClonezillaImage>, PartImage),
}

fn saved<'a>(repo: &Path, image: &'a str) -> Result<Saved<'a>, ServiceError> {
    let (folder, Some(part)) = folder_and_disk(image) else {
        return Err(format!("{image} names no saved partition.").into());
    };
    let img = ClonezillaImage::open(&repo.join(folder))
        .map_err(|e| format!("The Clonezilla image {folder}: {e}"))?;
    if img.lvm.as_ref().is_some_and(|l| l.is_pv(part)) {
        return Ok(Saved::Pv(repo.join(folder), part));
    }
    if img.luks.iter().any(|v| v.part == part) {
        return Ok(Saved::Luks(repo.join(folder), part));
    }
    let p = img
        .partitions
        .iter()
        .find(|p| p.part == part)
        .cloned()
        .ok_or_else(|| format!("The Clonezilla image {folder} has no partition {part}."))?;
    if p.kind == PartImageKind::Swap {
        return Err(format!(
            "{part} is swap: Clonezilla saved no data for it (run mkswap on the target in the Shell)."
        )
        .into());
    }
    Ok(Saved::Part(Box::new(img), p))
}

/// Filesystems the fitting step grows and shrinks (`parts.rs`: resize2fs, ntfsresize,
/// btrfs); the others are kept at their size, and refused on a smaller partition.
fn resizable(fs: &str) -> bool {
    fs.starts_with("ext") || fs == "ntfs" || fs == "btrfs"
}

pub(super) fn plan(
    repo: &Path,
    image: &str,
    target: &DiskView,
    number: u32,
) -> Result<PlanView, ServiceError> {
    let part = target
        .partitions
        .iter()
        .find(|q| q.number == number)
        .ok_or_else(|| format!("{} has no partition {number} now.", target.dev))?;
    let p = match saved(repo, image)? {
        Saved::Pv(folder, pv) => return plan_pv_view(&folder, pv, target, number, part),
        Saved::Luks(folder, luks) => {
            return super::clonezilla_parts_luks::plan(&folder, luks, target, number, part)
        }
        Saved::Part(_, p) => p,
    };
    // Reads the image's header only: no decode happens here.
    let stream = PartStream::open(&p, u64::MAX)
        .map_err(|e| format!("The saved partition {}: {e}", p.part))?;
    let (fs, size) = (stream.filesystem().to_string(), stream.image_bytes());
    let used = stream.used_hint().unwrap_or(size);
    let mut notes = vec![format!(
        "Before the first byte is written, the image is decoded and every checksum checked \
         into a scratch file under {}, and the filesystem fitted there.",
        scratch_root().display()
    )];
    let (action, new_size) = if size == 0 {
        notes.push("A dd image: its size is known once decoded; it must fit the partition.".into());
        (PlanAction::Copy, part.size)
    } else if part.size == size {
        (PlanAction::Copy, size)
    } else if part.size > size && resizable(&fs) {
        (PlanAction::Grow, part.size)
    } else if part.size > size {
        notes.push(format!(
            "{fs} is not grown here: it keeps its {} and the rest of the partition stays unused.",
            human_bytes(size)
        ));
        (PlanAction::Copy, size)
    } else if resizable(&fs) {
        notes.push(format!(
            "Shrinking needs the used data ({}) to fit: {fs}'s own tool decides, before anything \
             is written.",
            human_bytes(used)
        ));
        (PlanAction::Shrink, part.size)
    } else {
        return Err(format!(
            "Partition {number} ({}) is smaller than the saved {fs} filesystem ({}), which \
             cannot be shrunk here. Pick a partition of at least {}.",
            human_bytes(part.size),
            human_bytes(size),
            human_bytes(size)
        )
        .into());
    };
    Ok(PlanView {
        table: "no".into(),
        target_size: part.size,
        rows: vec![PlanRow {
            number,
            fs,
            label: part.label.clone(),
            old_start: 0,
            old_size: size,
            new_start: 0,
            new_size,
            used,
            action,
        }],
        notes,
    })
}

/// The plan of a saved PV onto partition `number`: the PV at its saved size onto one
/// of its size, else laid out anew at the partition's size.
fn plan_pv_view(
    folder: &Path,
    pv: &str,
    target: &DiskView,
    number: u32,
    part: &crate::tui::model::PartView,
) -> Result<PlanView, ServiceError> {
    let what = format!("partition {number} of {}", target.dev);
    let root = scratch_dir()?;
    let planned =
        plan_pv(folder, pv, &what, part.size, PV_LAYOUT, &root).map_err(|e| e.to_string())?;
    let used: u64 = planned
        .src
        .manifest()
        .areas
        .iter()
        .flat_map(|a| a.extents.iter())
        .map(|e| e.len)
        .sum();
    let new_size = planned.new_bytes();
    let mut notes = vec![if new_size == planned.pv_bytes {
        format!(
            "The LVM physical volume of VG {} keeps its saved size; its logical volumes are \
             decoded at their extents and every checksum checked before the first byte is \
             written.",
            planned.vg
        )
    } else {
        format!(
            "The LVM physical volume of VG {} is laid out anew at {}; its logical volumes are \
             decoded, resized off the target and checked before the first byte is written.",
            planned.vg,
            human_bytes(new_size)
        )
    }];
    notes.extend(planned.relayout_notes());
    if new_size == planned.pv_bytes && part.size > planned.pv_bytes {
        notes.push(format!(
            "The {} after it stay outside the PV (pvresize adds them to the VG).",
            human_bytes(part.size - planned.pv_bytes)
        ));
    }
    Ok(PlanView {
        table: "no".into(),
        target_size: part.size,
        rows: vec![PlanRow {
            number,
            fs: "LVM2".into(),
            label: part.label.clone(),
            old_start: 0,
            old_size: planned.pv_bytes,
            new_start: 0,
            new_size,
            used,
            action: match new_size.cmp(&planned.pv_bytes) {
                std::cmp::Ordering::Less => PlanAction::Shrink,
                _ => PlanAction::Copy,
            },
        }],
        notes,
    })
}

/// Removes the scratch file however the job ends.
struct Scratch(PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(super) fn run(
    me: &RealServices,
    req: &RestoreRequest,
    number: u32,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<JobReport, ServiceError> {
    let (_, part) = target_partition(me, req, number, "the Clonezilla images")?;
    let (img, p) = match saved(&req.repo, &req.image)? {
        Saved::Pv(folder, pv) => return run_pv(me, req, &folder, pv, &part, progress, cancel),
        Saved::Luks(folder, luks) => {
            return super::clonezilla_parts_luks::run(
                me, req, &folder, luks, &part, progress, cancel,
            )
        }
        Saved::Part(img, p) => (*img, p),
    };
    progress.report(ProgressEvent::JobStart {
        job: format!("restore {} onto {}", req.image, part.path.display()),
        total_bytes: 0,
    });
    progress.report(ProgressEvent::PhaseStart {
        name: format!("check and unpack {}", p.part),
        total_bytes: 0,
    });
    img.verify_checksums()
        .map_err(|e| format!("The Clonezilla image {}: {e}", img.name))?;
    let root = scratch_dir()?;
    let scratch = Scratch(root.join(format!(
        "ironclone-tui-{}-{}-{}.img",
        std::process::id(),
        img.name,
        p.part
    )));
    let staged = parts::stage(&p, &scratch.0, &part.path, part.size_bytes)
        .map_err(|e| format!("{e}. Nothing was written."))?;
    progress.report(ProgressEvent::PhaseEnd {
        name: format!("check and unpack {}", p.part),
    });
    if cancel.load(Ordering::SeqCst) {
        return Err("stopped before writing".into());
    }
    // The last look before the first byte is written.
    me.recheck(&req.target_dev, &req.target_serial, req.target_size)?;
    progress.report(ProgressEvent::PhaseStart {
        name: "write and read back".into(),
        total_bytes: staged.used_bytes,
    });
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&part.path)
        .map_err(|e| format!("Could not open {} for writing: {e}", part.path.display()))?;
    let n = parts::write(&staged, &f, &part.path).map_err(|e| e.to_string())?;
    progress.report(ProgressEvent::PhaseEnd {
        name: "write and read back".into(),
    });
    let fit = match staged.fit {
        Fit::Same => "as saved".to_string(),
        Fit::Grown => format!("grown to {}", human_bytes(staged.fs_bytes)),
        Fit::Shrunk => format!("shrunk to {}", human_bytes(staged.fs_bytes)),
        Fit::Kept => format!("kept at {} (not grown here)", human_bytes(staged.fs_bytes)),
    };
    Ok(JobReport {
        summary: vec![
            format!(
                "Saved partition {} of Clonezilla image \"{}\" restored onto partition {number} \
                 ({}) of {}; no table was written.",
                p.part,
                img.name,
                part.path.display(),
                req.target_dev
            ),
            format!("Its {} filesystem: {fit}.", staged.filesystem),
            written_and_compared(n, n),
        ],
        boot_repairs: Vec::new(),
        warnings: Vec::new(),
    })
}

/// The disk of a partition restore, held to the whole-disk rules (`what` names what it
/// must not hold), and its partition `number` as it is now.
pub(super) fn target_partition(
    me: &RealServices,
    req: &RestoreRequest,
    number: u32,
    what: &str,
) -> Result<(crate::discover::Disk, crate::discover::Partition), ServiceError> {
    let disk = me.recheck(&req.target_dev, &req.target_serial, req.target_size)?;
    me.check_target(&disk, what, &req.repo)?;
    let part = disk
        .partitions
        .iter()
        .find(|p| p.number == number)
        .cloned()
        .ok_or_else(|| {
            format!(
                "{} has no partition {number} now. Nothing was written.",
                req.target_dev
            )
        })?;
    Ok((disk, part))
}

/// The moment between the checks and the first write: a cancel is honoured, the disk
/// is looked at again (the same model, serial and size as planned), and only then is
/// partition `part` opened for writing.
pub(super) fn open_for_write(
    me: &RealServices,
    req: &RestoreRequest,
    part: &crate::discover::Partition,
    cancel: &AtomicBool,
) -> Result<crate::device::FileDevice, ServiceError> {
    if cancel.load(Ordering::SeqCst) {
        return Err("stopped before writing".into());
    }
    me.recheck(&req.target_dev, &req.target_serial, req.target_size)?;
    open_path(&part.path, Access::ReadWrite).map_err(ServiceError::device(
        "Could not open the target partition for writing",
    ))
}

/// A saved PV onto `part`: planned, every LV image checked, the disk looked at again,
/// written and read back (`foreign::clonezilla::parts_pv`).
fn run_pv(
    me: &RealServices,
    req: &RestoreRequest,
    folder: &Path,
    pv: &str,
    part: &crate::discover::Partition,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<JobReport, ServiceError> {
    let root = scratch_dir()?;
    let what = part.path.display().to_string();
    let planned =
        plan_pv(folder, pv, &what, part.size_bytes, PV_LAYOUT, &root).map_err(|e| e.to_string())?;
    progress.report(ProgressEvent::JobStart {
        job: format!("restore {} onto {what}", req.image),
        total_bytes: 0,
    });
    let (lvs, _) = planned
        .check(progress)
        .map_err(|e| format!("{e}. Nothing was written."))?;
    let dev = open_for_write(me, req, part, cancel)?;
    let guarded = Cancellable {
        inner: &dev,
        cancel,
    };
    let n = planned
        .write(&guarded, &part.path, &root, progress)
        .map_err(|e| e.to_string())?;
    Ok(JobReport {
        summary: vec![
            format!(
                "LVM physical volume {pv} (VG {}) of Clonezilla image \"{}\" restored onto \
                 partition {} ({what}) of {}; no table was written.",
                planned.vg, req.image, part.number, req.target_dev
            ),
            format!("Its logical volumes: {}.", lvs.join(", ")),
            written_and_compared(n, n),
        ],
        boot_repairs: Vec::new(),
        warnings: Vec::new(),
    })
}
