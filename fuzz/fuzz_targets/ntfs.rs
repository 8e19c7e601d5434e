//! Fuzzes the NTFS used-map parser: any bytes must give a map or an error, never a
//! panic, hang or huge allocation.
#![no_main]

use ironclone::device::MemDevice;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dev = MemDevice::from_vec(data.to_vec(), 512);
    let _ = ironclone::usedmap::ntfs::map_ntfs(&dev);
});
