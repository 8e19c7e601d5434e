//! Restoring an image onto a disk of any size.
//!
//! Order matters for safety: everything that can fail for lack of room or a damaged
//! image fails before the target's first byte is written. Shrinking filesystems are
//! restored into sparse scratch files and shrunk there first (docs/RESIZE.md), the
//! repository checks every chunk it will need, and only then are the target's
//! partitions, table, grown filesystems and boot repairs written.

use super::plan_restore::{DiskRestorePlan, PartTarget};
use super::repair::{repair_boot, RepairOptions};
use super::ImagingError;
use crate::device::{open_path, Access, BlockDevice, Window};
use crate::probe::FsKind;
use crate::progress::{Progress, ProgressEvent};
use crate::repo::{self, AreaManifest, Repository, RestoreOptions};
use crate::resize::{self, LoopDevice};
use crate::table::{write_layout, WriteOptions};
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

/// A shrunk filesystem waiting in its scratch file, with the byte ranges to copy.
struct Staged {
    path: PathBuf,
    extents: Vec<crate::usedmap::ByteExtent>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
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
    if target.size() < plan.target_size {
        return Err(ImagingError::Other(format!(
            "target {} is {} bytes, the plan was made for {}",
            target.describe(),
            target.size(),
            plan.target_size
        )));
    }
    // 1. Shrinks, staged off the target: the only step that can discover (through
    //    the resize tools) that the data does not fit, so it runs first.
    let mut staged: HashMap<String, Staged> = HashMap::new();
    for p in plan.parts.iter().filter(|p| p.shrinks()) {
        let s = stage_shrink(repo, plan, p, opts, progress)?;
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
        },
        progress,
    )?;
    report.bytes_written += r.bytes_written;
    report.bytes_verified += r.bytes_verified;
    // The source's unreadable ranges were restored as zeros: say again what they hit.
    let damage = repo.load_manifest(&plan.image)?.damage_lines();
    if !damage.is_empty() {
        report
            .steps
            .push("the source was damaged; these ranges were restored as zeros:".into());
        report.steps.extend(damage);
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
                "GPT written: {} partitions, backup header at LBA {}, last usable LBA {}",
                written.partitions.len(),
                g.alternate_lba,
                g.last_usable_lba
            ),
            None => format!(
                "MBR written: {} partitions, disk signature {:08x}",
                written.partitions.len(),
                written.disk_signature.unwrap_or(0)
            ),
        });
        written_layout = Some(written);
    }

    // 4. Shrunk filesystems copied in from their scratch files.
    for p in plan.parts.iter() {
        if let Some(s) = staged.get(&p.area) {
            let n = copy_staged(s, target, p, progress)?;
            report.bytes_written += n;
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

    // 7. Boot repair.
    if let Some(ro) = opts.repair_options() {
        let lines = repair_boot(plan, written_layout.as_ref(), target, target_path, &ro)?;
        report.steps.extend(lines);
    }
    target.flush()?;
    Ok(report)
}

fn stage_shrink(
    repo: &Repository,
    plan: &DiskRestorePlan,
    p: &PartTarget,
    opts: &DiskRestoreOptions,
    progress: &dyn Progress,
) -> Result<Staged, ImagingError> {
    let number = p.meta.partition.as_ref().map_or(0, |q| q.number);
    if !resize::can_resize(p.kind) {
        return Err(ImagingError::Other(format!(
            "partition {number}: {} cannot be shrunk",
            p.kind
        )));
    }
    std::fs::create_dir_all(&opts.scratch_dir).map_err(|source| ImagingError::Scratch {
        path: opts.scratch_dir.clone(),
        source,
    })?;
    let path = opts.scratch_dir.join(format!(
        "ironclone-shrink-{}-{}.img",
        std::process::id(),
        p.area
    ));
    let scratch_err = |source| ImagingError::Scratch {
        path: path.clone(),
        source,
    };
    let f = std::fs::File::create(&path).map_err(scratch_err)?;
    f.set_len(p.old_size).map_err(scratch_err)?;
    drop(f);
    let mut staged = Staged {
        path: path.clone(),
        extents: vec![],
    };
    {
        let dev = open_path(&path, Access::ReadWrite)?;
        let area = p.area.clone();
        let mapping = move |a: &AreaManifest| (a.name == area).then_some(0);
        repo::restore(
            repo,
            &plan.image,
            &dev,
            &mapping,
            &RestoreOptions {
                verify_after: false,
                target_is_zeroed: true,
                deep_precheck: false,
            },
            progress,
        )?;
    }
    let min = resize::min_size(p.kind, &path)?.unwrap_or(p.old_size);
    if min > p.new_size {
        return Err(ImagingError::ShrinkTooSmall {
            number,
            fs: p.kind.to_string(),
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
            "partition {number}: after shrinking, its {} filesystem could not be mapped: {}",
            p.kind,
            map.raw_reason.unwrap_or_default()
        )));
    }
    staged.extents = map.extents;
    Ok(staged)
}

fn copy_staged(
    s: &Staged,
    target: &dyn BlockDevice,
    p: &PartTarget,
    progress: &dyn Progress,
) -> Result<u64, ImagingError> {
    let src = open_path(&s.path, Access::ReadOnly)?;
    let dst = Window::new(target, p.new_offset, p.new_size)?;
    let total: u64 = s.extents.iter().map(|e| e.len).sum();
    progress.report(ProgressEvent::PhaseStart {
        name: format!("write {} (shrunk)", p.area),
        total_bytes: total,
    });
    let mut buf = vec![0u8; 4 << 20];
    for e in &s.extents {
        let mut off = e.offset;
        let end = e.end();
        while off < end {
            let n = ((end - off) as usize).min(buf.len());
            src.read_at(off, &mut buf[..n])?;
            dst.write_at(off, &buf[..n])?;
            progress.report(ProgressEvent::Advance { bytes: n as u64 });
            off += n as u64;
        }
    }
    progress.report(ProgressEvent::PhaseEnd {
        name: format!("write {} (shrunk)", p.area),
    });
    Ok(total)
}
