//! Unit tests of manifest_stream.rs: a manifest read with its chunk lists in a scratch
//! file is the manifest read whole, and every check `Manifest::parse_from` makes is
//! made.

use super::id::ChunkId;
use super::manifest::{ChunkRef, Manifest};
use super::manifest_stream::{load, StreamError};
use std::path::Path;

fn sample() -> Manifest {
    let chunks = |n: u64, salt: u64| -> Vec<ChunkRef> {
        (0..n)
            .map(|i| ChunkRef {
                offset: i * 4096,
                len: 4096,
                // Every fifth chunk all zeros (no id).
                id: (i % 5 != 0).then(|| ChunkId::of(&(i + salt).to_le_bytes())),
            })
            .collect()
    };
    let mut m = Manifest::of_areas(
        65536,
        vec![
            ("p1", chunks(5000, 0)),
            ("empty", Vec::new()),
            ("p2", chunks(17, 9000)),
        ],
    );
    m.version = 1;
    m.seal();
    m
}

fn read(bytes: &[u8], dir: &Path) -> Result<super::manifest_stream::Spilled, StreamError> {
    load("m", Path::new("images/m.json"), bytes, dir)
}

fn err(r: Result<super::manifest_stream::Spilled, StreamError>) -> String {
    match r {
        Err(StreamError::Repo(e)) => e.to_string(),
        Err(StreamError::NotCanonical) => "not canonical".into(),
        Ok(_) => "read".into(),
    }
}

#[test]
fn a_spilled_manifest_is_the_manifest_read_whole() {
    let m = sample();
    let bytes = serde_json::to_vec(&m).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = read(&bytes, dir.path()).unwrap_or_else(|e| panic!("{}", err(Err(e))));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "unlinked"
    );
    assert_eq!(s.areas, vec![0..5000, 5000..5000, 5000..5017]);
    let mut head = m.clone();
    for a in &mut head.areas {
        a.chunks.clear();
    }
    assert_eq!(s.head, head);
    for (a, r) in m.areas.iter().zip(&s.areas) {
        let mut rd = s.chunks.read(r.clone());
        for c in &a.chunks {
            let e = rd.next_entry().unwrap().unwrap();
            assert_eq!((e.offset, e.len, e.id), (c.offset, c.len, c.id));
        }
        assert!(rd.next_entry().unwrap().is_none());
    }
}

/// An area's bytes come from the scratch list: the head's lists are empty (a deploy
/// client counted its staging room from the head and always found 0 bytes).
#[test]
fn an_areas_bytes_are_counted_from_the_scratch_list() {
    let m = sample();
    let bytes = serde_json::to_vec(&m).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = read(&bytes, dir.path()).unwrap_or_else(|e| panic!("{}", err(Err(e))));
    assert_eq!(s.area_bytes("p1").unwrap(), 5000 * 4096);
    assert_eq!(s.area_bytes("p2").unwrap(), 17 * 4096);
    assert_eq!(s.area_bytes("empty").unwrap(), 0);
    assert_eq!(s.area_bytes("none").unwrap(), 0);
    assert_eq!(s.data_bytes().unwrap(), 5017 * 4096);
    assert_eq!(s.head.data_bytes(), 0, "the head holds no chunk lists");
}

#[test]
fn a_changed_byte_a_wrong_name_a_chunk_outside_and_other_forms_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = sample();
    let bytes = serde_json::to_vec(&m).unwrap();
    // One hex digit of a chunk id in the middle of the first area.
    let key: &[u8] = br#""id":""#;
    let mid = bytes.len() / 2;
    let at = mid
        + bytes[mid..]
            .windows(key.len())
            .position(|w| w == key)
            .unwrap()
        + key.len();
    let mut flipped = bytes.clone();
    flipped[at] = if flipped[at] == b'a' { b'b' } else { b'a' };
    let e = err(read(&flipped, dir.path()));
    assert!(e.contains("root hash mismatch"), "{e}");

    let mut other = m.clone();
    other.name = "other".into();
    other.seal();
    let e = err(read(&serde_json::to_vec(&other).unwrap(), dir.path()));
    assert!(e.contains("names image \"other\""), "{e}");

    let mut outside = m.clone();
    outside.areas[2].chunks[3].offset = outside.areas[2].len;
    outside.seal();
    let e = err(read(&serde_json::to_vec(&outside).unwrap(), dir.path()));
    assert!(
        e.contains("area p2: chunk at") && e.contains("outside the area"),
        "{e}"
    );

    // The same manifest, pretty-printed: its root holds, but not over these bytes.
    let pretty = serde_json::to_vec_pretty(&m).unwrap();
    assert!(Manifest::parse("m", Path::new("x"), &pretty).is_ok());
    assert_eq!(err(read(&pretty, dir.path())), "not canonical");

    let e = err(read(&bytes[..bytes.len() - 10], dir.path()));
    assert!(e.contains("corrupt") || e.contains("EOF"), "{e}");
}
