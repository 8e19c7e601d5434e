//! A version 1 repository (tests/fixtures/repo-v1, written by the last build of that
//! format) still lists, verifies, restores and browses; the first backup into it turns
//! it into version 2 and its old image still restores.

mod repo_common;

use ironclone::progress::NoProgress;
use ironclone::repo::{self, BackupOptions, BackupPlan, Repository, RestoreOptions, SourceInfo};
use std::path::Path;
use std::process::Command;

/// SHA-256 of the disk image the fixture was made from (tests/fixtures/repo-v1.md).
const SOURCE_SHA256: &str = "1e8693acec617999598053b2ff69efebe621e330373b4fbaecf25dab9047068b";
const SIZE: u64 = 6 << 20;

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

fn copy_fixture(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repo-v1");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

fn restore_to(r: &Repository, image: &str, path: &Path) {
    let t = repo_common::zero_target(path, SIZE);
    repo::restore(
        r,
        image,
        &t,
        &|a| Some(a.offset),
        &RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
}

#[test]
fn a_version_1_repository_reads_and_becomes_version_2_on_the_next_backup() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    copy_fixture(&root);
    let r = Repository::open(&root).unwrap();
    assert_eq!(r.config().version, 1);
    assert_eq!(r.image_names().unwrap(), vec!["v1-ext4".to_string()]);
    let v = repo::verify(&r, None, &NoProgress).unwrap();
    assert!(v.ok(), "{v:?}");
    let out = dir.path().join("restored.img");
    restore_to(&r, "v1-ext4", &out);
    assert_eq!(sha256(&out), SOURCE_SHA256);

    // A new backup (of the restored disk, with one file's bytes changed) upgrades it.
    let st = Command::new("debugfs")
        .args(["-w", "-R", "rm copy.bin"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(st.status.success());
    let src = ironclone::device::open_path(&out, ironclone::device::Access::ReadOnly).unwrap();
    let plan = BackupPlan::whole_device(SourceInfo {
        size: SIZE,
        sector_size: 512,
        ..Default::default()
    });
    let m = repo::backup(&r, &src, &plan, &BackupOptions::new("v2-ext4"), &NoProgress).unwrap();
    assert!(m.stats.new_bytes > 0);
    let r = Repository::open(&root).unwrap();
    assert_eq!(r.config().version, 2);
    assert!(r.config().chunking.is_some());
    let v = repo::verify(&r, None, &NoProgress).unwrap();
    assert!(v.ok(), "{v:?}");
    let again = dir.path().join("again.img");
    restore_to(&r, "v1-ext4", &again);
    assert_eq!(
        sha256(&again),
        SOURCE_SHA256,
        "the version 1 image after the upgrade"
    );
    let newer = dir.path().join("newer.img");
    restore_to(&r, "v2-ext4", &newer);
    assert_eq!(sha256(&newer), sha256(&out));
    let fsck = Command::new("e2fsck")
        .args(["-fn"])
        .arg(&newer)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}
