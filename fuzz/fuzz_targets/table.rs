//! Partition-table reading (protective/hybrid MBR, both GPT copies, the EBR chain) on
//! arbitrary bytes, on 512- and 4096-byte sectors: a layout or an error, never a panic,
//! hang or huge allocation. What the planner then asks of a layout is exercised too.
#![no_main]

use ironclone::device::MemDevice;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for sector_size in [512, 4096] {
        let dev = MemDevice::from_vec(data.to_vec(), sector_size);
        if let Ok(layout) = ironclone::table::read_layout(&dev) {
            let _ = layout.disk_sectors();
            let _ = layout.overlaps();
            let _ = layout.last_used_lba();
            for p in &layout.partitions {
                let _ = p.sectors();
                let _ = p.byte_range(sector_size);
                let _ = p.ptype.code();
                let _ = p.ptype.name();
            }
        }
    }
});
