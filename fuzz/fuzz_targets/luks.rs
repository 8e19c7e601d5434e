//! The LUKS1/LUKS2 header decoder (binary headers and the LUKS2 JSON area) on arbitrary
//! bytes: must return Ok or Err, never panic, hang or allocate without bound.
#![no_main]

use ironclone::device::MemDevice;
use ironclone::ondisk::luks::read_header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dev = MemDevice::from_vec(data.to_vec(), 512);
    if let Ok(h) = read_header(&dev) {
        let _ = h.data_len(data.len() as u64);
    }
});
