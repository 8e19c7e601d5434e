//! Boot repair after a restore, reported line by line.
//!
//! A restored disk is only worth something if it boots. What breaks when partitions
//! move or land on other hardware is small and exact: the NTFS and FAT boot sectors'
//! hidden-sectors field, GRUB's pointer to core.img, the ESP's fallback loader for
//! firmware that has no NVRAM entry for this disk, and the NVRAM entry itself.

use super::plan_restore::DiskRestorePlan;
use super::repair_bcd;
use super::repair_nvram;
use super::ImagingError;
use crate::bootfix::esp_fallback::{self, FallbackPlan};
use crate::bootfix::{exfat_geometry, fat_geometry, grub_bios, ntfs_geometry};
use crate::device::{BlockDevice, Window};
use crate::plan::Role;
use crate::probe::FsKind;
use crate::table::{DiskLayout, PartType};
use crate::units::ByteOffset;
use serde::Serialize;
use std::path::Path;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RepairOptions {
    /// Write a Boot#### entry and remove stale ones (on UEFI, onto a disk).
    pub nvram: bool,
    /// Copy the ESP's loader to `\EFI\BOOT\BOOTX64.EFI` when that is missing. Off for
    /// multi-boot ESPs or firmware with good entries, whose fallback must stay as is.
    pub fallback: bool,
}

fn role(layout: &DiskLayout, number: u32) -> Role {
    layout
        .partitions
        .iter()
        .find(|p| p.number == number)
        .map_or(Role::Data, |p| match &p.ptype {
            PartType::Gpt(t) => Role::from_gpt_type(t),
            PartType::Mbr(t) => Role::from_mbr_type(*t),
        })
}

pub fn repair_boot(
    plan: &DiskRestorePlan,
    written: Option<&DiskLayout>,
    target: &dyn BlockDevice,
    target_path: &Path,
    opts: &RepairOptions,
) -> Result<Vec<String>, ImagingError> {
    let mut lines = Vec::new();
    let ss = target.logical_sector_size();
    let Some(layout) = written else {
        return Ok(lines);
    };

    // Filesystems that record where their partition starts.
    for p in &plan.parts {
        let Some(number) = p.meta.partition.as_ref().map(|q| q.number) else {
            continue;
        };
        // Hidden sectors count the target's logical blocks. A planned partition starts
        // on a sector boundary; one that does not is a planner bug, never rounded away.
        let start_lba = ByteOffset::new(p.new_offset)
            .to_lba_exact(ss)
            .ok_or_else(|| {
                ImagingError::Other(format!(
                    "partition {number}: start byte {} is not on a {ss}-byte sector boundary",
                    p.new_offset
                ))
            })?
            .get();
        let win = Window::new(target, p.new_offset, p.new_size)?;
        let what = format!("partition {number}");
        lines.extend(fix_start_fields(
            &win,
            p.kind,
            start_lba,
            p.new_offset,
            &what,
        )?);
    }

    // Windows on MBR: the BCD names partitions by disk signature and start.
    lines.extend(repair_bcd::repair_bcd(plan, layout, target, target_path)?);

    // GRUB for BIOS: boot.img points at core.img by absolute LBA.
    if let Some(boot) = grub_bios::read_boot_img(target)? {
        let k = boot.kernel_sector;
        let src = plan.source_layout.as_ref();
        let holder = src.and_then(|s| {
            s.partitions.iter().find(|p| {
                !p.ptype.is_mbr_extended() && p.start_lba.get() <= k && k <= p.end_lba.get()
            })
        });
        match holder {
            None => lines.push(format!(
                "GRUB (BIOS): core.img at LBA {k} in the post-MBR gap, restored with the gap; boot code kept"
            )),
            Some(sp) => {
                let new_start = layout
                    .partitions
                    .iter()
                    .find(|p| p.number == sp.number)
                    .map(|p| p.start_lba.get());
                match new_start {
                    Some(ns) if ns != sp.start_lba.get() => {
                        let new_k = k - sp.start_lba.get() + ns;
                        let r = grub_bios::relocate_core(target, k, new_k)?;
                        lines.push(format!(
                            "GRUB (BIOS): core.img moved with partition {}: boot.img kernel_sector {} -> {}, {} blocklist entr{} patched",
                            sp.number,
                            r.old_kernel_sector,
                            r.new_kernel_sector,
                            r.blocklist.len(),
                            if r.blocklist.len() == 1 { "y" } else { "ies" }
                        ));
                    }
                    _ => lines.push(format!(
                        "GRUB (BIOS): core.img in partition {} at LBA {k}, which did not move",
                        sp.number
                    )),
                }
            }
        }
    }

    // UEFI: the fallback loader, and the NVRAM entry when we run on UEFI.
    for p in &plan.parts {
        let Some(number) = p.meta.partition.as_ref().map(|q| q.number) else {
            continue;
        };
        if role(layout, number) != Role::Esp || !p.kind.is_fat() {
            continue;
        }
        let files = esp_fallback::list_esp(target_path, p.new_offset)?;
        let loader = if opts.fallback {
            match esp_fallback::plan_fallback(&files, None) {
                FallbackPlan::NoLoader => None,
                _ => match esp_fallback::ensure_fallback(target_path, p.new_offset, None)?.plan {
                    FallbackPlan::Copy { loader, .. } => {
                        lines.push(format!(
                            "partition {number} (ESP): fallback loader \\EFI\\BOOT\\BOOTX64.EFI copied from {loader}"
                        ));
                        Some(loader)
                    }
                    _ => {
                        lines.push(format!(
                            "partition {number} (ESP): \\EFI\\BOOT\\BOOTX64.EFI present"
                        ));
                        Some(esp_fallback::FALLBACK_LOADER.to_string())
                    }
                },
            }
        } else {
            let present = files
                .iter()
                .any(|f| f.eq_ignore_ascii_case(esp_fallback::FALLBACK_LOADER));
            lines.push(format!(
                "partition {number} (ESP): fallback loader \\EFI\\BOOT\\BOOTX64.EFI left untouched (--no-fallback; {})",
                if present { "present" } else { "absent" }
            ));
            esp_fallback::entry_loader(&files, None)
        };
        let Some(loader) = loader else {
            lines.push(format!(
                "partition {number} (ESP): no EFI loader found; UEFI boot cannot be repaired"
            ));
            continue;
        };
        if !opts.nvram {
            continue;
        }
        lines.extend(repair_nvram::nvram_for_esp(
            layout,
            number,
            &loader,
            target_path,
        )?);
    }
    Ok(lines)
}

/// What the boot repair of a restore will do, shown with the plan before anything is
/// written (`restore --dry-run`, the plan event of `--json`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RepairPlan {
    pub enabled: bool,
    /// `\EFI\BOOT\BOOTX64.EFI` written when missing (false: left as it is).
    pub fallback: bool,
    /// A Boot#### entry written, stale ones removed (on UEFI, onto a disk).
    pub nvram: bool,
    pub lines: Vec<String>,
}

pub fn plan_repairs(plan: &DiskRestorePlan, opts: Option<&RepairOptions>) -> RepairPlan {
    let Some(opts) = opts else {
        return RepairPlan {
            enabled: false,
            fallback: false,
            nvram: false,
            lines: vec!["boot repair: off (--no-repair)".into()],
        };
    };
    let mut lines =
        vec!["boot repair: NTFS/FAT hidden sectors, exFAT partition offset, GRUB (BIOS) core.img pointer".to_string()];
    lines.extend(repair_bcd::plan_lines(
        plan,
        plan.target_layout.as_ref().and_then(|l| l.disk_signature),
    ));
    let esps = plan
        .parts
        .iter()
        .filter(|p| p.kind.is_fat())
        .filter_map(|p| p.meta.partition.as_ref().map(|q| q.number))
        .filter(|&n| {
            plan.target_layout
                .as_ref()
                .is_some_and(|l| role(l, n) == Role::Esp)
        });
    for number in esps {
        lines.push(if opts.fallback {
            format!("partition {number} (ESP): fallback loader \\EFI\\BOOT\\BOOTX64.EFI written if missing")
        } else {
            format!("partition {number} (ESP): fallback loader \\EFI\\BOOT\\BOOTX64.EFI left untouched (--no-fallback)")
        });
        lines.push(if opts.nvram {
            format!("partition {number} (ESP): NVRAM Boot#### entry written first, stale entries removed (on UEFI, onto a disk)")
        } else {
            format!("partition {number} (ESP): NVRAM left untouched (--no-nvram)")
        });
    }
    RepairPlan {
        enabled: true,
        fallback: opts.fallback,
        nvram: opts.nvram,
        lines,
    }
}

/// The fields a filesystem keeps about where its partition starts on the disk (NTFS and
/// FAT hidden sectors, exFAT's PartitionOffset), set for a start at `start_lba`
/// (`start_bytes`); what changed, in words naming `what`.
fn fix_start_fields(
    win: &dyn BlockDevice,
    kind: FsKind,
    start_lba: u64,
    start_bytes: u64,
    what: &str,
) -> Result<Option<String>, ImagingError> {
    Ok(match kind {
        FsKind::Ntfs => {
            let fix = ntfs_geometry::fix_ntfs_geometry(win, start_lba, None)?;
            Some(format!(
                "{what}: NTFS hidden sectors {} -> {} in the boot sector and its backup",
                fix.old.hidden_sectors, fix.new.hidden_sectors
            ))
        }
        k if k.is_fat() => {
            let fix = fat_geometry::fix_fat_hidden_sectors(win, start_lba)?;
            Some(format!(
                "{what}: FAT hidden sectors {} -> {}{}",
                fix.old_hidden_sectors,
                fix.new_hidden_sectors,
                if fix.backup_patched_at_sector.is_some() {
                    " (and the FAT32 backup boot sector)"
                } else {
                    ""
                }
            ))
        }
        FsKind::Exfat => {
            let fix = exfat_geometry::fix_exfat_partition_offset(win, start_bytes)?;
            (fix.old_partition_offset != fix.new_partition_offset).then(|| {
                format!(
                    "{what}: exFAT PartitionOffset {} -> {}, boot checksum re-sealed{}",
                    fix.old_partition_offset,
                    fix.new_partition_offset,
                    if fix.backup_patched {
                        " (and in the backup boot region)"
                    } else {
                        ""
                    }
                )
            })
        }
        _ => None,
    })
}

/// After an image without a partition table was restored into a partition (`target`
/// is the partition, at `start_bytes` of its disk): the filesystem's own record of
/// where its partition starts is set to that place, as `repair_boot` does for the
/// partitions of a disk it wrote. (A filesystem at byte 0 of a whole disk has nothing
/// to fix.)
pub fn repair_partition_start(
    plan: &DiskRestorePlan,
    target: &dyn BlockDevice,
    start_bytes: u64,
) -> Result<Vec<String>, ImagingError> {
    let ss = target.logical_sector_size();
    let mut lines = Vec::new();
    for p in &plan.parts {
        let at = start_bytes.checked_add(p.new_offset).ok_or_else(|| {
            ImagingError::Other(format!(
                "partition start {start_bytes} + {} overflows",
                p.new_offset
            ))
        })?;
        let lba = ByteOffset::new(at).to_lba_exact(ss).ok_or_else(|| {
            ImagingError::Other(format!(
                "start byte {at} is not on a {ss}-byte sector boundary"
            ))
        })?;
        let win = Window::new(target, p.new_offset, p.new_size)?;
        lines.extend(fix_start_fields(
            &win,
            p.kind,
            lba.get(),
            at,
            "the partition",
        )?);
    }
    Ok(lines)
}
