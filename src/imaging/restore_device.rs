//! Restoring from a block device that holds the image's disk as it was, such as a
//! Clonezilla image rebuilt (and so fully checked) in a sparse scratch file: the same
//! plan, shrinks, table, grown filesystems, boot repair and read-back as a restore from
//! a repository (restore_disk.rs), but the bytes are copied along the plan's used
//! extents instead of decoded from packs, so no repository is written and read back.
//!
//! Partitions that are rebuilt rather than copied (a re-created ESP or XFS, an LVM PV
//! laid out anew, LUKS) take the repository path: `unsupported` says so beforehand.

use super::luks_restore::is_luks_header;
use super::plan_restore::DiskRestorePlan;
use super::repair::repair_boot;
use super::restore_disk::{check_target_size, finish_layout, part_name, shrink_staged};
use super::staged::Staged;
use super::{DiskRestoreOptions, DiskRestoreReport, ImagingError};
use crate::device::{open_path, Access, BlockDevice};
use crate::progress::{Progress, ProgressEvent};
use crate::repo::{AreaManifest, Manifest};
use crate::usedmap::ByteExtent;
use std::collections::HashMap;
use std::path::Path;

/// Bytes copied per read and write: large positioned writes, few system calls.
const COPY_BYTES: usize = 8 << 20;

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
            let out = open_path(&s.path, Access::ReadWrite)?;
            copy_area(src, area(&p.area)?, &out, 0, true, progress)?;
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
    // The source is read once: the read-back compares with the hashes of what was
    // written (a Clonezilla source would decode its images again for a second read).
    let mut hashes = Vec::new();
    for (a, at) in &places {
        let (n, h) = copy_area(src, a, target, *at, opts.target_is_zeroed, progress)?;
        report.bytes_written += n;
        hashes.push(h);
    }
    target.flush()?;
    if opts.verify_after {
        for ((a, at), h) in places.iter().zip(&hashes) {
            report.bytes_verified += verify_area(a, h, target, *at, progress)?;
        }
    }

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

fn used_bytes(a: &AreaManifest) -> u64 {
    a.extents.iter().map(|e| e.len).sum()
}

/// The pieces of `a`'s extents, at most COPY_BYTES each: (offset in the area, length).
fn pieces(a: &AreaManifest) -> impl Iterator<Item = (u64, usize)> + '_ {
    a.extents.iter().flat_map(|e: &ByteExtent| {
        let end = e.end();
        std::iter::successors(Some(e.offset), move |&o| {
            o.checked_add(COPY_BYTES as u64).filter(|&n| n < end)
        })
        .map(move |o| {
            (
                o,
                usize::try_from((end - o).min(COPY_BYTES as u64)).unwrap_or(0),
            )
        })
    })
}

/// Copies the used extents of area `a` from `src` (where the area lies at its own
/// offset) to `dst` at `at`; all-zero pieces are skipped when `dst` reads as zeros.
/// The bytes written, and each piece's blake3 for the read-back.
fn copy_area(
    src: &dyn BlockDevice,
    a: &AreaManifest,
    dst: &dyn BlockDevice,
    at: u64,
    dst_zeroed: bool,
    progress: &dyn Progress,
) -> Result<(u64, Vec<blake3::Hash>), ImagingError> {
    let name = format!("write {}", a.name);
    progress.report(ProgressEvent::PhaseStart {
        name: name.clone(),
        total_bytes: used_bytes(a),
    });
    let mut buf = vec![0u8; COPY_BYTES];
    let mut written = 0u64;
    let mut hashes = Vec::new();
    for (off, n) in pieces(a) {
        let chunk = buf.get_mut(..n).unwrap_or_default();
        src.read_at(checked(a, a.offset, off)?, chunk)?;
        hashes.push(blake3::hash(chunk));
        if !(dst_zeroed && chunk.iter().all(|&b| b == 0)) {
            dst.write_at(checked(a, at, off)?, chunk)?;
            written += n as u64;
        }
        progress.report(ProgressEvent::Advance { bytes: n as u64 });
    }
    dst.start_writeback();
    progress.report(ProgressEvent::PhaseEnd { name });
    Ok((written, hashes))
}

/// Reads area `a` back from `dst` at `at` and compares each piece with the hash of
/// what was written (`hashes`, from `copy_area`); the bytes compared.
fn verify_area(
    a: &AreaManifest,
    hashes: &[blake3::Hash],
    dst: &dyn BlockDevice,
    at: u64,
    progress: &dyn Progress,
) -> Result<u64, ImagingError> {
    let name = format!("verify {}", a.name);
    progress.report(ProgressEvent::PhaseStart {
        name: name.clone(),
        total_bytes: used_bytes(a),
    });
    let mut got = vec![0u8; COPY_BYTES];
    let mut done = 0u64;
    for ((off, n), want) in pieces(a).zip(hashes) {
        let g = got.get_mut(..n).unwrap_or_default();
        let where_ = checked(a, at, off)?;
        dst.read_at(where_, g)?;
        if blake3::hash(g) != *want {
            return Err(ImagingError::Other(format!(
                "read-back of {}: target bytes {where_}..{} differ from what was written",
                a.name,
                where_ + n as u64
            )));
        }
        done += n as u64;
        progress.report(ProgressEvent::Advance { bytes: n as u64 });
    }
    progress.report(ProgressEvent::PhaseEnd { name });
    Ok(done)
}

/// `base + off`, or an error naming the area when it overflows.
fn checked(a: &AreaManifest, base: u64, off: u64) -> Result<u64, ImagingError> {
    base.checked_add(off)
        .ok_or_else(|| ImagingError::Other(format!("area {}: offset overflows", a.name)))
}
