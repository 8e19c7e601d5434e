//! The partclone image reader (header, bitmap, data checksums) on arbitrary bytes: must
//! return Ok or Err, never panic, hang or allocate without bound.
#![no_main]

use ironclone::foreign::partclone::PartcloneImage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut img) = PartcloneImage::open("fuzz", data) {
        let _ = img.bitmap().runs().take(1000).count();
        let _ = img.verify();
    }
});
