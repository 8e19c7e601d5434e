//! The thin CLI over the repository: `images`, `verify`, `prune`, with `--json`.

mod repo_common;

use ironclone::device::MemDevice;
use ironclone::progress::NoProgress;
use ironclone::repo::{self, BackupOptions, Repository};
use repo_common::*;
use std::process::Command;

fn ironclone(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn images_verify_prune_commands() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let r = Repository::init(&root, 1 << 20, 4 << 20).unwrap();
    let src = MemDevice::from_vec(mixed_data((32 * MIB) as usize, 3), 512);
    repo::backup(
        &r,
        &src,
        &plan_for(32 * MIB),
        &BackupOptions::new("laptop-1"),
        &NoProgress,
    )
    .unwrap();
    let rs = root.to_str().unwrap();

    let out = ironclone(&["images", rs, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["images"][0]["name"], "laptop-1");
    assert_eq!(v["images"][0]["source"]["serial"], "SN123");

    let out = ironclone(&["verify", rs]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));

    // JSON lines: progress events then a result.
    let out = ironclone(&["verify", rs, "laptop-1", "--json"]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["event"], "job_start");
    assert_eq!(lines.last().unwrap()["event"], "result");

    // Damage a pack: verify fails and names the image and area.
    let packs = root.join("packs");
    let sub = std::fs::read_dir(&packs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let pack = std::fs::read_dir(sub)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut b = std::fs::read(&pack).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(&pack, b).unwrap();
    let out = ironclone(&["verify", rs]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DAMAGE image laptop-1 area "), "{text}");

    let out = ironclone(&["prune", rs, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"result\""));

    let out = ironclone(&["images", "/nonexistent-repo"]);
    assert_eq!(out.status.code(), Some(1));
}

/// A lost index file: verify names it and the command to run, `repair-index` rebuilds it
/// from the packs, and the image restores byte for byte again.
#[test]
fn repair_index_command_rebuilds_a_deleted_index_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let r = Repository::init(&root, 1 << 20, 4 << 20).unwrap();
    let data = mixed_data((32 * MIB) as usize, 5);
    let src = MemDevice::from_vec(data.clone(), 512);
    let plan = plan_for(32 * MIB);
    repo::backup(&r, &src, &plan, &BackupOptions::new("img"), &NoProgress).unwrap();
    let rs = root.to_str().unwrap();

    let index_dir = root.join("index");
    let mut index_files = Vec::new();
    for e in walkdir(&index_dir) {
        if e.extension().is_some_and(|x| x == "json") {
            index_files.push(e);
        }
    }
    assert!(!index_files.is_empty(), "no index file under {index_dir:?}");
    let gone = &index_files[0];
    let before = std::fs::read(gone).unwrap();
    std::fs::remove_file(gone).unwrap();

    let out = ironclone(&["verify", rs]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "pack has no index file (run `ironclone repair-index {rs}`)"
        )),
        "{text}"
    );

    let out = ironclone(&["repair-index", rs]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("pack(s) re-indexed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read(gone).unwrap(),
        before,
        "the rebuilt index differs"
    );
    let out = ironclone(&["verify", rs]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let r = Repository::open(&root).unwrap();
    let t = MemDevice::new(data.len(), 512);
    repo::restore(
        &r,
        "img",
        &t,
        &|a| Some(a.offset),
        &ironclone::repo::RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
    repo_common::assert_restored(&data, &t.snapshot(), &plan);
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}
