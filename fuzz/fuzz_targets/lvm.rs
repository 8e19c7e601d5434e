//! Fuzzes the LVM2 readers: the PV label, metadata area header and ring buffer, the
//! metadata text parser and the VG decoder, and the used map through each LV's
//! segments. Any bytes must give a map or an error, never a panic, hang or huge
//! allocation. Text that parses must read back the same once written out (what a
//! resizing restore hands to vgcfgrestore), and relaying it out must not panic.
#![no_main]

use ironclone::device::MemDevice;
use ironclone::ondisk::lvm::relayout::{relayout, LvPlace, NewPv};
use ironclone::ondisk::lvm::text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The text parser on its own: seeds include lvm2's metadata text.
    if let Ok(t) = std::str::from_utf8(data) {
        let _ = ironclone::ondisk::lvm::VolumeGroup::parse(t);
        if let Ok(tree) = text::parse(t) {
            assert_eq!(text::parse(&tree.emit()).ok(), Some(tree));
        }
        let new = NewPv {
            pv_key: "pv0".into(),
            seqno: 7,
            dev_size: 1 << 20,
            pe_count: 100,
            lvs: vec![LvPlace {
                name: "root".into(),
                first_pe: 0,
                extents: 10,
            }],
            vg_id: None,
            pv_id: Some("x".into()),
        };
        if let Ok(out) = relayout(t, &new) {
            assert!(text::parse(&out).is_ok());
        }
    }
    let dev = MemDevice::from_vec(data.to_vec(), 512);
    let _ = ironclone::usedmap::map_lvm(&dev);
});
