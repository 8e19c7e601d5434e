//! A backup killed with SIGKILL halfway leaves no image, and the rerun completes and
//! reuses the chunks of the packs that were finished before the kill.

mod repo_common;

use ironclone::device::MemDevice;
use ironclone::progress::NoProgress;
use ironclone::repo::{self, BackupOptions, BackupPlan, Repository, RestoreOptions, SourceInfo};
use repo_common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn driver() -> PathBuf {
    // target/debug/deps/repo_crash-HASH → target/debug/examples/repo_backup_driver
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/repo_backup_driver");
    assert!(
        p.exists(),
        "{} is missing: cargo test builds examples",
        p.display()
    );
    p
}

fn count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |r| r.count())
}

#[test]
fn killed_backup_leaves_no_image_and_rerun_reuses_chunks() {
    let size = 64 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let data = mixed_data(size as usize, 21);
    let src_path = dir.path().join("src.img");
    std::fs::write(&src_path, &data).unwrap();
    let root = dir.path().join("repo");
    let mut child = Command::new(driver())
        .arg(&src_path)
        .arg(&root)
        .arg("victim")
        // 1 MiB chunks in 4 MiB packs: several packs are durable long before the end.
        .args(["--chunk-size", &(1 << 20).to_string()])
        .args(["--pack-size", &(4 << 20).to_string(), "--slow-ms", "40"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until at least two packs are durable (their index files exist), then kill.
    let t = Instant::now();
    while count(&root.join("index")) < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "driver never finished a pack"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "driver ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // std sends SIGKILL on Unix: no cleanup code in the driver runs.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "driver finished before the kill");

    let r = Repository::open(&root).unwrap();
    assert!(
        r.image_names().unwrap().is_empty(),
        "a killed backup left an image"
    );
    assert!(r.list_images().unwrap().is_empty());

    let src = MemDevice::from_vec(data.clone(), 512);
    let plan = BackupPlan::whole_device(SourceInfo {
        size,
        sector_size: 512,
        ..Default::default()
    });
    let m = repo::backup(&r, &src, &plan, &BackupOptions::new("victim"), &NoProgress).unwrap();
    assert!(
        m.stats.dedup_bytes >= 2 * MIB,
        "rerun reused nothing: {:?}",
        m.stats
    );
    assert!(m.stats.new_bytes + m.stats.dedup_bytes + m.stats.zero_bytes == size);
    assert!(m.stats.new_bytes < size - m.stats.zero_bytes);

    let t = MemDevice::new(size as usize, 512);
    repo::restore(
        &r,
        "victim",
        &t,
        &|a| Some(a.offset),
        &RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert!(t.snapshot() == data);
    // The temp file of the killed pack (if it had started one) is cleaned by prune;
    // everything still verifies.
    repo::prune(&r, &NoProgress).unwrap();
    assert_eq!(count(&root.join("tmp")), 0);
    assert!(repo::verify(&r, None, &NoProgress).unwrap().ok());
}

/// Packs are published (fsync, rename, index) on their own thread while the next one
/// fills; a pack that cannot be published must still fail the backup, say where, and
/// leave no image. Every pack directory name (`packs/00` .. `packs/ff`) is taken by a
/// file here, so the first publish fails (root ignores permissions; this does not).
#[test]
fn a_pack_that_cannot_be_published_fails_the_backup_and_leaves_no_image() {
    let size = 24 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let r = Repository::init(&root, 1 << 20, 4 << 20).unwrap();
    for b in 0..=255u8 {
        std::fs::write(root.join("packs").join(format!("{b:02x}")), b"not a dir").unwrap();
    }
    let src = MemDevice::from_vec(mixed_data(size as usize, 5), 512);
    let err = repo::backup(
        &r,
        &src,
        &plan_for(size),
        &BackupOptions::new("x"),
        &NoProgress,
    )
    .expect_err("a backup whose packs cannot be published succeeded");
    let msg = err.to_string();
    assert!(
        msg.contains("packs"),
        "error does not name the pack path: {msg}"
    );
    assert!(r.image_names().unwrap().is_empty(), "an image was listed");
    assert_eq!(
        count(&root.join("index")),
        0,
        "an index names an unpublished pack"
    );
}
