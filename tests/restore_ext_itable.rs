//! Issue 16 item 6: the never-used end of each ext4 inode table is neither read nor
//! stored, and a restore onto a disk full of old bytes still leaves a correct
//! filesystem. Proved with the tools, not our decoders: `e2fsck -fn` after the restore,
//! after a mount that writes files, and after `tune2fs -O ^metadata_csum,^uninit_bg`
//! (from then on every inode is scanned, tails included); and no group may claim
//! ITABLE_ZEROED while its tail holds anything but zeros. Needs root (loop mounts).

mod common;
mod fsfixture;

use common::{path_str, require_tool, run, run_status, Rng};
use fsfixture::itable_tails;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_ironclone");
const MIB: u64 = 1 << 20;

fn fsck_clean(img: &Path, when: &str) {
    let (ok, out) = run_status("e2fsck", &["-fn", path_str(img)]);
    assert!(ok, "e2fsck -fn {when}:\n{out}");
}

/// Group number → its flags, from dumpe2fs ("Group 3: (...) csum 0x... [FLAGS]").
fn group_flags(img: &Path) -> Vec<String> {
    run("dumpe2fs", &[path_str(img)])
        .lines()
        .filter(|l| l.starts_with("Group ") && l.contains("(Blocks "))
        .map(|l| l.split('[').nth(1).unwrap_or("").to_string())
        .collect()
}

/// The groups whose never-used inode-table tail holds non-zero bytes on `img`, with
/// whether each claims ITABLE_ZEROED. Tails come from dumpe2fs in table order.
fn dirty_tails(img: &Path) -> Vec<(usize, bool)> {
    let f = fs::File::open(img).unwrap();
    let flags = group_flags(img);
    let dump = run("dumpe2fs", &[path_str(img)]);
    let bs: u64 = dump
        .lines()
        .find_map(|l| l.strip_prefix("Block size:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap();
    let starts: Vec<u64> = dump
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Inode table at "))
        .map(|r| r.split('-').next().unwrap().parse().unwrap())
        .collect();
    let mut out = Vec::new();
    for (s, e) in itable_tails(img) {
        // The tail lies in the table that starts at or before it, last such one.
        let g = starts.iter().rposition(|&b| b * bs <= s).unwrap();
        let mut buf = vec![0u8; (e - s) as usize];
        f.read_exact_at(&mut buf, s).unwrap();
        if buf.iter().any(|&b| b != 0) {
            out.push((g, flags[g].contains("ITABLE_ZEROED")));
        }
    }
    out
}

fn write_files(root: &Path, seed: u64, n: usize) -> BTreeMap<String, blake3::Hash> {
    let mut rng = Rng::new(seed);
    let mut m = BTreeMap::new();
    for i in 0..n {
        let dir = format!("d{}", i % 20);
        fs::create_dir_all(root.join(&dir)).unwrap();
        let mut v = vec![0u8; 1 + rng.below(64 << 10) as usize];
        rng.fill(&mut v);
        let rel = format!("{dir}/f{i}");
        fs::write(root.join(&rel), &v).unwrap();
        m.insert(rel, blake3::hash(&v));
    }
    m
}

fn check_files(root: &Path, files: &BTreeMap<String, blake3::Hash>) {
    for (rel, want) in files {
        let got = blake3::hash(&fs::read(root.join(rel)).unwrap());
        assert_eq!(&got, want, "content of {rel}");
    }
}

#[test]
#[ignore = "needs root"]
fn restore_onto_random_bytes_leaves_unused_inode_tables_to_the_kernel() {
    for t in [
        "mkfs.ext4",
        "e2fsck",
        "dumpe2fs",
        "tune2fs",
        "mount",
        "umount",
    ] {
        require_tool(t);
    }
    let td = common::tempdir();
    let dir = td.path();
    // lazy_itable_init=0: every group says ITABLE_ZEROED, the case where leaving the
    // tails out would be wrong without the restore's fix. -i 4096: 16 MiB of tables.
    let tree = dir.join("tree");
    let files = write_files(&tree, 1, 40);
    let data: u64 = files
        .keys()
        .map(|r| fs::metadata(tree.join(r)).unwrap().len())
        .sum();
    let src = dir.join("src.img");
    let size = 256 * MIB;
    fs::File::create(&src).unwrap().set_len(size).unwrap();
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-b",
            "4096",
            "-i",
            "4096",
            "-J",
            "size=4",
            "-E",
            "lazy_itable_init=0",
            "-d",
            path_str(&tree),
            path_str(&src),
        ],
    );
    let tails: u64 = itable_tails(&src).iter().map(|&(s, e)| e - s).sum();
    assert!(tails > 15 * MIB, "fixture: {tails} bytes of unused tables");

    let repo = dir.join("repo");
    let (ok, out) = run_status(
        BIN,
        &["backup", path_str(&src), path_str(&repo), "--name", "img"],
    );
    assert!(ok, "backup:\n{out}");
    let m: serde_json::Value = serde_json::from_slice(&common::json_file_bytes(
        fs::read(repo.join("images/img.json")).unwrap(),
    ))
    .unwrap();
    let read = m["stats"]["bytes_read"].as_u64().unwrap();
    // Files, the 4 MiB journal, and 4 MiB for bitmaps, descriptors, the used inode
    // blocks and directories: never the 16 MiB of tables nobody used.
    assert!(
        read <= data + 8 * MIB,
        "backup read {read} bytes for {data} bytes of files ({tails} of unused tables)"
    );

    // The target: the same size, full of random bytes.
    let tgt = dir.join("target.img");
    let f = fs::File::create(&tgt).unwrap();
    let mut rng = Rng::new(7);
    let mut buf = vec![0u8; 4 * MIB as usize];
    for off in (0..size).step_by(buf.len()) {
        rng.fill(&mut buf);
        f.write_all_at(&buf, off).unwrap();
    }
    drop(f);
    let (ok, out) = run_status(
        BIN,
        &[
            "restore",
            path_str(&repo),
            "img",
            path_str(&tgt),
            "--yes",
            "--no-nvram",
        ],
    );
    assert!(ok, "restore:\n{out}");
    fsck_clean(&tgt, "after the restore");
    let lying = dirty_tails(&tgt);
    assert!(
        !lying.is_empty(),
        "the target's old bytes should be in the tails"
    );
    assert!(
        lying.iter().all(|&(_, zeroed)| !zeroed),
        "groups claim ITABLE_ZEROED over old bytes (group, claims): {lying:?}\n{out}"
    );

    // Mount, check and add files (new inodes land in the old-byte tails), unmount.
    // init_itable=0: the kernel zeroes the flagged tables without pausing between them.
    let mnt = dir.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let opts = "loop,init_itable=0";
    let mut added = BTreeMap::new();
    for round in 0..4 {
        run("mount", &["-o", opts, path_str(&tgt), path_str(&mnt)]);
        let r = std::panic::catch_unwind(|| {
            check_files(&mnt, &files);
            if round == 0 {
                write_files(&mnt.join("new"), 2, 300)
            } else {
                BTreeMap::new()
            }
        });
        // lazyinit starts within 5 s of the mount (EXT4_DEF_LI_MAX_START_DELAY).
        std::thread::sleep(std::time::Duration::from_secs(6));
        run("umount", &[path_str(&mnt)]);
        added.extend(r.expect("files on the mounted restore"));
        fsck_clean(&tgt, &format!("after mount {round}"));
        if group_flags(&tgt)
            .iter()
            .all(|f| f.contains("ITABLE_ZEROED"))
        {
            break;
        }
    }
    assert!(
        group_flags(&tgt)
            .iter()
            .all(|f| f.contains("ITABLE_ZEROED")),
        "the kernel did not initialise the inode tables: {:?}",
        group_flags(&tgt)
    );
    assert_eq!(
        dirty_tails(&tgt),
        vec![],
        "tails after the kernel's lazyinit"
    );
    // From here on every inode is read, never-used ones included.
    run("e2fsck", &["-fy", path_str(&tgt)]);
    run(
        "tune2fs",
        &["-O", "^metadata_csum,^uninit_bg", path_str(&tgt)],
    );
    fsck_clean(&tgt, "after tune2fs -O ^metadata_csum,^uninit_bg");
    run("mount", &["-o", "loop,ro", path_str(&tgt), path_str(&mnt)]);
    let r = std::panic::catch_unwind(|| {
        check_files(&mnt, &files);
        check_files(&mnt.join("new"), &added);
    });
    run("umount", &[path_str(&mnt)]);
    r.expect("files after tune2fs");
}
