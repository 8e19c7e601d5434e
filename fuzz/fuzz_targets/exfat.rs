//! Fuzzes the exFAT decoders and used map, the probe that shares them, and the
//! PartitionOffset repair (on the in-memory copy): any bytes must give a result or
//! an error, never a panic, hang or huge allocation.
#![no_main]

use ironclone::device::MemDevice;
use ironclone::ondisk::exfat::{BootSector, DirEntry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = BootSector::parse(data);
    for (i, e) in data.chunks(32).take(64).enumerate() {
        let _ = DirEntry::parse(e, (i * 32) as u64, 1 << 20);
    }
    let dev = MemDevice::from_vec(data.to_vec(), 512);
    let _ = ironclone::usedmap::map_exfat(&dev);
    let _ = ironclone::probe::probe(&dev);
    let _ = ironclone::bootfix::exfat_geometry::fix_exfat_partition_offset(&dev, 1 << 20);
});
