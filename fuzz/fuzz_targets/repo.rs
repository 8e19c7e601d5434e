//! Repository decoding on arbitrary bytes: a pack (record framing, CRC, zstd, blake3;
//! read whole and a window at a time, which must agree), an index file and a manifest,
//! as read from a repository that may be damaged or not ours.
//! Each gives a value or an error, never a panic, hang or huge allocation. The input is
//! taken as all three; a manifest that deserialises is also resealed, so its checks past
//! the root hash (chunk lists, area sizes) see fuzzed values too. The manifest is read
//! both ways: whole, and streamed as a restore reads it (chunk lists to a scratch file).
#![no_main]

use ironclone::repo::{self, Manifest, DEFAULT_CHUNK_SIZE};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz-input");
    let whole = repo::scan_pack_bytes(path, data, None, DEFAULT_CHUNK_SIZE, None);
    // As verify reads a pack, a window at a time: the same records, damage and name.
    // The window from the last byte: the first ones are the pack header's.
    let window = 1 + usize::from(data.last().copied().unwrap_or(0)) * 13;
    let windowed =
        repo::scan_pack_bytes_windowed(path, data, window, None, DEFAULT_CHUNK_SIZE, None);
    assert_eq!(whole.good, windowed.good, "window {window}");
    assert_eq!(whole.bad, windowed.bad, "window {window}");
    assert_eq!(whole.name_matches, windowed.name_matches, "window {window}");
    let _ = repo::parse_index_file(path, data);
    let _ = Manifest::parse("image", path, data);
    // As a restore reads it: streamed, its chunk lists to a scratch file.
    let _ = repo::load_manifest_spilled("image", path, data, &std::env::temp_dir());
    if let Ok(mut m) = serde_json::from_slice::<Manifest>(data) {
        m.seal();
        if let Ok(body) = serde_json::to_vec(&m) {
            let name = m.name.clone();
            if let Ok(m) = Manifest::parse(&name, path, &body) {
                let _ = m.data_bytes();
                let _ = m.damage_lines();
                let _ = m.chunk_ids().count();
            }
        }
    }
});
