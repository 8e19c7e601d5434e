//! Boot repair after a restore, reported line by line.
//!
//! A restored disk is only worth something if it boots. What breaks when partitions
//! move or land on other hardware is small and exact: the NTFS and FAT boot sectors'
//! hidden-sectors field, GRUB's pointer to core.img, the ESP's fallback loader for
//! firmware that has no NVRAM entry for this disk, and the NVRAM entry itself.

use super::plan_restore::DiskRestorePlan;
use super::ImagingError;
use crate::bootfix::efi_load_option::{HardDrive, LoadOption};
use crate::bootfix::efivars::EfiVars;
use crate::bootfix::esp_fallback::{self, FallbackPlan};
use crate::bootfix::{fat_geometry, grub_bios, ntfs_geometry};
use crate::device::{BlockDevice, Window};
use crate::plan::Role;
use crate::probe::FsKind;
use crate::table::{DiskLayout, PartType};
use std::path::Path;

pub struct RepairOptions {
    pub nvram: bool,
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
    let ts = u64::from(target.logical_sector_size());
    let Some(layout) = written else {
        return Ok(lines);
    };

    // Filesystems that record where their partition starts.
    for p in &plan.parts {
        let Some(number) = p.meta.partition.as_ref().map(|q| q.number) else {
            continue;
        };
        let start_lba = p.new_offset / ts;
        let win = Window::new(target, p.new_offset, p.new_size)?;
        match p.kind {
            FsKind::Ntfs => {
                let fix = ntfs_geometry::fix_ntfs_geometry(&win, start_lba, None)?;
                lines.push(format!(
                    "partition {number}: NTFS hidden sectors {} -> {} in the boot sector and its backup",
                    fix.old.hidden_sectors, fix.new.hidden_sectors
                ));
            }
            k if k.is_fat() => {
                let fix = fat_geometry::fix_fat_hidden_sectors(&win, start_lba)?;
                lines.push(format!(
                    "partition {number}: FAT hidden sectors {} -> {}{}",
                    fix.old_hidden_sectors,
                    fix.new_hidden_sectors,
                    if fix.backup_patched_at_sector.is_some() {
                        " (and the FAT32 backup boot sector)"
                    } else {
                        ""
                    }
                ));
            }
            _ => {}
        }
    }

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
        let out = esp_fallback::ensure_fallback(target_path, p.new_offset, None)?;
        let loader = match &out.plan {
            FallbackPlan::AlreadyPresent => {
                lines.push(format!(
                    "partition {number} (ESP): \\EFI\\BOOT\\BOOTX64.EFI present"
                ));
                "\\EFI\\BOOT\\BOOTX64.EFI".to_string()
            }
            FallbackPlan::Copy { loader, .. } => {
                lines.push(format!(
                    "partition {number} (ESP): fallback loader \\EFI\\BOOT\\BOOTX64.EFI copied from {loader}"
                ));
                loader.clone()
            }
            FallbackPlan::NoLoader => {
                lines.push(format!(
                    "partition {number} (ESP): no EFI loader found; UEFI boot cannot be repaired"
                ));
                continue;
            }
        };
        if !opts.nvram {
            continue;
        }
        let Some(vars) = EfiVars::system() else {
            lines.push("NVRAM: not running on UEFI (no efivarfs); entry not written".into());
            continue;
        };
        let Some(guid) = layout
            .partitions
            .iter()
            .find(|q| q.number == number)
            .and_then(|q| q.uuid)
        else {
            continue;
        };
        let existing: Vec<uuid::Uuid> = layout.partitions.iter().filter_map(|q| q.uuid).collect();
        let removed = vars.remove_stale(&existing)?;
        // The firmware's File() node wants the UEFI path form.
        let loader = loader.replace('/', "\\");
        let opt = LoadOption::new_hd_file(
            "ironclone restored",
            HardDrive::gpt(number, p.new_offset / ts, p.new_size / ts, guid),
            &loader,
        );
        for (r, o) in &removed {
            lines.push(format!(
                "NVRAM: removed stale Boot{r:04X} \"{}\" -> {}: that partition no longer exists",
                o.description,
                o.hard_drive().map(|hd| hd.to_string()).unwrap_or_default()
            ));
        }
        let n = vars.add_first(&opt)?;
        lines.push(format!(
            "NVRAM: Boot{n:04X} \"{}\" -> {} {loader} on partition {number} put first in BootOrder; {} stale entr{} removed",
            opt.description,
            opt.hard_drive().map(|hd| hd.to_string()).unwrap_or_default(),
            removed.len(),
            if removed.len() == 1 { "y" } else { "ies" }
        ));
    }
    Ok(lines)
}
