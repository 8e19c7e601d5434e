//! A btrfs partition through the binary (issue 18's "Fedora" disk): `ironclone
//! backup` of a GPT disk (p1 ext4 /boot, p2 btrfs with "root" and "home" subvolumes,
//! a snapshot and zstd-compressed files), `ironclone restore` onto a 1.5x disk (btrfs
//! grown with `btrfs filesystem resize max`), onto a 0.6x disk (shrunk in the scratch
//! file, its chunks relocated) and onto one too small for the data (refused before
//! anything is written). Judged by sgdisk -v, e2fsck, `btrfs check --readonly`, the
//! fsid, the superblock's `total_bytes` and `dev_item.total_bytes` against the
//! partition size (`btrfs inspect-internal dump-super`), the subvolume list, and every
//! file of every subvolume and the snapshot read back through a read-only mount. Also:
//! a btrfs whose chunks do not fit refused by min-dev-size, and one under the kernel's
//! 256 MiB resize floor kept at its size. Needs root (loop mounts).

mod common;
mod fsfixture;
mod restore_fixture;

use common::{path_str, run, run_status};
use fsfixture::read_tree;
use restore_fixture::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Large enough that 0.6x of the disk still gives it more than the kernel's 256 MiB
/// resize floor.
const BTRFS_LEN: u64 = 640 * MIB;

/// Mounts `img` read-only, returns every file, unmounts (also when a read fails, so
/// a failing check leaves no mount behind).
fn files_of(img: &Path, dir: &Path) -> BTreeMap<String, Vec<u8>> {
    struct Mounted<'a>(&'a Path);
    impl Drop for Mounted<'_> {
        fn drop(&mut self) {
            let _ = run_status("umount", &[path_str(self.0)]);
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    run("mount", &["-o", "loop,ro", path_str(img), path_str(dir)]);
    let _m = Mounted(dir);
    read_tree(dir)
}

fn super_field(img: &Path, field: &str) -> String {
    run("btrfs", &["inspect-internal", "dump-super", path_str(img)])
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(field)).then(|| w.next().unwrap_or("").to_string())
        })
        .unwrap_or_else(|| panic!("no {field} in dump-super"))
}

/// Where the last chunk's device extent ends (`DEV_EXTENT` keys and their `length`
/// in the device tree).
fn dev_extents_end(img: &Path) -> u64 {
    let text = run(
        "btrfs",
        &["inspect-internal", "dump-tree", "-t", "dev", path_str(img)],
    );
    let mut end = 0;
    let mut start = None;
    for l in text.lines() {
        if let Some(rest) = l.split("DEV_EXTENT ").nth(1) {
            start = rest
                .split(')')
                .next()
                .and_then(|v| v.trim().parse::<u64>().ok());
        } else if let (Some(s), Some(len)) = (start, l.split(" length ").nth(1)) {
            let len: u64 = len.split_whitespace().next().unwrap().parse().unwrap();
            end = end.max(s + len);
            start = None;
        }
    }
    assert!(end > 0, "no DEV_EXTENT in the device tree:\n{text}");
    end
}

/// `btrfs inspect-internal min-dev-size` of a mounted btrfs, in bytes.
fn min_dev_size(mnt: &Path) -> u64 {
    let out = run(
        "btrfs",
        &["inspect-internal", "min-dev-size", path_str(mnt)],
    );
    out.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("min-dev-size said {out:?}"))
}

/// The subvolumes and snapshots of the btrfs in `img`, by name, sorted (the root
/// tree's ROOT_REF items, read offline by btrfs-progs).
fn subvolumes(img: &Path) -> Vec<String> {
    let out = run(
        "btrfs",
        &["inspect-internal", "dump-tree", "-t", "root", path_str(img)],
    );
    let mut v: Vec<String> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("root ref key dirid "))
        .filter_map(|l| l.split(" name ").nth(1))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn uuid(img: &Path) -> String {
    super_field(img, "fsid")
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
fn btrfs_grows_shrinks_and_a_too_small_target_is_refused() {
    for t in ["sfdisk", "sgdisk", "mkfs.ext4", "mkfs.btrfs", "btrfs"] {
        common::require_tool(t);
    }
    let td = common::tempdir();
    let dir = td.path().to_path_buf();
    let disk = dir.join("src.img");
    let size = 682 * MIB;
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    common::run_in(
        "sfdisk",
        &["-q", path_str(&disk)],
        Some("label: gpt\n,40M,L\n,640M,L\n"),
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
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    // Where btrfs puts chunks depends on the machine's load (freed extents are
    // released late, the snapshot allocates anew): the fixture is made again until
    // it is what the test needs, a btrfs that fits the 0.6x partition (384 MiB) by
    // min-dev-size yet has a chunk past that end.
    for attempt in 0.. {
        std::fs::File::create(&img).unwrap().set_len(len).unwrap();
        run("mkfs.btrfs", &["-q", "-f", "-L", "fedora", path_str(&img)]);
        run(
            "mount",
            &["-o", "loop,compress=zstd", path_str(&img), path_str(&mnt)],
        );
        // Fedora's layout: "root" and "home" subvolumes (and a snapshot, below).
        for sv in ["root", "home"] {
            run("btrfs", &["subvolume", "create", path_str(&mnt.join(sv))]);
        }
        std::fs::write(mnt.join("home/user.txt"), "a user's file").unwrap();
        let mut rng = common::Rng::new(77);
        for i in 0..5 {
            let mut v = vec![0u8; 300_000 + i * 211_111];
            rng.fill(&mut v);
            std::fs::write(mnt.join(format!("root/f{i}.bin")), &v).unwrap();
        }
        // 288 MB over several data chunks, then the first 240 MB deleted and the emptied
        // chunks dropped (balance -dusage=0): the chunks still in use lie past the 0.6x
        // target's end, so the shrink has to relocate them. How the 48 MB kept spread over
        // chunks varies with the machine's load (one to three 64 MiB chunks), so the
        // sizes leave room for the worst case under min-dev-size.
        for i in 0..24 {
            let mut v = vec![0u8; 12 << 20];
            rng.fill(&mut v);
            std::fs::write(mnt.join(format!("big{i}.bin")), &v).unwrap();
            run("sync", &[]);
        }
        for i in 0..20 {
            std::fs::remove_file(mnt.join(format!("big{i}.bin"))).unwrap();
        }
        // A deleted file's extents are freed later (delayed iputs), so the chunks are
        // only sure to be empty once it is unmounted: a mere sync left two of them in
        // use on a busy machine, and the shrink was then refused.
        // Even then a loaded machine (two of these tests at once) kept emptied chunks
        // allocated, min-dev-size said 505 MiB, and the 0.6x restore was rightly refused:
        // the rounds repeat until the fixture is what the test needs.
        for round in 0.. {
            run("umount", &[path_str(&mnt)]);
            run(
                "mount",
                &["-o", "loop,compress=zstd", path_str(&img), path_str(&mnt)],
            );
            run("btrfs", &["balance", "start", "-dusage=0", path_str(&mnt)]);
            run("btrfs", &["filesystem", "sync", path_str(&mnt)]);
            let need = min_dev_size(&mnt);
            // The 0.6x restore gives it 384 MiB; min-dev-size says 377 MiB when the fixture is right.
            if need <= 384 * MIB {
                break;
            }
            if round == 4 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
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
        let need = min_dev_size(&mnt);
        run("umount", &[path_str(&mnt)]);
        let end = dev_extents_end(&img);
        if need <= 384 * MIB && end > 384 * MIB {
            break;
        }
        assert!(
            attempt < 3,
            "fixture: min-dev-size {need}, chunks end at {end}"
        );
    }
    let want = files_of(&img, &mnt);
    assert!(
        want.contains_key("snap/text.txt")
            && want.contains_key("root/after.txt")
            && want.contains_key("home/user.txt")
    );
    assert_eq!(subvolumes(&img), ["home", "root", "snap"]);
    let src_uuid = uuid(&img);
    let src_chunks_end = dev_extents_end(&img);
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

    let check_btrfs = |t: &Path, log: &str| -> u64 {
        let (nstart, nlen) = part(t, 2);
        let out = dir.join("chk.img");
        dd_out(t, &out, nstart, nlen);
        let (ok, text) = run_status("btrfs", &["check", "--readonly", path_str(&out)]);
        assert!(ok, "btrfs check after restore:\n{text}\n{log}");
        assert_eq!(uuid(&out), src_uuid, "btrfs fsid\n{log}");
        // The last partition ends where the backup GPT begins, off the 4 KiB grid;
        // btrfs sizes itself in whole sectors (4 KiB).
        for f in ["total_bytes", "dev_item.total_bytes"] {
            assert_eq!(
                super_field(&out, f),
                (nlen / 4096 * 4096).to_string(),
                "btrfs {f} against its partition's size\n{log}"
            );
        }
        assert_eq!(files_of(&out, &mnt), want, "files after restore\n{log}");
        assert_eq!(subvolumes(&out), ["home", "root", "snap"], "{log}");
        std::fs::remove_file(&out).unwrap();
        nlen
    };

    let t = s.target("grow.img", size * 3 / 2);
    let log = s.restore_ok(&t, &[]);
    s.check(&t, true, &log);
    assert!(log.contains("btrfs grown"), "{log}");
    assert!(
        check_btrfs(&t, &log) > BTRFS_LEN,
        "btrfs did not grow\n{log}"
    );
    std::fs::remove_file(&t).unwrap();

    let t = s.target("shrink.img", size * 6 / 10);
    let log = s.restore_ok(&t, &[]);
    s.check(&t, true, &log);
    assert!(log.contains("btrfs shrunk"), "{log}");
    let nlen = check_btrfs(&t, &log);
    assert!(
        src_chunks_end > nlen,
        "no chunk past the new end ({src_chunks_end} <= {nlen}): nothing was relocated"
    );
    assert!(
        (256 * MIB..BTRFS_LEN).contains(&nlen),
        "btrfs size {nlen}\n{log}"
    );
    std::fs::remove_file(&t).unwrap();

    // 200 MiB cannot hold the btrfs at the kernel's 256 MiB resize floor.
    let t = s.target("small.img", 200 * MIB);
    let before = b2sum(&t);
    let (ok, out) = s.restore(&t, &[]);
    assert!(!ok, "a restore onto a too small target succeeded:\n{out}");
    assert!(out.contains("missing"), "{out}");
    assert_eq!(before, b2sum(&t), "the refused restore wrote to the target");
}

/// A btrfs whose data chunks are all half used (every other file deleted): its used
/// blocks would fit the 0.6x disk, so the planner gives it 288 MiB, but its allocated
/// chunks, counted as they lie (not packed), add up to 293 MiB, and `btrfs
/// inspect-internal min-dev-size` on the scratch mount says so: the restore is refused
/// with that minimum before the target's first byte is written. (The kernel could pack
/// them into 288 MiB; the minimum is kept conservative, see docs/RESIZE.md.)
#[test]
#[ignore = "needs root"]
fn btrfs_whose_chunks_do_not_fit_is_refused_by_min_dev_size() {
    for t in ["sfdisk", "mkfs.btrfs", "btrfs"] {
        common::require_tool(t);
    }
    let td = common::tempdir();
    let dir = td.path().to_path_buf();
    let disk = dir.join("src.img");
    let size = 482 * MIB;
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    common::run_in(
        "sfdisk",
        &["-q", path_str(&disk)],
        Some("label: gpt\n,480M,L\n"),
    );
    let (start, len) = part(&disk, 1);
    let img = dir.join("p1.img");
    std::fs::File::create(&img).unwrap().set_len(len).unwrap();
    run("mkfs.btrfs", &["-q", "-f", path_str(&img)]);
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    run("mount", &["-o", "loop", path_str(&img), path_str(&mnt)]);
    let mut rng = common::Rng::new(78);
    for i in 0..16 {
        let mut v = vec![0u8; 12 << 20];
        rng.fill(&mut v);
        std::fs::write(mnt.join(format!("big{i}.bin")), &v).unwrap();
        run("sync", &[]);
    }
    for i in (0..16).step_by(2) {
        std::fs::remove_file(mnt.join(format!("big{i}.bin"))).unwrap();
    }
    run("umount", &[path_str(&mnt)]);
    dd_in(&disk, &img, start);
    std::fs::remove_file(&img).unwrap();

    let repo = dir.join("repo");
    let (ok, log) = ironclone(&["backup", path_str(&disk), path_str(&repo), "--name", "img"]);
    assert!(ok, "backup failed:\n{log}");
    let s = Source {
        _dir: td,
        dir: dir.clone(),
        disk,
        repo,
        size,
        gpt: true,
        fss: vec![],
    };
    let t = s.target("small.img", size * 6 / 10);
    let before = b2sum(&t);
    let (ok, out) = s.restore(&t, &[]);
    assert!(
        !ok,
        "restore succeeded although the chunks do not fit:\n{out}"
    );
    assert!(
        out.contains("btrfs filesystem needs at least") && out.contains("Nothing was written"),
        "{out}"
    );
    assert_eq!(before, b2sum(&t), "the refused restore wrote to the target");
}

/// A 160 MiB btrfs (mkfs.btrfs makes them from ~109 MiB) given a larger partition:
/// under 256 MiB the kernel refuses any resize (EINVAL), so it keeps its size there
/// and the report says why; from 256 MiB up it grows.
#[test]
#[ignore = "needs root"]
fn small_btrfs_keeps_its_size_under_256_mib_and_grows_above() {
    for t in ["sfdisk", "mkfs.btrfs", "btrfs"] {
        common::require_tool(t);
    }
    let td = common::tempdir();
    let dir = td.path().to_path_buf();
    let disk = dir.join("src.img");
    let size = 162 * MIB;
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    common::run_in(
        "sfdisk",
        &["-q", path_str(&disk)],
        Some("label: gpt\n,160M,L\n"),
    );
    let (start, len) = part(&disk, 1);
    let img = dir.join("p1.img");
    std::fs::File::create(&img).unwrap().set_len(len).unwrap();
    run("mkfs.btrfs", &["-q", "-f", path_str(&img)]);
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    run("mount", &["-o", "loop", path_str(&img), path_str(&mnt)]);
    let mut rng = common::Rng::new(79);
    for i in 0..3 {
        let mut v = vec![0u8; 2_000_000 + i * 77_777];
        rng.fill(&mut v);
        std::fs::write(mnt.join(format!("f{i}.bin")), &v).unwrap();
    }
    run("umount", &[path_str(&mnt)]);
    let want = files_of(&img, &mnt);
    let src_uuid = uuid(&img);
    dd_in(&disk, &img, start);
    std::fs::remove_file(&img).unwrap();

    let repo = dir.join("repo");
    let (ok, log) = ironclone(&["backup", path_str(&disk), path_str(&repo), "--name", "img"]);
    assert!(ok, "backup failed:\n{log}");
    let s = Source {
        _dir: td,
        dir: dir.clone(),
        disk,
        repo,
        size,
        gpt: true,
        fss: vec![],
    };
    for (name, target, grows) in [
        ("small.img", 220 * MIB, false),
        ("big.img", 330 * MIB, true),
    ] {
        let t = s.target(name, target);
        let log = s.restore_ok(&t, &[]);
        s.check(&t, true, &log);
        let (nstart, nlen) = part(&t, 1);
        assert!(nlen > len, "the partition did not grow\n{log}");
        // The plan table says what happens to the filesystem, not to the partition.
        let row = log
            .lines()
            .find(|l| l.trim_start().starts_with("1  btrfs"))
            .unwrap_or_else(|| panic!("no plan row for p1\n{log}"));
        let action = if grows { "Grow" } else { "Copy" };
        assert!(
            row.ends_with(action),
            "plan row {row:?}, wanted {action}\n{log}"
        );
        assert_eq!(
            log.contains("(btrfs): keeps its 160 MiB"),
            !grows,
            "the plan's note on the kept size\n{log}"
        );
        let out = dir.join("chk.img");
        dd_out(&t, &out, nstart, nlen);
        let (ok, text) = run_status("btrfs", &["check", "--readonly", path_str(&out)]);
        assert!(ok, "btrfs check after restore:\n{text}\n{log}");
        assert_eq!(uuid(&out), src_uuid, "btrfs fsid\n{log}");
        let fs_len = if grows { nlen / 4096 * 4096 } else { len };
        for f in ["total_bytes", "dev_item.total_bytes"] {
            assert_eq!(super_field(&out, f), fs_len.to_string(), "{f}\n{log}");
        }
        assert_eq!(
            log.contains("btrfs keeps its"),
            !grows,
            "the report on the kept size\n{log}"
        );
        assert_eq!(files_of(&out, &mnt), want, "files after restore\n{log}");
        std::fs::remove_file(&out).unwrap();
        std::fs::remove_file(&t).unwrap();
    }
}
