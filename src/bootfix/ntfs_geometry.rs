//! NTFS keeps its partition's start LBA in the boot sector ("hidden sectors", 0x1C),
//! and Windows' boot code uses it to find the volume: a partition restored to another
//! start with a stale value stops Windows with BCD error 0xc0000225. ntfsresize fixes
//! the total sectors (0x28) and the backup boot sector but not 0x1C, so the restore
//! sets it here, in the primary and in the backup boot sector (the copy of sector 0 at
//! sector `total_sectors`, just past the volume, which partclone#69 used to drop).

use super::{put, BootfixError};
use crate::device::BlockDevice;
use crate::ondisk::ntfs::boot_sector::{HIDDEN_SECTORS_OFFSET, NUMBER_OF_SECTORS_OFFSET};
use crate::ondisk::ntfs::{BootSector, DecodeError, Mode};

/// What `fix_ntfs_geometry` changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NtfsGeometryFix {
    pub old: BootSector,
    pub new: BootSector,
    /// Byte offset (inside the partition) where the backup boot sector was written.
    pub backup_offset: u64,
    /// Whether a valid backup boot sector was found before the fix.
    pub backup_was_present: bool,
}

/// Decodes an NTFS boot sector the way the repair needs it: lenient, since only the
/// sector size and the volume size matter here, and a volume with, say, a damaged
/// `$MFT` location still boots Windows once its hidden sectors are right.
pub fn parse_ntfs_boot(sector: &[u8]) -> Result<BootSector, DecodeError> {
    BootSector::parse(sector, Mode::Lenient)
}

/// Sets hidden sectors to `hidden_sectors` (the partition's new start LBA) and, when
/// given, total sectors (only after the volume itself was resized, e.g. by
/// ntfsresize), in the primary boot sector and in the backup at sector
/// `total_sectors`. `part` is the partition (a `Window` on the disk). Writes nothing
/// when the primary boot sector is not NTFS or a value does not fit.
pub fn fix_ntfs_geometry(
    part: &dyn BlockDevice,
    hidden_sectors: u64,
    total_sectors: Option<u64>,
) -> Result<NtfsGeometryFix, BootfixError> {
    let device = part.describe();
    let first = part.read_vec(0, 512)?;
    let old = parse_ntfs_boot(&first).map_err(|e| BootfixError::NotRecognised {
        device: device.clone(),
        what: "NTFS boot sector",
        lba: 0,
        why: e.to_string(),
    })?;
    let bps = old.bytes_per_sector;
    // 256..=4096, checked by the parser.
    let sector_len = bps as usize;
    let mut primary = part.read_vec(0, sector_len)?;

    let new_hidden = u32::try_from(hidden_sectors).map_err(|_| BootfixError::BadField {
        device: device.clone(),
        what: "NTFS boot sector",
        field: "hidden_sectors",
        value: hidden_sectors,
        why: "does not fit the 32-bit field".into(),
    })?;
    let new_total = total_sectors.unwrap_or(old.number_of_sectors);
    let backup_offset = new_total.checked_mul(bps).ok_or(BootfixError::Overflow {
        what: "NTFS backup boot sector offset",
        a: new_total,
        b: bps,
    })?;
    if new_total == 0
        || backup_offset
            .checked_add(bps)
            .map_or(true, |end| end > part.size())
    {
        return Err(BootfixError::BadField {
            device,
            what: "NTFS boot sector",
            field: "total_sectors",
            value: new_total,
            why: format!(
                "the backup boot sector at byte {backup_offset} does not fit the {}-byte partition",
                part.size()
            ),
        });
    }
    let old_backup_offset = old.number_of_sectors.checked_mul(bps);
    let backup_was_present = match old_backup_offset {
        Some(off) if off.checked_add(bps).is_some_and(|end| end <= part.size()) => {
            parse_ntfs_boot(&part.read_vec(off, sector_len)?).is_ok()
        }
        _ => false,
    };

    put(
        &mut primary,
        HIDDEN_SECTORS_OFFSET,
        &new_hidden.to_le_bytes(),
        "hidden_sectors",
    )?;
    put(
        &mut primary,
        NUMBER_OF_SECTORS_OFFSET,
        &new_total.to_le_bytes(),
        "number_of_sectors",
    )?;
    // Backup first: if we stop half way, the primary still describes the old state
    // consistently and the repair can simply run again.
    part.write_at(backup_offset, &primary)?;
    // ntfsresize rounds the volume down to whole clusters and keeps its backup in the
    // partition's last sector, which is also where ntfsfix and Windows look for it;
    // a stale copy there (old hidden sectors) reads as a damaged alternate boot sector.
    let last = (part.size() / bps)
        .checked_sub(1)
        .and_then(|s| s.checked_mul(bps));
    if let Some(last) = last.filter(|&l| l != backup_offset && l > backup_offset) {
        part.write_at(last, &primary)?;
    }
    part.write_at(0, &primary)?;
    part.flush()?;
    Ok(NtfsGeometryFix {
        old,
        new: BootSector {
            hidden_sectors: new_hidden,
            number_of_sectors: new_total,
            ..old
        },
        backup_offset,
        backup_was_present,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{MemDevice, Window};
    use std::sync::Arc;

    fn boot_sector(hidden: u32, total: u64) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        s[0..3].copy_from_slice(&[0xEB, 0x52, 0x90]);
        s[3..11].copy_from_slice(b"NTFS    ");
        s[0x0B..0x0D].copy_from_slice(&512u16.to_le_bytes());
        s[0x0D] = 8;
        s[0x30..0x38].copy_from_slice(&4u64.to_le_bytes());
        s[0x40] = 0xF6;
        s[0x1C..0x20].copy_from_slice(&hidden.to_le_bytes());
        s[0x28..0x30].copy_from_slice(&total.to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    #[test]
    fn parses_and_rejects() {
        let g = parse_ntfs_boot(&boot_sector(2048, 1000)).unwrap();
        assert_eq!(
            (g.bytes_per_sector, g.hidden_sectors, g.number_of_sectors),
            (512, 2048, 1000)
        );
        let mut bad = boot_sector(2048, 1000);
        bad[3] = b'X';
        assert!(parse_ntfs_boot(&bad).is_err());
        let mut bad = boot_sector(2048, 0);
        assert!(parse_ntfs_boot(&bad).is_err());
        bad = boot_sector(2048, 10);
        bad[0x0B] = 3;
        assert!(parse_ntfs_boot(&bad).is_err());
        assert!(parse_ntfs_boot(&[0u8; 20]).is_err());
    }

    #[test]
    fn sets_primary_and_backup_on_a_partition_window() {
        // Partition at LBA 100 of a disk, 1001 sectors: volume 1000 sectors + backup.
        let disk = Arc::new(MemDevice::new(2048 * 512, 512));
        disk.write_at(100 * 512, &boot_sector(63, 1000)).unwrap();
        disk.write_at((100 + 1000) * 512, &boot_sector(63, 1000))
            .unwrap();
        let part = Window::new(disk.clone(), 100 * 512, 1001 * 512).unwrap();
        let fix = fix_ntfs_geometry(&part, 100, None).unwrap();
        assert!(fix.backup_was_present);
        assert_eq!(fix.old.hidden_sectors, 63);
        assert_eq!(fix.new.hidden_sectors, 100);
        assert_eq!(fix.backup_offset, 1000 * 512);
        let img = disk.snapshot();
        for at in [100 * 512, 1100 * 512] {
            let g = parse_ntfs_boot(&img[at..at + 512]).unwrap();
            assert_eq!((g.hidden_sectors, g.number_of_sectors), (100, 1000));
        }
    }

    #[test]
    fn writes_missing_backup_and_new_total() {
        let disk = MemDevice::new(4000 * 512, 512);
        disk.write_at(0, &boot_sector(2048, 1000)).unwrap();
        let fix = fix_ntfs_geometry(&disk, 4096, Some(3999)).unwrap();
        assert!(!fix.backup_was_present);
        let img = disk.snapshot();
        let b = parse_ntfs_boot(&img[3999 * 512..4000 * 512]).unwrap();
        assert_eq!((b.hidden_sectors, b.number_of_sectors), (4096, 3999));
        assert_eq!(&img[..512], &img[3999 * 512..4000 * 512]);
    }

    #[test]
    fn refuses_without_writing() {
        let disk = MemDevice::new(1000 * 512, 512);
        disk.write_at(0, &boot_sector(2048, 999)).unwrap();
        let before = disk.snapshot();
        assert!(
            fix_ntfs_geometry(&disk, 1 << 33, None).is_err(),
            "hidden > u32"
        );
        assert!(
            fix_ntfs_geometry(&disk, 5, Some(1000)).is_err(),
            "backup past the end"
        );
        assert!(
            fix_ntfs_geometry(&disk, 5, Some(u64::MAX)).is_err(),
            "overflow"
        );
        assert_eq!(disk.snapshot(), before);
        let empty = MemDevice::new(1000 * 512, 512);
        assert!(matches!(
            fix_ntfs_geometry(&empty, 5, None),
            Err(BootfixError::NotRecognised { .. })
        ));
    }
}
