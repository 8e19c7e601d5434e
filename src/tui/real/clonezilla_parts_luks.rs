//! A LUKS partition of a Clonezilla saveparts image, restored from the TUI onto a
//! partition as `ironclone restore DIR IMAGE --part sda3=/dev/sdb3 --unlock` does
//! (src/cli/restore_parts_luks.rs), through `foreign::clonezilla::parts_luks`: the
//! partition read as a table-less disk and planned onto the target partition, the
//! inner image decoded to its end with every checksum checked, the disk looked at
//! again, then the same header written back (UUID, key slots), the volume opened with
//! the key (tested on the saved header on the LUKS screen, before the plan) and the
//! plaintext written through it, its filesystem fitted, all of it read back.

use super::disks::partition_plan_view;
use super::jobs::{scratch_dir, written_and_compared, Cancellable};
use super::RealServices;
use crate::foreign::clonezilla::parts_luks::{plan_luks, PlannedLuks};
use crate::plan::LayoutMode;
use crate::progress::{Progress, ProgressEvent};
use crate::tui::model::{DiskView, JobReport, PartView, PlanView, RestoreRequest};
use crate::tui::services::ServiceError;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The partition route has no layout choice: the CLI's default.
const LAYOUT: LayoutMode = LayoutMode::Proportional;

fn planned(
    folder: &Path,
    part: &str,
    what: &str,
    bytes: u64,
) -> Result<(PlannedLuks, PathBuf), ServiceError> {
    let root = scratch_dir()?;
    let p = plan_luks(folder, part, what, bytes, LAYOUT, &root).map_err(|e| e.to_string())?;
    Ok((p, root))
}

/// The plan onto partition `number` of `target`: the partition alone, as a disk.
pub(super) fn plan(
    folder: &Path,
    part: &str,
    target: &DiskView,
    number: u32,
    onto: &PartView,
) -> Result<PlanView, ServiceError> {
    let what = format!("partition {number} of {}", target.dev);
    let (p, _) = planned(folder, part, &what, onto.size)?;
    Ok(partition_plan_view(
        &p.plan,
        number,
        onto.size,
        format!(
            "{part} is LUKS: its header goes back as saved (same UUID and key slots), the \
             volume is opened with the passphrase just tested, and its filesystem is written \
             through it. The inner image is decoded and every checksum checked first."
        ),
    ))
}

pub(super) fn run(
    me: &RealServices,
    req: &RestoreRequest,
    folder: &Path,
    part_name: &str,
    part: &crate::discover::Partition,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<JobReport, ServiceError> {
    let key = req.luks_key.as_ref().ok_or_else(|| {
        format!("{part_name} is a LUKS partition: its passphrase is needed. Nothing was written.")
    })?;
    let what = part.path.display().to_string();
    let (planned, root) = planned(folder, part_name, &what, part.size_bytes)?;
    progress.report(ProgressEvent::JobStart {
        job: format!("restore {} onto {what}", req.image),
        total_bytes: 0,
    });
    let (images, _) = planned
        .check(progress)
        .map_err(|e| format!("{e}. Nothing was written."))?;
    let dev = super::clonezilla_parts::open_for_write(me, req, part, cancel)?;
    let guarded = Cancellable {
        inner: &dev,
        cancel,
    };
    let (n, steps) = planned
        .write(
            &guarded,
            &part.path,
            &root,
            Arc::new(key.luks_key()),
            progress,
        )
        .map_err(|e| e.to_string())?;
    Ok(JobReport {
        summary: vec![
            format!(
                "LUKS partition {part_name} of Clonezilla image \"{}\" restored onto partition \
                 {} ({what}) of {}; no table was written.",
                req.image, part.number, req.target_dev
            ),
            format!("Inside: {}.", images.join(", ")),
            written_and_compared(n, n),
        ],
        boot_repairs: steps,
        warnings: Vec::new(),
    })
}
