//! exFAT boot sectors carry the partition's start too (`PartitionOffset`, byte 64, in
//! the volume's sectors; 0 means "ignore"). Windows' drivers ignore it, but it is
//! covered by the boot checksum that every checker verifies, so a restore that moved
//! an exFAT partition sets it and re-seals the checksum sector, in the main boot
//! region and in the backup region when that one was valid.

use super::BootfixError;
use crate::device::BlockDevice;
use crate::ondisk::exfat::boot_checksum::{seal, verify};
use crate::ondisk::exfat::boot_sector::PARTITION_OFFSET;
use crate::ondisk::exfat::{BootSector, BOOT_REGION_SECTORS};

/// What `fix_exfat_partition_offset` changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExfatGeometryFix {
    pub old_partition_offset: u64,
    pub new_partition_offset: u64,
    pub backup_patched: bool,
}

/// Sets `PartitionOffset` to the sector (in the volume's sector size) where the
/// partition now starts, `start_byte` on the disk. A volume whose field is 0 keeps
/// it (nothing depends on it there). Writes nothing when the main boot region is not
/// a valid exFAT one, or when the start is not on a volume sector.
pub fn fix_exfat_partition_offset(
    part: &dyn BlockDevice,
    start_byte: u64,
) -> Result<ExfatGeometryFix, BootfixError> {
    let device = part.describe();
    let not = |why: String| BootfixError::NotRecognised {
        device: device.clone(),
        what: "exFAT main boot region",
        lba: 0,
        why,
    };
    let first = part.read_vec(0, crate::ondisk::exfat::boot_sector::LEN)?;
    let bs = BootSector::parse(&first).map_err(|e| not(e.to_string()))?;
    let ss = bs.sector_size();
    // At most 12 sectors of 4 KiB.
    let len = (BOOT_REGION_SECTORS * ss) as usize;
    let mut main = part.read_vec(0, len)?;
    verify(&main, ss as usize, "main").map_err(|e| not(e.to_string()))?;
    if start_byte % ss != 0 {
        return Err(BootfixError::BadField {
            device,
            what: "exFAT main boot sector",
            field: "PartitionOffset",
            value: start_byte,
            why: format!("the partition start is not on a {ss}-byte sector"),
        });
    }
    let new = start_byte / ss;
    let unchanged = ExfatGeometryFix {
        old_partition_offset: bs.partition_offset,
        new_partition_offset: bs.partition_offset,
        backup_patched: false,
    };
    if bs.partition_offset == 0 || bs.partition_offset == new {
        return Ok(unchanged);
    }
    let backup_at = BOOT_REGION_SECTORS * ss;
    let mut backup = part.read_vec(backup_at, len)?;
    let backup_ok = verify(&backup, ss as usize, "backup").is_ok();
    let patch = |region: &mut Vec<u8>| -> Result<(), BootfixError> {
        super::put(
            region,
            PARTITION_OFFSET,
            &new.to_le_bytes(),
            "PartitionOffset",
        )?;
        seal(region, ss as usize).ok_or(BootfixError::Truncated {
            field: "boot checksum sector",
            at: len,
        })
    };
    if backup_ok {
        patch(&mut backup)?;
        part.write_at(backup_at, &backup)?;
    }
    patch(&mut main)?;
    part.write_at(0, &main)?;
    part.flush()?;
    Ok(ExfatGeometryFix {
        old_partition_offset: bs.partition_offset,
        new_partition_offset: new,
        backup_patched: backup_ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;
    use crate::ondisk::exfat::boot_sector::tests::sample;

    fn volume(partition_offset: u64) -> MemDevice {
        let mut v = vec![0u8; 64 << 20];
        let mut b = sample();
        b[64..72].copy_from_slice(&partition_offset.to_le_bytes());
        v[..512].copy_from_slice(&b);
        seal(&mut v[..512 * 12], 512).unwrap();
        let (main, rest) = v.split_at_mut(512 * 12);
        rest[..512 * 12].copy_from_slice(main);
        MemDevice::from_vec(v, 512)
    }

    #[test]
    fn moves_the_offset_and_reseals_both_regions() {
        let dev = volume(2048);
        let fix = fix_exfat_partition_offset(&dev, 40 << 20).unwrap();
        assert_eq!(fix.old_partition_offset, 2048);
        assert_eq!(fix.new_partition_offset, 81920);
        assert!(fix.backup_patched);
        let v = dev.into_vec();
        for at in [0, 512 * 12] {
            let r = &v[at..at + 512 * 12];
            assert!(verify(r, 512, "main").is_ok());
            assert_eq!(BootSector::parse(r).unwrap().partition_offset, 81920);
        }
    }

    #[test]
    fn zero_stays_zero_and_a_bad_region_is_not_written() {
        let dev = volume(0);
        let fix = fix_exfat_partition_offset(&dev, 40 << 20).unwrap();
        assert_eq!(fix.new_partition_offset, 0);
        let mut v = dev.into_vec();
        v[600] ^= 1;
        let before = v.clone();
        let dev = MemDevice::from_vec(v, 512);
        assert!(fix_exfat_partition_offset(&dev, 40 << 20).is_err());
        assert!(dev.into_vec() == before);
    }
}
