//! Unit tests of manifest_load.rs: a manifest read as a stream into a scratch file is
//! the manifest `load_manifest` reads, in either stored form.

use super::error::RepoError;
use super::manifest::Manifest;
use super::manifest_load::scratch_failed;
use super::manifest_stream::Spilled;
use super::prune_tests::{back_up, data};
use super::Repository;
use std::path::{Path, PathBuf};

/// `s` holds `m`: the same head and, area by area, the same chunks.
fn same(s: &Spilled, m: &Manifest) {
    assert_eq!(s.head, m.clone_head());
    assert_eq!(s.areas.len(), m.areas.len());
    for (a, r) in m.areas.iter().zip(&s.areas) {
        assert_eq!(r.len(), a.chunks.len(), "area {}", a.name);
        let mut rd = s.chunks.read(r.clone());
        for c in &a.chunks {
            let e = rd.next_entry().unwrap().unwrap();
            assert_eq!((e.offset, e.len, e.id), (c.offset, c.len, c.id));
        }
    }
}

#[test]
fn a_stored_manifest_spills_as_it_loads_in_either_form() {
    let dir = tempfile::tempdir().unwrap();
    // 3 MiB with a zero stretch: several chunks, some zero.
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 20).unwrap();
    let mut bytes = data(7, 3 << 20);
    bytes[1 << 20..(1 << 20) + (256 << 10)].fill(0);
    back_up(repo, "a", bytes);
    let whole = repo.load_manifest("a").unwrap();
    assert!(whole.areas.iter().map(|a| a.chunks.len()).sum::<usize>() > 40);
    let s = repo.load_spilled("a").unwrap();
    same(&s, &whole);
    assert!(!s.whole, "streamed, not read whole");
    assert_eq!(repo.load_head("a").unwrap(), whole.clone_head());
    // The scratch file is in the repository's tmp/, unlinked at once.
    let tmp = dir.path().join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp).map_or(Vec::new(), |d| d.flatten().collect());
    assert!(left.is_empty(), "{left:?}");
    // Kept for the next call (the plan, then the write): the same one.
    assert!(std::sync::Arc::ptr_eq(&s, &repo.load_spilled("a").unwrap()));

    // A manifest not in the form ironclone writes (pretty-printed, uncompressed): its
    // root still holds, and it is read whole and then spilled.
    let path = dir.path().join("images/a.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&*whole).unwrap()).unwrap();
    let again = Repository::open(dir.path()).unwrap();
    let s = again.load_spilled("a").unwrap();
    same(&s, &whole);
    assert!(s.whole);

    // A damaged one is refused with its name, and so is a missing one.
    let mut text = serde_json::to_vec(&*whole).unwrap();
    let at = text.len() / 2;
    text[at] = if text[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&path, &text).unwrap();
    let e = match Repository::open(dir.path()).unwrap().load_spilled("a") {
        Ok(_) => panic!("a damaged manifest was read"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("image a") && e.contains("corrupt manifest"),
        "{e}"
    );
    let e = match again.load_spilled("b") {
        Ok(_) => panic!("a missing manifest was read"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("\"b\"") || e.contains(" b "), "{e}");
}

/// Open files of this process under `dir` (the scratch files are unlinked: their
/// links end in " (deleted)").
fn open_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|l| l.starts_with(dir))
        .count()
}

#[test]
fn the_chunk_list_goes_where_it_is_told_or_the_next_folder_that_can_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 20).unwrap();
    back_up(repo, "a", data(3, 1 << 20));
    let told = tempfile::tempdir().unwrap();
    let r = Repository::open(dir.path()).unwrap();
    r.set_scratch_dir(told.path());
    let s = r.load_spilled("a").unwrap();
    assert_eq!(
        open_under(told.path()),
        1,
        "the scratch file is in the told folder"
    );
    drop((s, r));
    assert_eq!(open_under(told.path()), 0, "and closed with the repository");
    // A folder that cannot be made (under a file): the repository's tmp/ instead.
    let file = told.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let r = Repository::open(dir.path()).unwrap();
    r.set_scratch_dir(&file.join("sub"));
    let s = r.load_spilled("a").unwrap();
    assert_eq!(open_under(&dir.path().join("tmp")), 1);
    assert_eq!(s.head, repo.load_manifest("a").unwrap().clone_head());
}

/// A scratch folder that cannot be written or fills up sends the chunk list to the
/// next folder; any other error (a damaged manifest) ends the restore.
#[test]
fn only_the_scratch_folders_own_failures_try_the_next_one() {
    let dir = Path::new("/tmp/s");
    let io = |p: &str| RepoError::Io {
        path: PathBuf::from(p),
        source: std::io::Error::other("x"),
    };
    let full = |d: &str| RepoError::ScratchFull {
        dir: PathBuf::from(d),
        written: 1,
        in_ram: true,
    };
    assert!(scratch_failed(&io("/tmp/s/scratch-1"), dir));
    assert!(scratch_failed(&full("/tmp/s"), dir));
    assert!(!scratch_failed(&io("/repo/manifests/m"), dir));
    assert!(!scratch_failed(&full("/elsewhere"), dir));
    assert!(!scratch_failed(&RepoError::Pipeline("x".into()), dir));
}
