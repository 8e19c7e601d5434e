//! Probing on arbitrary bytes: `probe::probe` runs on every disk and partition the live
//! system sees, so any bytes must give a kind or nothing, never a panic, hang or huge
//! allocation. Both common logical sector sizes, since some probes scale by it.
#![no_main]

use ironclone::device::MemDevice;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for sector_size in [512, 4096] {
        let dev = MemDevice::from_vec(data.to_vec(), sector_size);
        let _ = ironclone::probe::probe(&dev);
    }
});
