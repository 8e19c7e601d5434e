//! The BCD reader on arbitrary bytes: a BCD comes from an image that may be damaged, so
//! any hive must give its device elements or an error. nt-hive is called behind
//! `catch_unwind` in bcd.rs, but libFuzzer's panic hook aborts on any panic, caught or
//! not: a crash here is a panic inside nt-hive that bcd.rs must keep it from reaching.
#![no_main]

use ironclone::bootfix::bcd;
use libfuzzer_sys::fuzz_target;

/// The disk signature the seeds' device elements carry (fuzz/seeds/bcd.sh).
const SIGNATURE: u32 = 0x1234_abcd;

fuzz_target!(|data: &[u8]| {
    if let Ok(refs) = bcd::device_refs(data, SIGNATURE) {
        for r in refs.iter().take(4) {
            if let Ok(element) = bcd::element_data(data, &r.object, &r.element) {
                let _ = bcd::repoint(&element, r.at, r.offset.wrapping_add(1 << 20), 1);
            }
        }
    }
});
