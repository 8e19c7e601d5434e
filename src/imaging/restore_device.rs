//! Restoring from a block device that holds the image's disk as it was, such as a
//! Clonezilla image rebuilt (and so fully checked) in a sparse scratch file: the same
//! plan, shrinks, table, grown filesystems, boot repair and read-back as a restore from
//! a repository (restore_disk.rs), but the bytes are copied along the plan's used
//! extents instead of decoded from packs, so no repository is written and read back.
//!
//! Partitions that are rebuilt rather than copied (a re-created ESP or XFS, an LVM PV
//! laid out anew, LUKS) take the repository path: `unsupported` says so beforehand.

use super::device_copy::copy_places;
use super::luks_restore::is_luks_header;
use super::plan_restore::DiskRestorePlan;
use super::repair::repair_boot;
use super::restore_disk::{check_target_size, finish_layout, part_name, shrink_staged};
use super::staged::Staged;
use super::{DiskRestoreOptions, DiskRestoreReport, ImagingError};
use crate::device::{open_path, Access, BlockDevice};
use crate::progress::Progress;
use crate::repo::{AreaManifest, Manifest};
use std::collections::HashMap;
use std::path::Path;

/// Why `plan` cannot be restored from a device (a step needs the repository), if so.
pub fn unsupported(plan: &DiskRestorePlan, new_ids: bool) -> Option<String> {
    plan.parts.iter().find_map(|p| {
        let why = if p.recreate {
            "is re-created"
        } else if super::plan_lvm::relaid(p, new_ids) {
            "is an LVM PV laid out anew"
        } else if p.meta.luks.is_some() || is_luks_header(p) {
            "is LUKS"
        } else {
            return None;
        };
        Some(format!("{} {why}", part_name(p)))
    })
}

/// Restores the disk held by `src` (laid out as the image `m` describes) onto `target`
/// following `plan`. Whatever can fail for lack of room (a shrink) fails before the
/// target's first write.
pub fn restore_disk_from_device(
    src: &dyn BlockDevice,
    m: &Manifest,
    plan: &DiskRestorePlan,
    target: &dyn BlockDevice,
    target_path: &Path,
    opts: &DiskRestoreOptions,
    progress: &dyn Progress,
) -> Result<DiskRestoreReport, ImagingError> {
    let mut report = DiskRestoreReport {
        image: plan.image.clone(),
        ..Default::default()
    };
    check_target_size(plan, target)?;
    if let Some(why) = unsupported(plan, opts.new_ids) {
        return Err(ImagingError::Other(format!(
            "{why}: this restore needs a repository"
        )));
    }
    let area = |name: &str| {
        m.areas
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| ImagingError::Meta {
                image: m.name.clone(),
                area: name.to_string(),
                what: "in the plan but not in the image".into(),
            })
    };
    // 1. Shrinks, staged off the target: the only step that can find the data does
    //    not fit.
    let mut staged: HashMap<String, Staged> = HashMap::new();
    for p in plan.parts.iter().filter(|p| p.shrinks()) {
        let number = p.meta.partition.as_ref().map_or(0, |q| q.number);
        let fs = p.kind.to_string();
        if !crate::resize::can_shrink(p.kind) {
            return Err(ImagingError::Other(format!(
                "partition {number}: {fs} cannot be shrunk"
            )));
        }
        let s = Staged::create(
            &opts.scratch_dir,
            &format!("ironclone-shrink-{}-{}.img", std::process::id(), p.area),
            p.old_size,
        )?;
        {
            // A new sparse file: zeros need not be written, nor read back here (the
            // restore reads back the target).
            let out = open_path(&s.path, Access::ReadWrite)?;
            copy_places(src, &[(area(&p.area)?, 0)], &out, true, false, progress)?;
        }
        let s = shrink_staged(s, p, number, &fs)?;
        report.steps.extend(s.rebuilt.clone());
        report.steps.push(format!(
            "partition {number}: {fs} shrunk from {} to {} bytes (staged in {})",
            p.old_size,
            p.new_size,
            opts.scratch_dir.display()
        ));
        staged.insert(p.area.clone(), s);
    }

    // 2. Everything else copied in place, then read back.
    let mut places: Vec<(&AreaManifest, u64)> = Vec::new();
    if plan.target_layout.is_some() {
        if let Some(head) = m.areas.iter().find(|a| a.name == super::meta::HEAD_AREA) {
            places.push((head, 0));
        }
    }
    for p in plan.parts.iter().filter(|p| !staged.contains_key(&p.area)) {
        places.push((area(&p.area)?, p.new_offset));
    }
    // The source is read once: the read-back compares with the bytes written (a
    // Clonezilla source would decode its images again for a second read).
    let copied = copy_places(
        src,
        &places,
        target,
        opts.target_is_zeroed,
        opts.verify_after,
        progress,
    )?;
    report.bytes_written += copied.written;
    report.bytes_verified += copied.verified;
    target.flush()?;

    // 3-6. Table, staged filesystems, ext tails, grown filesystems.
    let written_layout = finish_layout(
        plan,
        &staged,
        target,
        target_path,
        opts,
        progress,
        &mut report,
    )?;
    // 7. Boot repair.
    if let Some(ro) = opts.repair_options() {
        let lines = repair_boot(plan, written_layout.as_ref(), target, target_path, &ro)?;
        report.steps.extend(lines);
    }
    target.flush()?;
    Ok(report)
}
