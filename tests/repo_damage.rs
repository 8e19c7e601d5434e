//! Damage to a repository is found and named by `verify`, and refused by `restore`
//! before one byte reaches the target: flipped bytes in a pack, an index file or a
//! manifest; a truncated pack; a deleted pack.

mod repo_common;

use ironclone::device::MemDevice;
use ironclone::progress::NoProgress;
use ironclone::repo::{self, BackupOptions, RepoError, Repository, RestoreOptions};
use repo_common::*;
use std::path::{Path, PathBuf};

const SIZE: u64 = 32 * MIB;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    repo: Repository,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let repo = Repository::init(&root, 1 << 20, 4 << 20).unwrap();
    let src = MemDevice::from_vec(mixed_data(SIZE as usize, 11), 512);
    repo::backup(
        &repo,
        &src,
        &plan_for(SIZE),
        &BackupOptions::new("img"),
        &NoProgress,
    )
    .unwrap();
    assert!(repo::verify(&repo, None, &NoProgress).unwrap().ok());
    Fixture {
        _dir: dir,
        root,
        repo,
    }
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in walk(dir) {
        if e.extension().is_some_and(|x| x == ext) {
            out.push(e);
        }
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

/// The restore must fail and the target must still be all zeros.
fn assert_restore_refused(f: &Fixture) -> RepoError {
    assert_restore_refused_with(f, &RestoreOptions::default())
}

fn assert_restore_refused_with(f: &Fixture, opts: &RestoreOptions) -> RepoError {
    let dir = tempfile::tempdir().unwrap();
    let target = zero_target(&dir.path().join("t.img"), SIZE);
    let e = repo::restore(
        &f.repo,
        "img",
        &target,
        &|a| Some(a.offset),
        opts,
        &NoProgress,
    )
    .unwrap_err();
    drop(target);
    let after = std::fs::read(dir.path().join("t.img")).unwrap();
    assert!(
        after.iter().all(|&b| b == 0),
        "restore wrote to the target before refusing: {e}"
    );
    // Each damaged chunk is named with where the image uses it.
    if let RepoError::RestoreRefused { problems, .. } = &e {
        for p in problems.iter().filter(|p| p.starts_with("chunk ")) {
            let named = ["table-head", "p1", "p2", "gpt-backup"]
                .iter()
                .any(|a| p.contains(&format!("(area {a} bytes [")));
            assert!(named && p.contains(") (device offset "), "{p}");
        }
    }
    e
}

/// verify must name the image, an area and a byte range.
fn assert_damage_named(f: &Fixture) -> repo::VerifyReport {
    let v = repo::verify(&f.repo, None, &NoProgress).unwrap();
    assert!(!v.ok());
    assert!(!v.damages.is_empty(), "no damage tied to an image: {v:?}");
    for d in &v.damages {
        assert_eq!(d.image, "img");
        assert!(
            ["table-head", "p1", "p2", "gpt-backup"].contains(&d.area.as_str()),
            "{d:?}"
        );
        assert!(d.len > 0);
        assert_eq!(
            d.disk_offset,
            plan_for(SIZE)
                .areas
                .iter()
                .find(|a| a.name == d.area)
                .unwrap()
                .offset
                + d.area_offset
        );
    }
    v
}

/// Flips a byte in the middle of the first pack (inside a record's stored bytes, past
/// the records of the image's first chunks); the pack's path.
fn flip_middle_of_first_pack(f: &Fixture) -> PathBuf {
    let pack = files(&f.root.join("packs"), "pack").remove(0);
    let len = std::fs::metadata(&pack).unwrap().len() as usize;
    flip(&pack, len / 2);
    pack
}

fn assert_refused_naming(e: &RepoError, pack: &Path) {
    assert!(matches!(e, RepoError::RestoreRefused { .. }), "{e}");
    assert!(e.to_string().contains(&pack.display().to_string()), "{e}");
}

#[test]
fn flipped_byte_in_a_pack() {
    let f = fixture();
    let pack = &flip_middle_of_first_pack(&f);
    let v = assert_damage_named(&f);
    // One record damaged: a frame, so every chunk in it, side by side, for one reason.
    assert!(
        v.damages.iter().all(|d| d.what == v.damages[0].what),
        "{v:?}"
    );
    for w in v.damages.windows(2) {
        assert_eq!(w[0].area_offset + w[0].len, w[1].area_offset, "{v:?}");
    }
    assert!(
        v.problems.is_empty(),
        "a damaged record an image needs is damage, not a problem: {v:?}"
    );
    let e = assert_restore_refused(&f);
    assert_refused_naming(&e, pack);
}

/// A restore in passes (a bounded number of chunks at a time, for memory) checks every
/// pass before its first write: the damage lies past the first pass (the middle of a
/// pack, whose earlier records hold earlier chunks), so writing a pass as soon as it
/// is checked would touch the target.
#[test]
fn a_restore_in_passes_checks_every_pass_before_writing() {
    let f = fixture();
    let pack = &flip_middle_of_first_pack(&f);
    for pass_chunks in [1, 5, 64] {
        let opts = RestoreOptions {
            pass_chunks,
            ..Default::default()
        };
        let e = assert_restore_refused_with(&f, &opts);
        assert_refused_naming(&e, pack);
    }
}

#[test]
fn flipped_byte_in_a_record_header_is_caught_too() {
    let f = fixture();
    let pack = &files(&f.root.join("packs"), "pack")[0];
    flip(pack, 16 + 10); // inside the first record's chunk id
    assert_damage_named(&f);
    assert_restore_refused(&f);
}

#[test]
fn flipped_byte_in_an_index_file() {
    let f = fixture();
    let idx = &files(&f.root.join("index"), "json")[0];
    let len = std::fs::metadata(idx).unwrap().len() as usize;
    flip(idx, len / 2);
    let v = assert_damage_named(&f);
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains(&idx.display().to_string())),
        "{v:?}"
    );
    assert_restore_refused(&f);
    // The packs are self-describing: rebuilding the index heals the repository.
    assert!(f.repo.repair_index().unwrap() > 0);
    assert!(repo::verify(&f.repo, None, &NoProgress).unwrap().ok());
    let t = MemDevice::new(SIZE as usize, 512);
    repo::restore(
        &f.repo,
        "img",
        &t,
        &|a| Some(a.offset),
        &RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_restored(
        &mixed_data(SIZE as usize, 11),
        &t.snapshot(),
        &plan_for(SIZE),
    );
}

#[test]
fn flipped_byte_in_a_manifest() {
    let f = fixture();
    let m = f.root.join("images/img.json");
    let len = std::fs::metadata(&m).unwrap().len() as usize;
    flip(&m, len / 2);
    let v = repo::verify(&f.repo, None, &NoProgress).unwrap();
    assert_eq!(v.damages.len(), 1);
    assert_eq!(v.damages[0].image, "img");
    assert_eq!(v.damages[0].area, "(manifest)");
    let e = assert_restore_refused(&f);
    assert!(matches!(e, RepoError::CorruptManifest { .. }), "{e}");
    // A damaged manifest stops prune from guessing what is unused.
    assert!(repo::prune(&f.repo, &NoProgress).is_err());
}

#[test]
fn truncated_pack() {
    let f = fixture();
    let pack = &files(&f.root.join("packs"), "pack")[1];
    let len = std::fs::metadata(pack).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(pack)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let v = assert_damage_named(&f);
    assert!(!v.damages.is_empty());
    assert_restore_refused(&f);
}

#[test]
fn deleted_pack() {
    let f = fixture();
    let pack = &files(&f.root.join("packs"), "pack")[0];
    std::fs::remove_file(pack).unwrap();
    let v = assert_damage_named(&f);
    assert!(
        v.damages.iter().all(|d| d.what.contains("missing")),
        "{v:?}"
    );
    let e = assert_restore_refused(&f);
    assert!(e.to_string().contains("No such file"), "{e}");
    // A new backup does not reuse chunks of the missing pack: it stores them again.
    let src = MemDevice::from_vec(mixed_data(SIZE as usize, 11), 512);
    let m = repo::backup(
        &f.repo,
        &src,
        &plan_for(SIZE),
        &BackupOptions::new("again"),
        &NoProgress,
    )
    .unwrap();
    assert!(m.stats.new_bytes > 0);
    let t = MemDevice::new(SIZE as usize, 512);
    repo::restore(
        &f.repo,
        "again",
        &t,
        &|a| Some(a.offset),
        &RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_restored(&src.snapshot(), &t.snapshot(), &plan_for(SIZE));
}
