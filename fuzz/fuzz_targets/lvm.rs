//! Fuzzes the LVM2 readers: the PV label, metadata area header and ring buffer, the
//! metadata text parser and the VG decoder, and the used map through each LV's
//! segments. Any bytes must give a map or an error, never a panic, hang or huge
//! allocation.
#![no_main]

use ironclone::device::MemDevice;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The text parser on its own: seeds include lvm2's metadata text.
    if let Ok(t) = std::str::from_utf8(data) {
        let _ = ironclone::ondisk::lvm::VolumeGroup::parse(t);
    }
    let dev = MemDevice::from_vec(data.to_vec(), 512);
    let _ = ironclone::usedmap::map_lvm(&dev);
});
