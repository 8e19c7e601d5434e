//! A native image without a partition table (a filesystem or LUKS partition backed up
//! alone) restored from the TUI into a partition, as `ironclone restore REPO NAME
//! /dev/sdb3` does: planned onto the partition's size, the disk held to the whole-disk
//! rules and looked at again (identity, and the partition's place) just before the
//! first write, written and read back, then the filesystem's record of where its
//! partition starts set to this one (`imaging::repair_partition_start`). No table is
//! written; the disk's other partitions are left as they are.

use super::clonezilla_parts::{open_for_write, target_partition};
use super::disks::partition_plan_view;
use super::jobs::{restore_options, written_and_compared, Cancellable};
use super::RealServices;
use crate::imaging::{repair_partition_start, restore_disk, DiskRestorePlan};
use crate::progress::Progress;
use crate::tui::model::{DiskView, JobReport, PlanView, RestoreOptions, RestoreRequest};
use crate::tui::services::ServiceError;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Refuses a plan that would write a partition table into a partition.
fn table_less(plan: &DiskRestorePlan, image: &str) -> Result<(), ServiceError> {
    match &plan.target_layout {
        None => Ok(()),
        Some(l) => Err(format!(
            "The image {image} holds a partition table ({}); it restores onto a whole disk, \
             not into a partition.",
            l.kind.name()
        )
        .into()),
    }
}

pub(super) fn plan(
    me: &RealServices,
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
    let sector = me
        .disk(&target.dev)
        .map(|d| d.logical_sector_size)
        .unwrap_or(512);
    let p = me.plan(repo, image, part.size, sector, &RestoreOptions::default())?;
    table_less(&p, image)?;
    Ok(partition_plan_view(
        &p,
        number,
        part.size,
        format!(
            "Written into partition {number} of {}; its table and its other partitions are \
             kept, and the filesystem is told where its partition now starts.",
            target.dev
        ),
    ))
}

pub(super) fn run(
    me: &RealServices,
    req: &RestoreRequest,
    number: u32,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<JobReport, ServiceError> {
    let (disk, part) = target_partition(me, req, number, "the image repository")?;
    let repo = super::open_repository(&me.unlocked, &req.repo)?;
    let sector = disk.logical_sector_size;
    let plan = me.plan(
        &req.repo,
        &req.image,
        part.size_bytes,
        sector,
        &RestoreOptions::default(),
    )?;
    table_less(&plan, &req.image)?;
    let dev = open_for_write(me, req, &part, cancel)?;
    let guarded = Cancellable {
        inner: &dev,
        cancel,
    };
    let rep = restore_disk(
        &repo,
        &plan,
        &guarded,
        &part.path,
        &restore_options(req, false),
        progress,
    )?;
    let mut repairs = rep.steps;
    repairs.extend(repair_partition_start(&plan, &dev, part.start_bytes)?);
    Ok(JobReport {
        summary: vec![
            format!(
                "Image \"{}\" restored into partition {number} ({}) of {}; no table was \
                 written.",
                rep.image,
                part.path.display(),
                req.target_dev
            ),
            written_and_compared(rep.bytes_written, rep.bytes_verified),
        ],
        boot_repairs: repairs,
        warnings: Vec::new(),
    })
}
