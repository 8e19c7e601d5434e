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
use crate::device::{open_path, Access, BlockDevice, Window};
use crate::discover::{self, SysPaths};
use crate::plan::Role;
use crate::probe::FsKind;
use crate::table::{self, DiskLayout, PartType};
use nix::sys::stat;
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
        // An image file is not a disk this firmware can boot: an entry for it would go
        // first in the machine's own BootOrder, and the cleanup would take the machine's
        // own entries for stale.
        if !is_block_device(target_path) {
            lines.push(format!(
                "NVRAM: {} is an image file, not a disk of this machine; entry not written",
                target_path.display()
            ));
            continue;
        }
        let Some(guid) = layout
            .partitions
            .iter()
            .find(|q| q.number == number)
            .and_then(|q| q.uuid)
        else {
            lines.push(format!(
                "NVRAM: partition {number} has no GPT partition GUID; entry not written"
            ));
            continue;
        };
        let others = other_disks_guids(target_path);
        lines.extend(repair_nvram(
            &vars,
            layout,
            HardDrive::gpt(number, p.new_offset / ts, p.new_size / ts, guid),
            &loader,
            &others,
        )?);
    }
    Ok(lines)
}

fn is_block_device(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

/// The GPT partition GUIDs on every disk of this machine except the target, so that
/// the NVRAM cleanup removes only entries whose partition exists nowhere (a second
/// disk's Windows or Linux entry must survive a restore onto the first). `Err` says
/// which disk could not be read: its partitions may well exist.
fn other_disks_guids(target_path: &Path) -> Result<Vec<uuid::Uuid>, String> {
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(target_path)
        .map_err(|e| format!("{}: {e}", target_path.display()))?
        .rdev();
    let disks = discover::list_disks(&SysPaths::default()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for d in disks {
        if u64::from(d.major) == stat::major(rdev) && u64::from(d.minor) == stat::minor(rdev) {
            continue;
        }
        let dev = open_path(&d.path, Access::ReadOnly)
            .map_err(|e| format!("{}: {e}", d.path.display()))?;
        let l = table::read_layout(&dev).map_err(|e| format!("{}: {e}", d.path.display()))?;
        out.extend(l.partitions.iter().filter_map(|q| q.uuid));
    }
    Ok(out)
}

/// Writes the Boot#### entry `hd`/File(`loader`) first in BootOrder, after removing
/// the entries whose GPT partition is neither on the restored disk (`layout`, same
/// GUID, start and size) nor on another disk of the machine (`other_disks`, same GUID;
/// when that is unknown, none are removed).
fn repair_nvram(
    vars: &EfiVars,
    layout: &DiskLayout,
    hd: HardDrive,
    loader: &str,
    other_disks: &Result<Vec<uuid::Uuid>, String>,
) -> Result<Vec<String>, ImagingError> {
    let mut lines = Vec::new();
    let removed = match other_disks {
        // On the restored disk the exact place is known: an entry with one of its GUIDs
        // but the old start or size names a partition that is no longer there. Other
        // disks count by GUID alone.
        Ok(others) => vars.remove_stale_where(|hd, guid| {
            if others.contains(&guid) {
                return false;
            }
            !layout.partitions.iter().any(|q| {
                q.uuid == Some(guid)
                    && q.start_lba.get() == hd.partition_start
                    && q.sectors() == hd.partition_size
            })
        })?,
        Err(why) => {
            lines.push(format!(
                "NVRAM: stale entries kept: cannot read the partition tables of this machine's disks ({why})"
            ));
            Vec::new()
        }
    };
    for (r, o) in &removed {
        lines.push(format!(
            "NVRAM: removed stale Boot{r:04X} \"{}\" -> {}: that partition no longer exists",
            o.description,
            o.hard_drive().map(|h| h.to_string()).unwrap_or_default()
        ));
    }
    let number = hd.partition_number;
    // The firmware's File() node wants the UEFI path form.
    let loader = loader.replace('/', "\\");
    let opt = LoadOption::new_hd_file("ironclone restored", hd, &loader);
    let n = vars.add_first(&opt)?;
    lines.push(format!(
        "NVRAM: Boot{n:04X} \"{}\" -> {} {loader} on partition {number} put first in BootOrder; {} stale entr{} removed",
        opt.description,
        opt.hard_drive().map(|h| h.to_string()).unwrap_or_default(),
        removed.len(),
        if removed.len() == 1 { "y" } else { "ies" }
    ));
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Partition, TableKind};
    use crate::units::Lba;
    use uuid::Uuid;

    fn guid(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn layout_with(guids: &[Uuid]) -> DiskLayout {
        let mut l = DiskLayout::none(512, 1 << 30);
        l.kind = TableKind::Gpt;
        for (i, g) in guids.iter().enumerate() {
            let n = u32::try_from(i).unwrap() + 1;
            l.partitions.push(Partition {
                number: n,
                start_lba: Lba(2048 * u64::from(n)),
                end_lba: Lba(2048 * u64::from(n) + 2047),
                size_bytes: 1 << 20,
                ptype: PartType::Gpt(Uuid::nil()),
                uuid: Some(*g),
                name: None,
                bootable: false,
                attributes: 0,
                logical: false,
                ebr_lba: None,
            });
        }
        l
    }

    fn seed(vars: &EfiVars, number: u16, desc: &str, g: Uuid, start: u64) {
        let o = LoadOption::new_hd_file(
            desc,
            HardDrive::gpt(1, start, 2048, g),
            "\\EFI\\x\\grubx64.efi",
        );
        vars.write_var(&format!("Boot{number:04X}"), &o.encode().unwrap())
            .unwrap();
    }

    /// The restored disk (`layout_with`) has guid(3) at LBA 2048 and guid(4) at 4096.
    /// Boot0000 names the old disk's ESP (gone), Boot0001 a partition on another disk
    /// of the machine (must survive), Boot0002 the restored disk's second partition
    /// where it is (must survive), Boot0003 the restored ESP where it was before the
    /// restore moved it (gone).
    fn machine() -> (tempfile::TempDir, EfiVars) {
        let dir = tempfile::tempdir().unwrap();
        let vars = EfiVars::new(dir.path());
        seed(&vars, 0, "old disk", guid(1), 2048);
        seed(&vars, 1, "second disk", guid(2), 2048);
        seed(&vars, 2, "restored data", guid(4), 4096);
        seed(&vars, 3, "esp before the move", guid(3), 1_000_000);
        vars.set_boot_order(&[0, 1, 2, 3]).unwrap();
        (dir, vars)
    }

    fn numbers(vars: &EfiVars) -> Vec<u16> {
        vars.boot_entries()
            .unwrap()
            .iter()
            .map(|e| e.number)
            .collect()
    }

    #[test]
    fn nvram_keeps_entries_of_other_disks() {
        let (_dir, vars) = machine();
        let layout = layout_with(&[guid(3), guid(4)]);
        let hd = HardDrive::gpt(1, 2048, 2048, guid(3));
        let lines = repair_nvram(
            &vars,
            &layout,
            hd.clone(),
            "/EFI/debian/grubx64.efi",
            &Ok(vec![guid(2)]),
        )
        .unwrap();
        // The freed number is the lowest free one, so the new entry takes it.
        assert_eq!(numbers(&vars), vec![0, 1, 2], "{lines:?}");
        assert_eq!(vars.boot_order().unwrap(), vec![0, 1, 2]);
        assert!(lines[1].starts_with("NVRAM: removed stale Boot0003 \"esp before the move\""));
        let new = LoadOption::decode(&vars.read_var("Boot0000").unwrap().unwrap()).unwrap();
        assert_eq!(new.description, "ironclone restored");
        assert_eq!(new.hard_drive(), Some(&hd));
        assert_eq!(new.file(), Some("\\EFI\\debian\\grubx64.efi"));
        assert!(lines[0]
            .starts_with("NVRAM: removed stale Boot0000 \"old disk\" -> HD(1,GPT,01010101-"));
        assert!(
            lines[2].starts_with("NVRAM: Boot0000 ")
                && lines[2].contains("2 stale entries removed")
        );
    }

    #[test]
    fn nvram_removes_nothing_when_a_disk_is_unreadable() {
        let (_dir, vars) = machine();
        let layout = layout_with(&[guid(3)]);
        let lines = repair_nvram(
            &vars,
            &layout,
            HardDrive::gpt(1, 2048, 2048, guid(3)),
            "\\EFI\\BOOT\\BOOTX64.EFI",
            &Err("/dev/sdb: I/O error".into()),
        )
        .unwrap();
        assert_eq!(numbers(&vars), vec![0, 1, 2, 3, 4]);
        assert_eq!(vars.boot_order().unwrap(), vec![4, 0, 1, 2, 3]);
        assert!(
            lines[0].contains("stale entries kept") && lines[0].contains("/dev/sdb: I/O error")
        );
        assert!(lines[1].contains("0 stale entries removed"));
    }
}
