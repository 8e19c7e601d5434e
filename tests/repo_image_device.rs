//! `repo::ImageDevice`: one area of a stored image read as a device must give the
//! backed-up bytes where extents were, zeros in the holes (free space), at any offset
//! and length (reads crossing chunk boundaries), and refuse writes.

mod repo_common;

use ironclone::device::{BlockDevice, DeviceError, MemDevice};
use ironclone::progress::NoProgress;
use ironclone::repo::{self, BackupOptions, ImageDevice, Manifest, RepoError, Repository};
use repo_common::*;
use std::path::Path;

/// Rewrites image `name`'s manifest in the plaintext repository at `repo` through
/// `edit`, sealed again (a valid manifest, only laid out differently).
fn rewrite(repo: &Path, name: &str, edit: impl FnOnce(&mut Manifest)) {
    let path = repo.join("images").join(format!("{name}.json"));
    let raw = zstd::decode_all(std::fs::read(&path).unwrap().as_slice()).unwrap();
    let mut m: Manifest = serde_json::from_slice(&raw).unwrap();
    edit(&mut m);
    m.seal();
    let json = serde_json::to_vec(&m).unwrap();
    std::fs::write(&path, zstd::encode_all(json.as_slice(), 3).unwrap()).unwrap();
}

/// The whole of area `area` of image `name`, read through an `ImageDevice`.
fn read_area(r: &Repository, name: &str, area: &str) -> Vec<u8> {
    let dev = ImageDevice::open(r, name, area).unwrap();
    let mut got = vec![0u8; dev.size() as usize];
    dev.read_at(0, &mut got).unwrap();
    got
}

#[test]
fn image_device_reads_extents_and_zero_holes_and_refuses_writes() {
    let size = 32 * MIB;
    let data = mixed_data(size as usize, 11);
    let plan = plan_for(size);
    let dir = tempfile::tempdir().unwrap();
    let r = Repository::init(&dir.path().join("repo"), 1 << 20, 8 << 20).unwrap();
    let src = MemDevice::from_vec(data.clone(), 512);
    repo::backup(&r, &src, &plan, &BackupOptions::new("x"), &NoProgress).unwrap();

    for a in &plan.areas {
        let dev = ImageDevice::open(&r, "x", &a.name).unwrap();
        assert_eq!(dev.size(), a.len);
        let mut want = vec![0u8; a.len as usize];
        for e in &a.extents {
            let (o, l) = (e.offset as usize, e.len as usize);
            let from = (a.offset + e.offset) as usize;
            want[o..o + l].copy_from_slice(&data[from..from + l]);
        }
        // Odd-sized reads at odd offsets cross chunk and extent boundaries.
        let mut got = vec![0u8; a.len as usize];
        let mut pos = 0usize;
        let mut step = 1usize;
        while pos < got.len() {
            let n = step.min(got.len() - pos);
            dev.read_at(pos as u64, &mut got[pos..pos + n]).unwrap();
            pos += n;
            step = step * 7 % 1_500_007 + 4093;
        }
        assert!(got == want, "area {} differs", a.name);
        // Backwards, 40 KiB at a time: every read in another part of the chunk list.
        let mut back = vec![0u8; a.len as usize];
        let mut end = back.len();
        while end > 0 {
            let start = end.saturating_sub(40 << 10);
            dev.read_at(start as u64, &mut back[start..end]).unwrap();
            end = start;
        }
        assert!(back == want, "area {} differs read backwards", a.name);
        let e = dev.write_at(0, &[1]).unwrap_err();
        assert!(matches!(e, DeviceError::ReadOnly { .. }), "{e}");
        let mut one = [0u8; 2];
        assert!(
            dev.read_at(a.len - 1, &mut one).is_err(),
            "read past the end"
        );
        assert!(dev
            .describe()
            .contains(&format!("image x, area {}", a.name)));
    }
    // A manifest whose chunks are not in offset order reads the same (a sorted copy
    // is used); one whose chunks overlap is refused, naming them.
    let repo_path = dir.path().join("repo");
    let before: Vec<Vec<u8>> = plan
        .areas
        .iter()
        .map(|a| read_area(&r, "x", &a.name))
        .collect();
    rewrite(&repo_path, "x", |m| {
        m.areas.iter_mut().for_each(|a| a.chunks.reverse())
    });
    let r2 = Repository::open(&repo_path).unwrap();
    for (a, want) in plan.areas.iter().zip(&before) {
        assert!(
            &read_area(&r2, "x", &a.name) == want,
            "area {} out of order",
            a.name
        );
    }
    rewrite(&repo_path, "x", |m| {
        let c = m.areas[0].chunks[0];
        m.areas[0].chunks.push(c);
    });
    let r3 = Repository::open(&repo_path).unwrap();
    match ImageDevice::open(&r3, "x", &plan.areas[0].name) {
        Err(e @ RepoError::CorruptManifest { .. }) => {
            assert!(e.to_string().contains("overlap"), "{e}")
        }
        other => panic!("expected an overlap refused, got {:?}", other.err()),
    }
    // In order but overlapping (the second chunk starts inside the first): refused too.
    rewrite(&repo_path, "x", |m| {
        let chunks = &mut m.areas[0].chunks;
        chunks.pop();
        chunks.sort_by_key(|c| c.offset);
        assert!(chunks[0].len > 1 && chunks[1].offset > chunks[0].offset + 1);
        chunks[1].offset = chunks[0].offset + 1;
    });
    let r4 = Repository::open(&repo_path).unwrap();
    match ImageDevice::open(&r4, "x", &plan.areas[0].name) {
        Err(e @ RepoError::CorruptManifest { .. }) => {
            assert!(e.to_string().contains("overlap"), "{e}")
        }
        other => panic!("expected an overlap refused, got {:?}", other.err()),
    }
    match ImageDevice::open(&r, "x", "p7") {
        Err(RepoError::NoArea { area, have, .. }) => {
            assert_eq!(area, "p7");
            assert!(have.contains(&"p1".to_string()));
        }
        other => panic!("expected NoArea, got {:?}", other.err()),
    }
}
