//! A new encrypted repository whose key slot is wrapped beside its first backup
//! (keys_deferred.rs), and the nonces of that backup's records.

use super::error::RepoError;
use super::pack;
use super::prune_tests::{back_up, data};
use super::Repository;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

const PASS: &[u8] = b"correct horse battery";
/// Small Argon2id parameters: the tests are about order, not cost.
const KDF: (u32, u32, u32) = (8, 1, 1);

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match e.path().is_dir() {
            true => out.extend(files_under(&e.path())),
            false => out.push(e.path()),
        }
    }
    out.sort();
    out
}

#[test]
fn slot_and_config_are_written_before_the_first_publish_and_open() {
    let dir = tempfile::tempdir().unwrap();
    let repo =
        Repository::init_encrypted_deferred_with(dir.path(), 1 << 20, 1 << 20, PASS, KDF).unwrap();
    // Nothing written yet: no config (so no repository), no slot.
    assert!(!Repository::exists(dir.path()).unwrap());
    assert!(files_under(&dir.path().join("keys")).is_empty());
    back_up(&repo, "one", data(5, 3 << 20));
    assert!(Repository::exists(dir.path()).unwrap());
    let slots = files_under(&dir.path().join("keys"));
    assert_eq!(slots.len(), 1);
    // In order: the slot, the config, then every pack (3 MiB in 1 MiB packs). A pack
    // is written under tmp/ and renamed into packs/ when published: the rename sets
    // its change time.
    let ctime = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).unwrap();
        (m.ctime(), m.ctime_nsec())
    };
    let config = ctime(&dir.path().join("config"));
    assert!(ctime(&slots[0]) <= config);
    let packs = files_under(&dir.path().join("packs"));
    assert!(packs.len() >= 2, "{packs:?}");
    assert!(
        packs.iter().all(|p| config <= ctime(p)),
        "a pack before the config"
    );
    drop(repo);
    let r = Repository::open_with_secret(dir.path(), PASS).unwrap();
    assert_eq!(r.list_images().unwrap().len(), 1);
    assert!(matches!(
        Repository::open_with_secret(dir.path(), b"guess"),
        Err(RepoError::WrongPassphrase { .. })
    ));
}

#[test]
fn a_repository_dropped_before_any_publish_is_still_created() {
    let dir = tempfile::tempdir().unwrap();
    let repo =
        Repository::init_encrypted_deferred_with(dir.path(), 1 << 20, 1 << 20, PASS, KDF).unwrap();
    drop(repo);
    let r = Repository::open_with_secret(dir.path(), PASS).unwrap();
    assert!(r.list_images().unwrap().is_empty());
}

#[test]
fn bad_kdf_parameters_fail_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("repo");
    let e = Repository::init_encrypted_deferred_with(&at, 1 << 20, 1 << 20, PASS, (8, 1, 0));
    assert!(matches!(e, Err(RepoError::Crypto { .. })));
    assert!(!at.exists());
}

#[test]
fn nonces_never_repeat_across_the_records_of_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let repo =
        Repository::init_encrypted_deferred_with(dir.path(), 1 << 20, 1 << 20, PASS, KDF).unwrap();
    back_up(&repo, "one", data(9, 6 << 20));
    back_up(&repo, "two", data(10, 2 << 20));
    let mut nonces = HashSet::new();
    let mut records = 0;
    for path in files_under(&dir.path().join("packs")) {
        let bytes = std::fs::read(&path).unwrap();
        let name = format!(
            "packs/{}",
            path.strip_prefix(dir.path().join("packs"))
                .unwrap()
                .display()
        );
        let scan = pack::scan(
            &repo,
            &name,
            bytes.len() as u64,
            &mut Vec::new(),
            None,
            1 << 20,
        )
        .unwrap();
        assert!(scan.bad.is_empty(), "{:?}", scan.bad);
        for e in &scan.good {
            let at = (e.record.offset + e.record.header_len()) as usize;
            let nonce = &bytes[at..at + super::crypto::NONCE_LEN];
            assert!(nonces.insert(nonce.to_vec()), "nonce repeated in {name}");
            records += 1;
        }
    }
    assert!(records >= 8, "only {records} records");
}
