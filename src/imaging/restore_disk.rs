//! Restoring an image onto a disk of any size.
//!
//! Order matters for safety: everything that can fail for lack of room or a damaged
//! image fails before the target's first byte is written. Shrinking filesystems are
//! restored into sparse scratch files and shrunk there first (docs/RESIZE.md), the
//! repository checks every chunk it will need, and only then are the target's
//! partitions, table, grown filesystems and boot repairs written.

use super::luks_restore;
use super::plan_restore::{DiskRestorePlan, PartTarget};
use super::rebuild_primary::{rebuild_primary, Restored};
use super::recreate_esp::stage_recreate;
use super::recreate_xfs::stage_recreate_xfs;
use super::repair::{repair_boot, RepairOptions};
use super::staged::{copy_staged, Staged};
use super::ImagingError;
use crate::device::{open_path, Access, BlockDevice, Window};
use crate::probe::FsKind;
use crate::progress::Progress;
use crate::repo::{self, AreaManifest, Repository, RestoreOptions};
use crate::resize::{self, LoopDevice};
use crate::table::{write_layout, WriteOptions};
use crate::units::count;
use crate::usedmap::{map_filesystem, mark_tails_unzeroed};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct DiskRestoreOptions {
    /// Fresh disk and partition GUIDs / MBR signature (a clone beside its original).
    pub new_ids: bool,
    pub verify_after: bool,
    /// Repair booting (boot sectors' geometry, GRUB, ESP fallback loader, NVRAM).
    pub repair: bool,
    /// Write a Boot#### entry when running on UEFI with efivarfs.
    pub nvram: bool,
    /// Copy the ESP's loader to `\EFI\BOOT\BOOTX64.EFI` when missing (false: the
    /// fallback path is left as it is; the other repairs still run).
    pub fallback: bool,
    /// Where shrinking filesystems are staged (sparse files).
    pub scratch_dir: PathBuf,
    /// The target reads as zeros (a new sparse file): zero chunks are skipped.
    pub target_is_zeroed: bool,
    /// The key of the LUKS volumes whose plaintext the image holds (luks_restore.rs).
    pub luks_key: Option<std::sync::Arc<crate::unlock::LuksKey>>,
}

impl DiskRestoreOptions {
    /// The boot repairs these options ask for (`None`: no repair at all).
    pub fn repair_options(&self) -> Option<RepairOptions> {
        self.repair.then_some(RepairOptions {
            nvram: self.nvram,
            fallback: self.fallback,
        })
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DiskRestoreReport {
    pub image: String,
    pub bytes_written: u64,
    pub bytes_verified: u64,
    /// What was done beyond copying, line by line (resizes, table, boot repairs).
    pub steps: Vec<String>,
}

pub fn restore_disk(
    repo: &Repository,
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
    // 1. Shrinks and re-created ESPs and XFS, staged off the target: the only steps that can
    //    discover (through the resize tools, or a FAT that fills up) that the data
    //    does not fit, so they run first.
    let mut luks = luks_restore::prepare(repo, plan, opts.luks_key.as_deref(), opts, progress)?;
    let mut staged: HashMap<String, Staged> = luks.headers.drain(..).collect();
    for p in plan.parts.iter().filter(|p| p.recreate) {
        let (s, line) = if p.kind == FsKind::Xfs {
            stage_recreate_xfs(repo, plan, p, &opts.scratch_dir, progress)?
        } else {
            stage_recreate(repo, plan, p, &opts.scratch_dir, progress)?
        };
        report.steps.push(line);
        staged.insert(p.area.clone(), s);
    }
    // LVM PVs at a new size or with new ids: laid out anew off the target (restore_lvm.rs).
    for p in plan
        .parts
        .iter()
        .filter(|p| super::plan_lvm::relaid(p, opts.new_ids))
    {
        let (s, lines) = super::restore_lvm::stage_lvm(repo, plan, p, opts, progress)?;
        report.steps.extend(lines);
        staged.insert(p.area.clone(), s);
    }
    let shrinks: Vec<&PartTarget> = plan
        .parts
        .iter()
        .filter(|p| {
            p.shrinks() && !staged.contains_key(&p.area) && !luks_restore::is_luks_header(p)
        })
        .collect();
    for p in shrinks {
        let s = stage_shrink(repo, plan, p, opts, progress)?;
        report.steps.extend(s.rebuilt.clone());
        report.steps.push(format!(
            "partition {}: {} shrunk from {} to {} bytes (staged in {})",
            p.meta.partition.as_ref().map_or(0, |q| q.number),
            p.kind,
            p.old_size,
            p.new_size,
            opts.scratch_dir.display()
        ));
        staged.insert(p.area.clone(), s);
    }

    // 2. Everything else straight from the repository, in one pass whose pre-check
    //    covers every chunk before the first write.
    let places: HashMap<String, u64> = plan
        .parts
        .iter()
        .filter(|p| !staged.contains_key(&p.area))
        .map(|p| (p.area.clone(), p.new_offset))
        .collect();
    let has_table = plan.target_layout.is_some();
    let mapping = |a: &AreaManifest| -> Option<u64> {
        if a.name == super::meta::HEAD_AREA && has_table {
            return Some(0);
        }
        places.get(&a.name).copied()
    };
    let r = repo::restore(
        repo,
        &plan.image,
        target,
        &mapping,
        &RestoreOptions {
            verify_after: opts.verify_after,
            target_is_zeroed: opts.target_is_zeroed,
            deep_precheck: false,
            ..Default::default()
        },
        progress,
    )?;
    report.bytes_written += r.bytes_written;
    report.bytes_verified += r.bytes_verified;
    // The source's unreadable ranges were restored as zeros: say again what they hit.
    let damage = repo.load_head(&plan.image)?.damage_lines();
    if !damage.is_empty() {
        report
            .steps
            .push("the source was damaged; these ranges were restored as zeros:".into());
        report.steps.extend(damage);
    }

    let written_layout = finish_layout(
        plan,
        &staged,
        target,
        target_path,
        opts,
        progress,
        &mut report,
    )?;
    // 6b. LUKS volumes: opened with the key, their plaintext written through the mapping.
    luks.finish(
        repo,
        plan,
        target_path,
        opts.verify_after,
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

/// The steps after the data is in place, shared by every restore source: lost primaries
/// rebuilt, the table fitted to the target, staged filesystems copied in, ext inode-table
/// tails, grown filesystems. The layout written, if the image has a table.
pub(super) fn finish_layout(
    plan: &DiskRestorePlan,
    staged: &HashMap<String, Staged>,
    target: &dyn BlockDevice,
    target_path: &Path,
    opts: &DiskRestoreOptions,
    progress: &dyn Progress,
    report: &mut DiskRestoreReport,
) -> Result<Option<crate::table::DiskLayout>, ImagingError> {
    // 2b. The primaries the source had lost, rebuilt from their backups before
    //    anything (a resize, the boot repair) needs them.
    for p in plan.parts.iter().filter(|p| !staged.contains_key(&p.area)) {
        if let Some(lost) = &p.meta.map.primary_lost {
            let at = Restored {
                dev: target,
                path: target_path,
                offset: p.new_offset,
                len: p.new_size,
            };
            let line = rebuild_primary(&at, p.kind, lost)?;
            report.steps.push(format!("{}: {line}", part_name(p)));
        }
    }

    // 3. The partition table, fitted to the target.
    let mut written_layout = None;
    if let Some(layout) = &plan.target_layout {
        if target.logical_sector_size() > 512 {
            // A 512-byte-sector GPT header copied in the head would sit inside the
            // target's LBA 0 and confuse probes; the new table goes at LBA 1.
            let ss = target.logical_sector_size() as usize;
            target.write_at(512, &vec![0u8; ss - 512])?;
        }
        let written = write_layout(
            target,
            layout,
            &WriteOptions {
                fresh_ids: opts.new_ids,
            },
        )?;
        report.steps.push(match &written.gpt {
            Some(g) => format!(
                "GPT written: {}, backup header at LBA {}, last usable LBA {}",
                count(written.partitions.len(), "partition", "partitions"),
                g.alternate_lba,
                g.last_usable_lba
            ),
            None => format!(
                "MBR written: {}, disk signature {:08x}",
                count(written.partitions.len(), "partition", "partitions"),
                written.disk_signature.unwrap_or(0)
            ),
        });
        written_layout = Some(written);
    }

    // 4. Shrunk and re-created filesystems copied in from their scratch files.
    for p in plan.parts.iter() {
        if let Some(s) = staged.get(&p.area) {
            let c = copy_staged(s, target, p, opts.verify_after, progress)?;
            report.bytes_written += c.written;
            report.bytes_verified += c.verified;
        }
    }

    // 5. ext inode-table tails the image left out hold the target's old bytes: the
    //    groups stop claiming them zeroed (usedmap/ext/itable.rs says why not zeros).
    if !opts.target_is_zeroed {
        for p in plan
            .parts
            .iter()
            .filter(|p| p.kind.is_ext() && !p.meta.map.raw)
        {
            let part = p
                .meta
                .partition
                .as_ref()
                .map_or("the filesystem".into(), |q| {
                    format!("partition {}", q.number)
                });
            let win = Window::new(target, p.new_offset, p.new_size.min(p.old_size))?;
            let n = mark_tails_unzeroed(&win).map_err(|source| ImagingError::ExtTails {
                part: part.clone(),
                source: Box::new(source),
            })?;
            if n > 0 {
                report.steps.push(format!(
                    "{part}: {n} block groups left to the kernel to zero the never-used end \
                     of their inode tables (not stored in the image)"
                ));
            }
        }
    }

    // 6. Grown filesystems, resized in place by their own tools.
    for p in plan.parts.iter().filter(|p| p.grows()) {
        if p.kind == FsKind::Btrfs && p.new_size < resize::BTRFS_MIN_RESIZE {
            report.steps.push(format!(
                "{}: btrfs keeps its {} bytes in its {}-byte partition (the kernel resizes \
                 btrfs only to 256 MiB or more)",
                part_name(p),
                p.old_size,
                p.new_size
            ));
            continue;
        }
        let lo = LoopDevice::attach(target_path, p.new_offset, p.new_size)?;
        resize::resize(p.kind, lo.path(), p.new_size)?;
        if p.kind == FsKind::Ntfs {
            resize::ntfs_clear_dirty(lo.path())?;
        }
        report.steps.push(format!(
            "partition {}: {} grown from {} to {} bytes",
            p.meta.partition.as_ref().map_or(0, |q| q.number),
            p.kind,
            p.old_size,
            p.new_size
        ));
    }
    target.flush()?;
    Ok(written_layout)
}

/// "partition 2", or "the disk's filesystem" when there is no table.
pub(super) fn part_name(p: &PartTarget) -> String {
    p.meta
        .partition
        .as_ref()
        .map_or("the disk's filesystem".into(), |q| {
            format!("partition {}", q.number)
        })
}

/// The target must be at least the size the plan was made for (a plan shown for one
/// disk and run on a smaller one would fail half-way).
pub(super) fn check_target_size(
    plan: &DiskRestorePlan,
    target: &dyn BlockDevice,
) -> Result<(), ImagingError> {
    if target.size() < plan.target_size {
        return Err(ImagingError::Other(format!(
            "target {} is {} bytes, the plan was made for {}",
            target.describe(),
            target.size(),
            plan.target_size
        )));
    }
    Ok(())
}

fn stage_shrink(
    repo: &Repository,
    plan: &DiskRestorePlan,
    p: &PartTarget,
    opts: &DiskRestoreOptions,
    progress: &dyn Progress,
) -> Result<Staged, ImagingError> {
    let number = p.meta.partition.as_ref().map_or(0, |q| q.number);
    stage_shrink_as(
        repo,
        plan,
        p,
        number,
        &p.kind.to_string(),
        &opts.scratch_dir,
        progress,
    )
}

/// Restores area `p` into a sparse scratch file and shrinks its filesystem there to
/// `p.new_size`, before the target is touched. `number` and `fs` name it in errors
/// (a LUKS volume's inner filesystem has no partition of its own: luks_restore.rs).
pub(super) fn stage_shrink_as(
    repo: &Repository,
    plan: &DiskRestorePlan,
    p: &PartTarget,
    number: u32,
    fs: &str,
    scratch_dir: &Path,
    progress: &dyn Progress,
) -> Result<Staged, ImagingError> {
    if !resize::can_shrink(p.kind) {
        return Err(ImagingError::Other(format!(
            "partition {number}: {fs} cannot be shrunk"
        )));
    }
    let staged = Staged::create(
        scratch_dir,
        &format!("ironclone-shrink-{}-{}.img", std::process::id(), p.area),
        p.old_size,
    )?;
    staged.restore_area(repo, &plan.image, &p.area, progress)?;
    shrink_staged(staged, p, number, fs)
}

/// Shrinks the filesystem of area `p`, restored as it was into `staged`, to
/// `p.new_size`, and maps what is left to copy (`number` and `fs` name it in errors).
pub(super) fn shrink_staged(
    mut staged: Staged,
    p: &PartTarget,
    number: u32,
    fs: &str,
) -> Result<Staged, ImagingError> {
    let path = staged.path.clone();
    let scratch_err = |source| ImagingError::Scratch {
        path: path.clone(),
        source,
    };
    if let Some(lost) = &p.meta.map.primary_lost {
        let dev = open_path(&path, Access::ReadWrite)?;
        let at = Restored {
            dev: &dev,
            path: &path,
            offset: 0,
            len: p.old_size,
        };
        staged.rebuilt = Some(format!(
            "{}: {}",
            part_name(p),
            rebuild_primary(&at, p.kind, lost)?
        ));
    }
    let min = resize::min_size(p.kind, &path)?.unwrap_or(p.old_size);
    if min > p.new_size {
        return Err(ImagingError::ShrinkTooSmall {
            number,
            fs: fs.to_string(),
            min,
            planned: p.new_size,
        });
    }
    resize::resize(p.kind, &path, p.new_size)?;
    if p.kind == FsKind::Ntfs {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(scratch_err)?;
        f.set_len(p.new_size).map_err(scratch_err)?;
        drop(f);
        resize::ntfs_clear_dirty(&path)?;
    }
    let dev = open_path(&path, Access::ReadOnly)?;
    let win = Window::new(&dev, 0, p.new_size.min(dev.size()))?;
    let map = map_filesystem(&win, p.kind);
    if map.raw {
        return Err(ImagingError::Other(format!(
            "partition {number}: after shrinking, its {fs} filesystem could not be mapped: {}",
            map.raw_reason.unwrap_or_default()
        )));
    }
    staged.extents = map.extents;
    Ok(staged)
}
