//! The NVRAM half of the boot repair: a `Boot####` entry for the restored ESP, first
//! in BootOrder, and the removal of entries whose partition exists nowhere any more.
//!
//! The firmware finds an entry's partition by its HD() node: on GPT by the unique
//! partition GUID, on MBR by the disk signature (0x1B8) with the partition's number,
//! start and size. A restore moves the ESP (new start/size) and `--new-ids` changes
//! the GUIDs or the signature, so the old entries point nowhere and a new one is
//! needed. What counts as "nowhere" must be decided against every disk of the
//! machine, or a second disk's Windows entry is lost with the restore of the first.

use super::ImagingError;
use crate::bootfix::efi_load_option::{HardDrive, LoadOption, PartitionId};
use crate::bootfix::efivars::EfiVars;
use crate::device::{open_path, Access};
use crate::discover::{self, SysPaths};
use crate::table::{self, DiskLayout, TableKind};
use nix::sys::stat;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why no entry can name the restored ESP; the entry is then not written (and the
/// plan says so) rather than one that points at the wrong partition.
#[derive(Debug, Error)]
enum NoHardDrive {
    #[error("partition {0} is not in the written table")]
    NotInTable(u32),
    #[error("partition {0} has no GPT partition GUID")]
    NoGuid(u32),
    // Firmware numbers logical partitions by walking the EBR chain its own way (EDK2
    // and others differ), so an entry for one could name the wrong partition.
    #[error("partition {0} is a logical MBR partition, which firmware does not number reliably")]
    Logical(u32),
    #[error("the MBR has no disk signature")]
    NoSignature,
    #[error("the disk has no partition table")]
    NoTable,
}

/// Which other disk could not be read while collecting the partitions that exist;
/// its partitions may well exist, so no entry is removed.
#[derive(Debug, Error)]
pub(super) enum OtherDisksUnknown {
    #[error("{}: {source}", path.display())]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Discover(#[from] discover::DiscoverError),
    #[error(transparent)]
    Open(#[from] crate::device::DeviceError),
    #[error("{}: {source}", path.display())]
    Table {
        path: PathBuf,
        #[source]
        source: table::TableError,
    },
}

/// Writes the NVRAM entry for the ESP `number` of the restored disk `layout` at
/// `target_path`, when this machine runs on UEFI and the target is one of its disks.
pub(super) fn nvram_for_esp(
    layout: &DiskLayout,
    number: u32,
    loader: &str,
    target_path: &Path,
) -> Result<Vec<String>, ImagingError> {
    let Some(vars) = EfiVars::system() else {
        return Ok(vec![
            "NVRAM: not running on UEFI (no efivarfs); entry not written".into(),
        ]);
    };
    // An image file is not a disk this firmware can boot: an entry for it would go
    // first in the machine's own BootOrder, and the cleanup would take the machine's
    // own entries for stale.
    if !is_block_device(target_path) {
        return Ok(vec![format!(
            "NVRAM: {} is an image file, not a disk of this machine; entry not written",
            target_path.display()
        )]);
    }
    let hd = match esp_hard_drive(layout, number) {
        Ok(hd) => hd,
        Err(why) => return Ok(vec![format!("NVRAM: {why}; entry not written")]),
    };
    let others = other_disks_ids(target_path);
    repair_nvram(&vars, layout, hd, loader, &others)
}

/// The HD() node the firmware will see for partition `number` of the restored disk:
/// its start and size in logical blocks as the written table has them (the table the
/// firmware reads, rather than the plan's byte offsets divided again).
fn esp_hard_drive(layout: &DiskLayout, number: u32) -> Result<HardDrive, NoHardDrive> {
    let part = layout
        .partitions
        .iter()
        .find(|q| q.number == number)
        .ok_or(NoHardDrive::NotInTable(number))?;
    let (start, sectors) = (part.start_lba.get(), part.sectors());
    match layout.kind {
        TableKind::Gpt => part
            .uuid
            .map(|g| HardDrive::gpt(number, start, sectors, g))
            .ok_or(NoHardDrive::NoGuid(number)),
        TableKind::Mbr if part.logical => Err(NoHardDrive::Logical(number)),
        TableKind::Mbr => layout
            .disk_signature
            .map(|sig| HardDrive::mbr(number, start, sectors, sig))
            .ok_or(NoHardDrive::NoSignature),
        TableKind::None => Err(NoHardDrive::NoTable),
    }
}

fn is_block_device(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

/// What names a partition on every disk of this machine except the target: GPT
/// partition GUIDs and MBR disk signatures (the protective MBR's too, which can only
/// keep more entries), so that the cleanup removes only entries whose partition
/// exists nowhere (a second disk's Windows or Linux entry must survive a restore onto
/// the first). `Err` says which disk could not be read: its partitions may well exist.
fn other_disks_ids(target_path: &Path) -> Result<Vec<PartitionId>, OtherDisksUnknown> {
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(target_path)
        .map_err(|source| OtherDisksUnknown::Stat {
            path: target_path.to_path_buf(),
            source,
        })?
        .rdev();
    let disks = discover::list_disks(&SysPaths::default())?;
    let mut out = Vec::new();
    for d in disks {
        if u64::from(d.major) == stat::major(rdev) && u64::from(d.minor) == stat::minor(rdev) {
            continue;
        }
        let dev = open_path(&d.path, Access::ReadOnly)?;
        let l = table::read_layout(&dev).map_err(|source| OtherDisksUnknown::Table {
            path: d.path.clone(),
            source,
        })?;
        out.extend(
            l.partitions
                .iter()
                .filter_map(|q| q.uuid.map(PartitionId::Gpt)),
        );
        out.extend(l.disk_signature.map(PartitionId::Mbr));
    }
    Ok(out)
}

/// Whether the partition an HD() node names is on the restored disk, where it is now.
/// GPT: a partition with that GUID at that start and size. MBR: the disk signature is
/// this disk's and its partition of that number has that start and size.
fn on_restored_disk(layout: &DiskLayout, hd: &HardDrive, id: PartitionId) -> bool {
    let here = |q: &&table::Partition| {
        q.start_lba.get() == hd.partition_start && q.sectors() == hd.partition_size
    };
    match id {
        PartitionId::Gpt(g) => layout
            .partitions
            .iter()
            .filter(|q| q.uuid == Some(g))
            .any(|q| here(&q)),
        PartitionId::Mbr(sig) => {
            layout.kind == TableKind::Mbr
                && layout.disk_signature == Some(sig)
                && layout
                    .partitions
                    .iter()
                    .filter(|q| q.number == hd.partition_number)
                    .any(|q| here(&q))
        }
    }
}

/// Writes the Boot#### entry `hd`/File(`loader`) first in BootOrder, after removing
/// the entries whose partition is neither on the restored disk (`layout`, see
/// `on_restored_disk`) nor on another disk of the machine (`other_disks`: the same
/// GUID, or the same MBR disk signature; when that is unknown, none are removed).
pub(super) fn repair_nvram(
    vars: &EfiVars,
    layout: &DiskLayout,
    hd: HardDrive,
    loader: &str,
    other_disks: &Result<Vec<PartitionId>, OtherDisksUnknown>,
) -> Result<Vec<String>, ImagingError> {
    let mut lines = Vec::new();
    let removed = match other_disks {
        Ok(others) => vars.remove_stale_where(|hd, id| {
            !others.contains(&id) && !on_restored_disk(layout, hd, id)
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
    use crate::table::{PartType, Partition};
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
            &Ok(vec![PartitionId::Gpt(guid(2))]),
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
            &Err(OtherDisksUnknown::Open(crate::device::DeviceError::Io {
                device: "/dev/sdb".into(),
                offset: 512,
                len: 512,
                source: std::io::Error::from_raw_os_error(5),
            })),
        )
        .unwrap();
        assert_eq!(numbers(&vars), vec![0, 1, 2, 3, 4]);
        assert_eq!(vars.boot_order().unwrap(), vec![4, 0, 1, 2, 3]);
        assert!(
            lines[0].contains("stale entries kept")
                && lines[0].contains("/dev/sdb: I/O error at byte 512"),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("0 stale entries removed"));
    }

    const SIG: u32 = 0xA1B2_C3D4;

    /// A restored MBR disk with signature `sig`: partition 1 (the ESP) at LBA 2048,
    /// 2048 sectors, and a logical partition 5.
    fn mbr_layout(sig: u32) -> DiskLayout {
        let mut l = layout_with(&[guid(9), guid(9)]);
        l.kind = TableKind::Mbr;
        l.disk_signature = Some(sig);
        for p in &mut l.partitions {
            p.uuid = None;
            p.ptype = PartType::Mbr(0xEF);
        }
        l.partitions[1].number = 5;
        l.partitions[1].logical = true;
        l
    }

    fn seed_hd(vars: &EfiVars, number: u16, desc: &str, hd: HardDrive) {
        let o = LoadOption::new_hd_file(desc, hd, "\\EFI\\x\\grubx64.efi");
        vars.write_var(&format!("Boot{number:04X}"), &o.encode().unwrap())
            .unwrap();
    }

    /// Boot0000: the old disk's signature (a restore with --new-ids): gone.
    /// Boot0001: another MBR disk of the machine: kept. Boot0002: the restored
    /// signature at the ESP's old place: gone. Boot0003: the restored signature with
    /// partition 1 where it is now: kept. Boot0004: a GPT partition on another disk:
    /// kept. Boot0005: the restored signature, a partition number it does not have.
    #[test]
    fn nvram_mbr_stale_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let vars = EfiVars::new(dir.path());
        seed_hd(
            &vars,
            0,
            "old signature",
            HardDrive::mbr(1, 2048, 2048, 0x1111_1111),
        );
        seed_hd(
            &vars,
            1,
            "other mbr disk",
            HardDrive::mbr(1, 2048, 2048, 0x2222_2222),
        );
        seed_hd(
            &vars,
            2,
            "esp before the move",
            HardDrive::mbr(1, 63, 2048, SIG),
        );
        seed_hd(
            &vars,
            3,
            "esp where it is",
            HardDrive::mbr(1, 2048, 2048, SIG),
        );
        seed_hd(&vars, 4, "gpt disk", HardDrive::gpt(2, 2048, 2048, guid(2)));
        seed_hd(
            &vars,
            5,
            "no such partition",
            HardDrive::mbr(3, 2048, 2048, SIG),
        );
        vars.set_boot_order(&[0, 1, 2, 3, 4, 5]).unwrap();
        let layout = mbr_layout(SIG);
        let hd = esp_hard_drive(&layout, 1).unwrap();
        assert_eq!(hd, HardDrive::mbr(1, 2048, 2048, SIG));
        let others = Ok(vec![
            PartitionId::Mbr(0x2222_2222),
            PartitionId::Gpt(guid(2)),
        ]);
        let lines = repair_nvram(
            &vars,
            &layout,
            hd.clone(),
            "/EFI/debian/grubx64.efi",
            &others,
        )
        .unwrap();
        assert!(lines[0].starts_with(
            "NVRAM: removed stale Boot0000 \"old signature\" -> HD(1,MBR,0x11111111,0x800,0x800)"
        ), "{lines:?}");
        assert!(lines[1].contains("Boot0002"), "{lines:?}");
        assert!(lines[2].contains("Boot0005"), "{lines:?}");
        assert!(lines[3].contains("3 stale entries removed"), "{lines:?}");
        assert_eq!(numbers(&vars), vec![0, 1, 3, 4]);
        assert_eq!(vars.boot_order().unwrap(), vec![0, 1, 3, 4]);
        let new = LoadOption::decode(&vars.read_var("Boot0000").unwrap().unwrap()).unwrap();
        assert_eq!(new.hard_drive(), Some(&hd));
        assert_eq!(new.file(), Some("\\EFI\\debian\\grubx64.efi"));
    }

    #[test]
    fn nvram_mbr_same_signature_on_another_disk_keeps_its_entries() {
        // A clone without --new-ids beside its original: the signature is on both
        // disks, so an entry at the ESP's old place may well be the original's.
        let dir = tempfile::tempdir().unwrap();
        let vars = EfiVars::new(dir.path());
        seed_hd(&vars, 0, "original", HardDrive::mbr(1, 63, 2048, SIG));
        let layout = mbr_layout(SIG);
        let hd = esp_hard_drive(&layout, 1).unwrap();
        let lines = repair_nvram(
            &vars,
            &layout,
            hd,
            "/EFI/BOOT/BOOTX64.EFI",
            &Ok(vec![PartitionId::Mbr(SIG)]),
        )
        .unwrap();
        assert_eq!(numbers(&vars), vec![0, 1], "{lines:?}");
        assert!(lines[0].contains("0 stale entries removed"));
    }

    #[test]
    fn esp_hard_drive_refuses_what_firmware_cannot_match() {
        let layout = mbr_layout(SIG);
        assert!(matches!(
            esp_hard_drive(&layout, 5),
            Err(NoHardDrive::Logical(5))
        ));
        assert!(matches!(
            esp_hard_drive(&layout, 7),
            Err(NoHardDrive::NotInTable(7))
        ));
        let mut nosig = mbr_layout(SIG);
        nosig.disk_signature = None;
        assert!(matches!(
            esp_hard_drive(&nosig, 1),
            Err(NoHardDrive::NoSignature)
        ));
        let gpt = layout_with(&[guid(3)]);
        assert_eq!(
            esp_hard_drive(&gpt, 1).unwrap(),
            HardDrive::gpt(1, 2048, 2048, guid(3))
        );
        // An MBR entry never matches a GPT disk's partitions.
        assert!(!on_restored_disk(
            &gpt,
            &HardDrive::mbr(1, 2048, 2048, SIG),
            PartitionId::Mbr(SIG)
        ));
    }
}
