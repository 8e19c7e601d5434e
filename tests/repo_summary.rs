//! Image summaries (`images/<name>.sum`, src/repo/summary.rs): listing a repository reads
//! one small object per image, not every manifest whole; the manifest stays the
//! authority (a missing or bad summary falls back to it) and `verify` names a summary
//! that is unreadable or says other than its manifest.

mod repo_common;

use ironclone::device::MemDevice;
use ironclone::progress::NoProgress;
use ironclone::repo::{self, BackupOptions, Repository};
use repo_common::{mixed_data, plan_for};
use std::path::Path;

const SIZE: usize = 32 << 20;

/// The manifest as stored (the backup's own has its chunk lists left out).
fn backup(r: &Repository, name: &str, seed: u64) -> std::sync::Arc<repo::Manifest> {
    let data = mixed_data(SIZE, seed);
    let dev = MemDevice::from_vec(data, 512);
    let plan = plan_for(SIZE as u64);
    repo::backup(r, &dev, &plan, &BackupOptions::new(name), &NoProgress).unwrap();
    r.load_manifest(name).unwrap()
}

fn sum(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join("images").join(format!("{name}.sum"))
}

fn problems(r: &Repository) -> Vec<String> {
    repo::verify(r, None, &NoProgress).unwrap().problems
}

#[test]
fn listing_reads_the_summaries_and_falls_back_to_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    let r = Repository::init(&path, 1 << 20, 64 << 20).unwrap();
    let a = backup(&r, "a", 1);
    let b = backup(&r, "b", 2);
    assert!(sum(&path, "a").is_file() && sum(&path, "b").is_file());
    let listed: Vec<_> = r
        .list_images()
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for (s, m) in listed.iter().zip([&a, &b]) {
        assert_eq!(
            (&s.name, s.created_unix, s.data_bytes, &s.stats, &s.source),
            (&m.name, m.created_unix, m.data_bytes(), &m.stats, &m.source)
        );
        assert_eq!(s.data_bytes, plan_for(SIZE as u64).total_bytes());
    }
    assert!(problems(&r).is_empty(), "{:?}", problems(&r));

    // The listing does not read the manifest: with a's manifest garbage it still
    // lists a from its summary (verify names the manifest).
    let manifest = path.join("images/a.json");
    let good = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, b"not a manifest").unwrap();
    let again = r.list_images().unwrap();
    assert_eq!(again[0].as_ref().unwrap(), &listed[0]);
    // The schedule's retention asks for an image's date the same way.
    assert_eq!(r.image_created("a").unwrap(), a.created_unix);
    // Without the summary the manifest is read, and its damage shows.
    let kept = std::fs::read(sum(&path, "a")).unwrap();
    std::fs::remove_file(sum(&path, "a")).unwrap();
    assert!(r.list_images().unwrap()[0].is_err());
    std::fs::write(&manifest, &good).unwrap();
    // An image from before summaries: listed from its manifest, verify content.
    assert_eq!(r.list_images().unwrap()[0].as_ref().unwrap(), &listed[0]);
    assert_eq!(r.image_created("a").unwrap(), a.created_unix);
    assert!(problems(&r).is_empty(), "{:?}", problems(&r));

    // A damaged summary: listed from the manifest all the same, and named by verify.
    let mut bad = kept.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    std::fs::write(sum(&path, "a"), &bad).unwrap();
    assert_eq!(r.list_images().unwrap()[0].as_ref().unwrap(), &listed[0]);
    let p = problems(&r);
    assert!(
        p.len() == 1 && p[0].contains("a.sum cannot be read"),
        "{p:?}"
    );

    // b's summary put in a's place: another image's, never listed as a.
    std::fs::copy(sum(&path, "b"), sum(&path, "a")).unwrap();
    assert_eq!(r.list_images().unwrap()[0].as_ref().unwrap(), &listed[0]);
    let p = problems(&r);
    assert!(p.len() == 1 && p[0].contains("summary of image b"), "{p:?}");

    // A well-formed summary of another manifest named a (a's name, b's root and
    // figures): verify says it does not describe a's manifest.
    let text = String::from_utf8(zstd::decode_all(&kept[..]).unwrap()).unwrap();
    let stale = text.replace(&a.root, &b.root);
    assert_ne!(stale, text);
    std::fs::write(
        sum(&path, "a"),
        zstd::encode_all(stale.as_bytes(), 3).unwrap(),
    )
    .unwrap();
    let p = problems(&r);
    assert!(p.len() == 1 && p[0].contains("does not describe"), "{p:?}");
    std::fs::write(sum(&path, "a"), &kept).unwrap();
    assert!(problems(&r).is_empty());

    // Deleting an image deletes its summary.
    r.delete_image("a").unwrap();
    assert!(!sum(&path, "a").exists());
    assert_eq!(r.list_images().unwrap().len(), 1);
}

#[test]
fn an_encrypted_summary_is_sealed_and_bound_to_its_image() {
    std::env::set_var("IRONCLONE_KDF", "1024,1,1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    let r = Repository::init_encrypted(&path, 1 << 20, 64 << 20, b"summary pass").unwrap();
    let a = backup(&r, "a", 3);
    backup(&r, "b", 4);
    let bytes = std::fs::read(sum(&path, "a")).unwrap();
    // Neither JSON nor a zstd frame: sealed.
    assert!(!bytes.starts_with(b"{") && !bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]));
    let r = Repository::open_with_secret(&path, b"summary pass").unwrap();
    let listed = r.list_images().unwrap();
    let s = listed[0].as_ref().unwrap();
    assert_eq!(
        (&s.name, s.data_bytes, &s.stats),
        (&a.name, a.data_bytes(), &a.stats)
    );
    assert!(problems(&r).is_empty());
    // b's sealed summary under a's name fails to open (its AAD names b).
    std::fs::copy(sum(&path, "b"), sum(&path, "a")).unwrap();
    assert_eq!(r.list_images().unwrap()[0].as_ref().unwrap().name, "a");
    let p = problems(&r);
    assert!(
        p.len() == 1 && p[0].contains("a.sum cannot be read"),
        "{p:?}"
    );
}
