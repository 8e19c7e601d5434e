//! The Clonezilla folder's text parsers (sfdisk dump, name lists, dev-fs.list, the
//! clonezilla-img log, parted output, luks-dev.list, lvm_vg_dev.list) on arbitrary
//! bytes: Ok or Err, never a panic.
#![no_main]

use ironclone::foreign::clonezilla::{lists, luks, lvm, SfdiskTable};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let p = Path::new("fuzz");
    let _ = SfdiskTable::parse(p, &text);
    let _ = lists::names(p, &text);
    let _ = lists::dev_fs(p, &text);
    let _ = lists::created(&text);
    let _ = lists::parted_sectors(&text);
    let _ = luks::parse_list(p, &text);
    let _ = lvm::vg_dev(p, &text);
});
