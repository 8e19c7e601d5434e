//! The rescue owner maps (ext inode tables and directories, NTFS MFT records) on arbitrary
//! bytes: they read a damaged disk by design, so any bytes must give a report or an error,
//! never a panic, hang or huge allocation. The whole device is marked unreadable so every
//! file and structure found is looked up, and a 4096-byte-sector device is tried as well
//! (the NTFS fixup stride must not follow the device's sector size).
#![no_main]

use ironclone::device::MemDevice;
use ironclone::rescue::BadRange;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bad = [BadRange {
        offset: 0,
        len: data.len() as u64,
    }];
    for sector_size in [512, 4096] {
        let dev = MemDevice::from_vec(data.to_vec(), sector_size);
        let _ = ironclone::rescue::owners::map_owners(&dev, &bad);
    }
});
