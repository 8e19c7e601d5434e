//! Opening the volume: the main boot sector decoded and its boot region's checksum
//! verified. The backup region is copied as it is but not required to be valid:
//! `fsck.exfat` repairs it from the main one.

use super::ExfatError;
use crate::device::BlockDevice;
use crate::ondisk::exfat::{boot_checksum, boot_sector, BootSector, BOOT_REGION_SECTORS};

pub fn open(dev: &dyn BlockDevice) -> Result<BootSector, ExfatError> {
    let first = read(dev, 0, boot_sector::LEN, "main boot sector")?;
    let bs = BootSector::parse(&first)?;
    let ss = bs.sector_size();
    // At most 12 sectors of 4 KiB.
    let len = (BOOT_REGION_SECTORS * ss) as usize;
    let region = read(dev, 0, len, "main boot region")?;
    boot_checksum::verify(&region, ss as usize, "main")?;
    Ok(bs)
}

pub fn read(
    dev: &dyn BlockDevice,
    offset: u64,
    len: usize,
    what: &'static str,
) -> Result<Vec<u8>, ExfatError> {
    dev.read_vec(offset, len)
        .map_err(|source| ExfatError::Device {
            what,
            offset,
            source,
        })
}
