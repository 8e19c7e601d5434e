//! Encrypted-repository decoding on arbitrary bytes: a key slot file (JSON, KDF
//! parameters, hex), a sealed object (nonce, ciphertext, tag) and a pack scanned with
//! keys. Each gives a value or an error, never a panic, hang or huge allocation. A slot
//! is only unwrapped when its Argon2 parameters are tiny: the accepted bounds (4 GiB,
//! 64 passes) are for real slots, not for thousands of runs a second.
#![no_main]

use ironclone::repo::crypto::{slot, Aad, Keys};
use ironclone::repo::{self, PackId, DEFAULT_CHUNK_SIZE};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let keys = Keys::from_master(&[7; 32]);
    if let Ok(s) = slot::parse("fuzz", data) {
        let slot::Kdf::Argon2id { m_kib, t, p, .. } = &s.kdf;
        if *m_kib <= 64 && *t <= 2 && *p <= 2 {
            let _ = slot::unwrap("repo", &s, b"pass");
        }
    }
    let _ = keys.open(&Aad::index(&PackId([2; 32])), data);
    let _ = keys.open(&Aad::image("image"), data);
    let _ = repo::scan_pack_bytes(Path::new("fuzz-input"), data, None, DEFAULT_CHUNK_SIZE, Some(&keys));
});
