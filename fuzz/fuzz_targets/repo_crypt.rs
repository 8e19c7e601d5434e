//! Encrypted-repository decoding on arbitrary bytes: a key slot file (JSON, KDF
//! parameters, hex), a sealed object (nonce, ciphertext, tag), a pack scanned with keys
//! and a sealed stream opened a segment at a time. Each gives a value or an error,
//! never a panic, hang or huge allocation. A slot is only unwrapped when its Argon2
//! parameters are tiny: the accepted bounds (4 GiB, 64 passes) are for real slots, not
//! for thousands of runs a second.
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
    // A sealed stream opened a segment at a time, as a restore reads a manifest.
    let read_at = Box::new(|buf: &mut [u8], at: u64| {
        let at = usize::try_from(at).unwrap_or(usize::MAX);
        match data.get(at..at.saturating_add(buf.len())) {
            Some(b) => {
                buf.copy_from_slice(b);
                Ok(())
            }
            None => Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
        }
    });
    if let Ok(Some(mut r)) = keys.open_image_stream("image", data.len() as u64, read_at) {
        let _ = std::io::Read::read_to_end(&mut r, &mut Vec::new());
    }
    let _ = repo::scan_pack_bytes(Path::new("fuzz-input"), data, None, DEFAULT_CHUNK_SIZE, Some(&keys));
});
