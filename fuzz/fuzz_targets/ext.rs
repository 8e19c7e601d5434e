//! The ext used-block map on arbitrary bytes: must return Ok or Err, never panic, hang
//! or allocate without bound.
#![no_main]

use ironclone::device::MemDevice;
use ironclone::usedmap::map_ext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dev = MemDevice::from_vec(data.to_vec(), 512);
    let _ = map_ext(&dev);
});
