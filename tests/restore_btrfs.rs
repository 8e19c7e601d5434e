//! A btrfs partition through the binary: `ironclone backup` of a GPT disk (p1 ext4,
//! p2 btrfs with a subvolume, a snapshot and zstd-compressed files), `ironclone
//! restore` onto a larger disk (ext4 grows, so the btrfs partition moves and keeps
//! its size: btrfs is not resized yet) and onto one too small to hold it (refused
//! before anything is written). Judged by sgdisk -v, e2fsck, `btrfs check
//! --readonly`, the filesystem UUID, and every file read back through a read-only
//! mount. Needs root (loop mounts).

mod common;
mod restore_fixture;

use common::{path_str, run, run_status};
use restore_fixture::*;
use std::collections::BTreeMap;
use std::path::Path;

const BTRFS_LEN: u64 = 160 * MIB;

fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_str().unwrap().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Mounts `img` read-only, returns every file, unmounts.
fn files_of(img: &Path, dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::create_dir_all(dir).unwrap();
    run("mount", &["-o", "loop,ro", path_str(img), path_str(dir)]);
    let got = read_tree(dir);
    run("umount", &[path_str(dir)]);
    got
}

fn uuid(img: &Path) -> String {
    run("btrfs", &["inspect-internal", "dump-super", path_str(img)])
        .lines()
        .find_map(|l| l.strip_prefix("fsid"))
        .unwrap_or_else(|| panic!("no fsid"))
        .trim()
        .to_string()
}

fn b2sum(p: &Path) -> String {
    run("b2sum", &[path_str(p)])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
#[ignore = "needs root"]
fn btrfs_moves_with_its_size_and_a_too_small_target_is_refused() {
    for t in ["sfdisk", "sgdisk", "mkfs.ext4", "mkfs.btrfs", "btrfs"] {
        common::require_tool(t);
    }
    let td = common::tempdir();
    let dir = td.path().to_path_buf();
    let disk = dir.join("src.img");
    let size = 210 * MIB;
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    common::run_in(
        "sfdisk",
        &["-q", path_str(&disk)],
        Some("label: gpt\n,40M,L\n,160M,L\n"),
    );
    let ext = FsSpec {
        number: 1,
        fs: Fs::Ext4,
        files: files(31, 3),
    };
    ext4_into(&disk, &dir, &ext);

    let (start, len) = part(&disk, 2);
    assert_eq!(len, BTRFS_LEN);
    let img = dir.join("p2.img");
    std::fs::File::create(&img).unwrap().set_len(len).unwrap();
    run("mkfs.btrfs", &["-q", "-f", "-L", "fedora", path_str(&img)]);
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    run(
        "mount",
        &["-o", "loop,compress=zstd", path_str(&img), path_str(&mnt)],
    );
    run(
        "btrfs",
        &["subvolume", "create", path_str(&mnt.join("root"))],
    );
    let mut rng = common::Rng::new(77);
    for i in 0..5 {
        let mut v = vec![0u8; 300_000 + i * 211_111];
        rng.fill(&mut v);
        std::fs::write(mnt.join(format!("root/f{i}.bin")), &v).unwrap();
    }
    std::fs::write(mnt.join("root/text.txt"), "btrfs zstd ".repeat(200_000)).unwrap();
    run(
        "btrfs",
        &[
            "subvolume",
            "snapshot",
            path_str(&mnt.join("root")),
            path_str(&mnt.join("snap")),
        ],
    );
    std::fs::write(mnt.join("root/after.txt"), "after the snapshot").unwrap();
    run("umount", &[path_str(&mnt)]);
    let want = files_of(&img, &mnt);
    assert!(want.contains_key("snap/text.txt") && want.contains_key("root/after.txt"));
    let src_uuid = uuid(&img);
    dd_in(&disk, &img, start);
    std::fs::remove_file(&img).unwrap();

    let repo = dir.join("repo");
    let (ok, log) = ironclone(&["backup", path_str(&disk), path_str(&repo), "--name", "img"]);
    assert!(ok, "backup failed:\n{log}");
    let line = log
        .lines()
        .find(|l| l.trim_start().starts_with("p2 "))
        .unwrap_or("");
    assert!(
        line.contains("btrfs") && !line.contains("raw"),
        "btrfs not mapped: {line}\n{log}"
    );
    let s = Source {
        _dir: td,
        dir: dir.clone(),
        disk: disk.clone(),
        repo,
        size,
        gpt: true,
        fss: vec![ext],
    };

    let t = s.target("grow.img", size * 3 / 2);
    let log = s.restore_ok(&t, &[]);
    s.check(&t, true, &log);
    let (nstart, nlen) = part(&t, 2);
    assert_eq!(nlen, BTRFS_LEN, "btrfs partition size\n{log}");
    assert_ne!(
        nstart, start,
        "the fixture meant the btrfs partition to move\n{log}"
    );
    let out = dir.join("chk.img");
    dd_out(&t, &out, nstart, nlen);
    let (ok, text) = run_status("btrfs", &["check", "--readonly", path_str(&out)]);
    assert!(ok, "btrfs check after restore:\n{text}\n{log}");
    assert_eq!(uuid(&out), src_uuid, "btrfs fsid\n{log}");
    assert_eq!(files_of(&out, &mnt), want, "files after restore\n{log}");
    std::fs::remove_file(&t).unwrap();

    // 180 MiB holds the 160 MiB btrfs but not the ext4 beside it.
    let t = s.target("small.img", 180 * MIB);
    let before = b2sum(&t);
    let (ok, out) = s.restore(&t, &[]);
    assert!(!ok, "a restore onto a too small target succeeded:\n{out}");
    assert!(out.contains("missing"), "{out}");
    assert_eq!(before, b2sum(&t), "the refused restore wrote to the target");
}
