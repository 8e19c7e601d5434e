//! The deploy stream decoder (src/deploy/stream.rs) on arbitrary bytes, as a client reads
//! them from the network: a value or an error, never a panic, hang or huge allocation. A
//! stream that decodes whole also has its manifest unpacked and parsed.
#![no_main]

use ironclone::deploy::stream::{Decoder, Item};
use ironclone::repo::{transfer, Manifest};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok((mut d, h)) = Decoder::new(data) else {
        return;
    };
    loop {
        match d.next_item() {
            Ok(Item::Record(r)) => {
                let _ = (r.id, r.member_lens.len(), r.data.len());
            }
            Ok(Item::Manifest(m)) => {
                if let Ok(json) = transfer::manifest_json(&h.image, m) {
                    let _ = Manifest::parse(&h.image, Path::new("fuzz-input"), &json);
                }
                return;
            }
            Err(_) => return,
        }
    }
});
