//! The ntfsclone image reader (header, gap and cluster commands) on arbitrary bytes: Ok
//! or Err, never a panic, hang or allocation beyond the header's capped cluster size.
#![no_main]

use ironclone::foreign::ntfsclone::NtfscloneImage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut img) = NtfscloneImage::open("fuzz", data) {
        let mut buf = Vec::new();
        // Every command consumes at least one input byte, so the walk ends; the bound
        // only keeps one input's time small.
        for _ in 0..100_000 {
            match img.next_cluster(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
});
