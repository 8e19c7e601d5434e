//! Known answers pinning the format (docs/FORMAT.md, "Encryption"): a fixed master key,
//! nonce and salt give exactly these bytes; any change to the subkey contexts, AAD
//! strings, framing or slot JSON shows up here.

use super::slot::{self, Kdf};
use super::*;
use crate::repo::id::PackId;

const MASTER: [u8; 32] = [7; 32];
const NONCE: [u8; 24] = [9; 24];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn known_answer_record_index_image_and_chunk_id() {
    let k = Keys::from_master(&MASTER);
    assert_eq!(
        hex(&k.chunk_id(b"ironclone").0),
        "6637425a052698b638c0f3aa3b8e28340ccb0485b4f0523f9b4a39737917c253"
    );
    let rec = Aad::record(true, &ChunkId([1; 32]), 9, 1, 1);
    assert_eq!(hex(&k.seal_with_nonce(&rec, b"ironclone", &NONCE)), "0909090909090909090909090909090909090909090909090f250284017ccbb18ad072deff582f4b119a6b9fd4cfd40a4e");
    let idx = Aad::index(&PackId([2; 32]));
    assert_eq!(
        hex(&k.seal_with_nonce(&idx, b"{}", &NONCE)),
        "0909090909090909090909090909090909090909090909091d2ab52ef7c3dd22eda849a683f13ae0eb00"
    );
    let img = Aad::image("pc");
    assert_eq!(
        hex(&k.seal_with_nonce(&img, b"{}", &NONCE)),
        "0909090909090909090909090909090909090909090909091d2a135871af425d2d3363060c460c5cc1b5"
    );
    assert_eq!(
        hex(&k.config_mac(b"{}")),
        "8c7b16be4b8d6417b59fdd338f1073e97f2c06897294aa93eaf090335c14dd10"
    );
}

#[test]
fn known_answer_key_slot() {
    let s = slot::create_with(
        "repo-id",
        &MASTER,
        b"pass",
        "kat",
        (8, 1, 1),
        &[3; 16],
        Some((&NONCE, 1_800_000_000, "host")),
    )
    .unwrap();
    assert_eq!(s.wrapped, "090909090909090909090909090909090909090909090909672e842a28d55f63fedb612f11304c5af18d7a42cd4b27f9a7c967028f11613a2590b2ced8a90d35278a8ba90a90c541");
    let m = slot::unwrap("repo-id", &s, b"pass").unwrap();
    assert_eq!(*m, MASTER);
}

#[test]
fn every_flipped_byte_and_every_other_place_fails_to_open() {
    let k = Keys::from_master(&MASTER);
    let aad = Aad::index(&PackId([2; 32]));
    let sealed = k.seal(&aad, b"index body").unwrap();
    assert_eq!(k.open(&aad, &sealed).unwrap(), b"index body");
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x20;
        assert!(
            matches!(k.open(&aad, &bad), Err(CryptoError::Auth)),
            "byte {i}"
        );
    }
    let elsewhere = Aad::index(&PackId([3; 32]));
    assert!(matches!(
        k.open(&elsewhere, &sealed),
        Err(CryptoError::Auth)
    ));
    assert!(matches!(
        k.open(&Aad::image("x"), &sealed),
        Err(CryptoError::Auth)
    ));
    let other = Keys::from_master(&[8; 32]);
    assert!(matches!(other.open(&aad, &sealed), Err(CryptoError::Auth)));
    assert!(matches!(
        k.open(&aad, &sealed[..39]),
        Err(CryptoError::Short(39))
    ));
    // Two seals of the same bytes differ (random nonces).
    assert_ne!(k.seal(&aad, b"x").unwrap(), k.seal(&aad, b"x").unwrap());
    let mut v = b"in place".to_vec();
    k.seal_vec(&aad, &mut v).unwrap();
    assert_eq!(k.open(&aad, &v).unwrap(), b"in place");
}

#[test]
fn a_slot_opens_only_with_its_passphrase_repository_and_fields() {
    let s = slot::create("repo", &MASTER, b"right", "l", (8, 1, 1)).unwrap();
    assert_eq!(*slot::unwrap("repo", &s, b"right").unwrap(), MASTER);
    assert!(matches!(
        slot::unwrap("repo", &s, b"wrong"),
        Err(CryptoError::Auth)
    ));
    assert!(matches!(
        slot::unwrap("other", &s, b"right"),
        Err(CryptoError::Auth)
    ));
    let mut l = s.clone();
    l.label = "m".into();
    assert!(matches!(
        slot::unwrap("repo", &l, b"right"),
        Err(CryptoError::Auth)
    ));
    let mut k = s.clone();
    k.kdf = Kdf::Argon2id {
        m_kib: 1 << 30,
        t: 1,
        p: 1,
        salt: String::new(),
    };
    assert!(matches!(
        slot::unwrap("repo", &k, b"right"),
        Err(CryptoError::Kdf(_))
    ));
    let json = serde_json::to_vec(&s).unwrap();
    assert_eq!(slot::parse("a", &json).unwrap(), s);
    assert!(matches!(
        slot::parse("a", b"{"),
        Err(CryptoError::BadSlot { .. })
    ));
}

/// A manifest sealed as a stream of `segment`-byte segments with a fixed prefix.
fn stream_of(k: &Keys, name: &str, segment: u32, plain: &[u8]) -> Vec<u8> {
    stream_with(k, name, segment, [5; 16], plain)
}

fn stream_with(k: &Keys, name: &str, segment: u32, prefix: [u8; 16], plain: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = k
        .image_sealer_with(name, segment, prefix, Vec::new())
        .unwrap();
    // Written in odd pieces: the segments do not depend on how the bytes come.
    for piece in plain.chunks(7) {
        w.write_all(piece).unwrap();
    }
    w.finish().unwrap()
}

/// `open_image` as a restore reads a manifest: a segment at a time through
/// `open_image_stream`, whole when the bytes are not a stream.
fn open_streamed(k: &Keys, name: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let read_at = Box::new(|buf: &mut [u8], at: u64| {
        let at = at as usize;
        match bytes.get(at..at + buf.len()) {
            Some(b) => {
                buf.copy_from_slice(b);
                Ok(())
            }
            None => Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
        }
    });
    match k.open_image_stream(name, bytes.len() as u64, read_at) {
        Ok(Some(mut r)) => {
            let mut out = Vec::new();
            r.read_to_end(&mut out).map_err(|e| e.to_string())?;
            Ok(out)
        }
        Ok(None) => k.open_image(name, bytes).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn known_answer_stream_manifest() {
    let k = Keys::from_master(&MASTER);
    let plain = b"ironclone streamed manifest, 3 segments";
    assert_eq!(plain.len(), 39);
    let s = stream_of(&k, "pc", 16, plain);
    assert_eq!(s.len(), 32 + 39 + 3 * 16);
    assert_eq!(hex(&s), "494353545245414d0100000010000000050505050505050505050505050505059edd21bcafe6ebfa54335d91c60c4f920005b09ab47de623a87ee70c82bfeed2368eaba244af9031d6cc32749c2aca05c4cb4bd84e07f190a5984633a5c36758b60f8bf26e8102203b932ad87725fde2b7f1f7ed1d71d3");
    assert_eq!(k.open_image("pc", &s).unwrap(), plain);
    // Empty and exactly-full plaintexts: one last segment, and no empty one after
    // full ones.
    let empty = stream_of(&k, "pc", 16, b"");
    assert_eq!(empty.len(), 32 + 16);
    assert_eq!(k.open_image("pc", &empty).unwrap(), b"");
    assert_eq!(open_streamed(&k, "pc", &empty).unwrap(), b"");
    assert_eq!(open_streamed(&k, "pc", &s).unwrap(), plain);
    let full = stream_of(&k, "pc", 16, &[1; 32]);
    assert_eq!(full.len(), 32 + 2 * 32);
    assert_eq!(k.open_image("pc", &full).unwrap(), [1; 32]);
    // A manifest sealed in one piece (before streams) still opens.
    let old = k.seal(&Aad::image("pc"), b"{}").unwrap();
    assert_eq!(k.open_image("pc", &old).unwrap(), b"{}");
}

#[test]
fn stream_tampering_is_detected_and_named() {
    let k = Keys::from_master(&MASTER);
    let plain: Vec<u8> = (0..100u8).collect();
    let s = stream_of(&k, "pc", 32, &plain);
    let seg = 32 + TAG_LEN;
    // 32 + 32 + 32 + 4 plaintext bytes: four segments after the 32-byte header.
    assert_eq!(s.len(), 32 + 3 * seg + 4 + TAG_LEN);
    assert_eq!(k.open_image("pc", &s).unwrap(), plain);
    assert_eq!(open_streamed(&k, "pc", &s).unwrap(), plain);
    // Opened whole or a segment at a time, the same error.
    let named = |bytes: &[u8]| {
        let whole = k.open_image("pc", bytes).unwrap_err().to_string();
        let streamed = open_streamed(&k, "pc", bytes).unwrap_err();
        assert_eq!(whole, streamed);
        whole
    };
    // Any flipped byte of any segment names that segment.
    for i in 32..s.len() {
        let mut bad = s.clone();
        bad[i] ^= 1;
        let want = format!("segment {} of 4: authentication failed", (i - 32) / seg + 1);
        assert!(named(&bad).starts_with(&want), "byte {i}: {}", named(&bad));
    }
    // A flipped header byte: the prefix (segment 1 fails), the size, the magic.
    for i in 0..32 {
        let mut bad = s.clone();
        bad[i] ^= 1;
        assert!(k.open_image("pc", &bad).is_err(), "header byte {i}");
        assert!(open_streamed(&k, "pc", &bad).is_err(), "header byte {i}");
    }
    // The last segment dropped: the one now last was sealed as not last.
    let cut = &s[..32 + 3 * seg];
    assert!(named(cut).starts_with("segment 3 of 3: authentication failed"));
    // Cut inside a segment, or down to the header.
    assert!(named(&s[..s.len() - 1]).starts_with("segment 4 of 4"));
    assert!(named(&s[..32]).contains("do not end in a whole segment"));
    // Two segments swapped.
    let mut swapped = s.clone();
    swapped[32..32 + 2 * seg].rotate_left(seg);
    assert!(named(&swapped).starts_with("segment 1 of 4: authentication failed"));
    // A segment appended: the old last one is no longer last.
    let mut longer = s.clone();
    longer.extend_from_slice(&s[32..32 + seg]);
    assert!(
        named(&longer).starts_with("segment 4 of 5"),
        "{}",
        named(&longer)
    );
    // Another image's name, another key, another stream's segment spliced in.
    assert!(k.open_image("pd", &s).is_err());
    assert!(open_streamed(&k, "pd", &s).is_err());
    assert!(Keys::from_master(&[8; 32]).open_image("pc", &s).is_err());
    assert!(open_streamed(&Keys::from_master(&[8; 32]), "pc", &s).is_err());
    // (Each stream has its own random nonce prefix; this one's is another.)
    let other = stream_with(&k, "pc", 32, [6; 16], &plain);
    let mut spliced = s.clone();
    spliced[32 + seg..32 + 2 * seg].copy_from_slice(&other[32 + seg..32 + 2 * seg]);
    assert!(named(&spliced).starts_with("segment 2 of 4"));
}

#[test]
fn seal_in_place_fills_the_room_and_moves_nothing() {
    let k = Keys::from_master(&MASTER);
    let aad = Aad::index(&PackId([3; 32]));
    let plain = b"a record's compressed bytes";
    let mut buf = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
    buf.extend_from_slice(&[0u8; NONCE_LEN]);
    buf.extend_from_slice(plain);
    let at = buf.as_ptr();
    k.seal_in_place(&aad, &mut buf).unwrap();
    // The tag went into the spare capacity: same allocation, nothing reallocated.
    assert_eq!(buf.as_ptr(), at);
    assert_eq!(buf.len(), plain.len() + SEAL_OVERHEAD);
    assert_eq!(k.open(&aad, &buf).unwrap(), plain);
    // The room holds the nonce: what `seal` with that nonce writes, byte for byte.
    let nonce: [u8; NONCE_LEN] = buf[..NONCE_LEN].try_into().unwrap();
    assert_eq!(buf, k.seal_with_nonce(&aad, plain, &nonce));
    // A buffer without room for the nonce is refused, not sealed.
    let mut short = vec![0u8; NONCE_LEN - 1];
    assert!(matches!(
        k.seal_in_place(&aad, &mut short),
        Err(CryptoError::Short(23))
    ));
}
