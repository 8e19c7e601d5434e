//! XFS used map against the reference tools: the used count against
//! `xfs_db -r -c 'freesp -s'` and partclone.xfs, and the strong proof: copying ONLY the
//! mapped extents onto a zeroed file gives a filesystem `xfs_repair -n` calls clean and
//! whose files all read back identical (mounted `ro,norecovery`). Fixtures are made
//! by mkfs.xfs and filled through a loop mount, so those tests need root; the v4 one is
//! filled through a prototype file and read back with xfs_db. Corrupt AG headers, tree
//! blocks and superblocks: tests/usedmap_xfs_bad.rs.

mod fsfixture;
mod xfs_fixture;

use fsfixture::*;
use ironclone::device::{open_path, Access};
use ironclone::probe::FsKind;
use ironclone::usedmap::{map_filesystem, map_xfs, UsedMap, XfsError};
use std::path::Path;
use std::time::Instant;
use xfs_fixture::{mkfs, LoopMount, SIZE};

/// Writes files (many small ones, every other one then deleted so the free space is
/// fragmented into many extents, and a few big ones), returns (path, content).
fn populate(img: &Path, dir: &Path, small: usize) -> Vec<(String, Vec<u8>)> {
    let mnt = dir.join("mnt");
    let mut keep = Vec::new();
    {
        let _m = LoopMount::new(img, &mnt, "rw");
        std::fs::create_dir_all(mnt.join("d/e")).unwrap();
        for i in 0..small {
            let data = prng_bytes(i as u64, 1000 + (i * 1531) % 9000);
            let name = format!("d/e/f{i}");
            std::fs::write(mnt.join(&name), &data).unwrap();
            keep.push((name, data));
        }
        for (i, size) in [(1000u64, 7 << 20), (1001, 3 << 20 | 123)] {
            let data = prng_bytes(i, size);
            let name = format!("big{i}");
            std::fs::write(mnt.join(&name), &data).unwrap();
            keep.push((name, data));
        }
        run("sync", &[]);
    }
    {
        let _m = LoopMount::new(img, &mnt, "rw");
        for i in (0..small).step_by(2) {
            std::fs::remove_file(mnt.join(format!("d/e/f{i}"))).unwrap();
        }
    }
    keep.retain(|(p, _)| {
        p.strip_prefix("d/e/f")
            .and_then(|n| n.parse::<usize>().ok())
            .is_none_or(|n| n % 2 != 0)
    });
    keep
}

fn db(img: &Path, cmds: &[&str]) -> String {
    let mut a = vec!["-r"];
    for c in cmds {
        a.push("-c");
        a.push(c);
    }
    a.push(img.to_str().unwrap());
    String::from_utf8_lossy(&run("xfs_db", &a).stdout).into_owned()
}

fn db_field(out: &str, key: &str) -> u64 {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key} = ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in xfs_db output:\n{out}"))
}

/// Used bytes as xfs_db counts them: every block minus the free-space trees' total.
fn xfs_db_used(img: &Path) -> u64 {
    let sb = db(img, &["sb 0", "p dblocks", "p blocksize"]);
    let free = db(img, &["freesp -s"]);
    let total_free: u64 = free
        .lines()
        .find_map(|l| l.trim().strip_prefix("total free blocks "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no total in freesp output:\n{free}"));
    (db_field(&sb, "dblocks") - total_free) * db_field(&sb, "blocksize")
}

/// partclone.xfs's "Space in use" plus the free-space trees' blocks beyond their roots
/// (`agf_btreeblks`, read by xfs_db): partclone prints `sb_dblocks - sb_fdblocks`, and
/// `sb_fdblocks` counts those tree blocks as free although they hold the trees (and
/// partclone copies them). The map counts what it copies, as `xfs_db freesp` does.
fn partclone_plus_btreeblks(img: &Path) -> u64 {
    let sb = db(img, &["sb 0", "p agcount", "p blocksize"]);
    let btree: u64 = (0..db_field(&sb, "agcount"))
        .map(|ag| {
            db_field(
                &db(img, &[&format!("agf {ag}"), "p btreeblks"]),
                "btreeblks",
            )
        })
        .sum();
    partclone_used("partclone.xfs", img) + btree * db_field(&sb, "blocksize")
}

/// The deepest by-block-number free-space tree over all AGs.
fn max_bno_level(img: &Path) -> u64 {
    let agcount = db_field(&db(img, &["sb 0", "p agcount"]), "agcount");
    (0..agcount)
        .map(|ag| {
            let out = db(img, &[&format!("agf {ag}"), "p levels"]);
            let l = out.lines().next().unwrap_or("");
            // "levels[0-2] = 0:2 1:2 2:1": bno is index 0.
            l.split_whitespace()
                .nth(2)
                .and_then(|v| v.strip_prefix("0:"))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no bno level in {l:?}"))
        })
        .max()
        .unwrap()
}

/// Fills a new filesystem through an mkfs.xfs prototype file instead of a mount: this
/// kernel, like current distributions', cannot mount v4 (crc=0) filesystems.
fn mkfs_proto(img: &Path, dir: &Path, args: &[&str], files: usize) -> Vec<(String, Vec<u8>)> {
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let mut proto = String::from("/dev/null\n0 0\nd--755 0 0\n");
    let mut keep = Vec::new();
    for i in 0..files {
        let data = prng_bytes(i as u64, 1000 + (i * 1531) % 9000 + (i % 50) * 40_000);
        let name = format!("f{i}");
        let src = tree.join(&name);
        std::fs::write(&src, &data).unwrap();
        proto += &format!("{name} ---644 0 0 {}\n", src.display());
        keep.push((name, data));
    }
    proto += "$\n";
    let pf = dir.join("proto");
    std::fs::write(&pf, proto).unwrap();
    let mut a = args.to_vec();
    a.extend_from_slice(&["-p", pf.to_str().unwrap()]);
    mkfs(img, &a);
    keep
}

/// Each file read back from `img` without mounting it: its extents from `xfs_db bmap`
/// on that image (so its own inodes and extent lists are what is checked), its bytes
/// read from those extents.
fn check_files_unmounted(img: &Path, keep: &[(String, Vec<u8>)]) {
    let sb = db(img, &["sb 0", "p blocksize", "p agblocks"]);
    let (bs, agblocks) = (db_field(&sb, "blocksize"), db_field(&sb, "agblocks"));
    for (name, data) in keep {
        let out = db(img, &[&format!("path /{name}"), "bmap", "p core.size"]);
        assert_eq!(
            db_field(&out, "core.size"),
            data.len() as u64,
            "{name}: size"
        );
        let mut got = Vec::new();
        for l in out.lines().filter(|l| l.starts_with("data offset")) {
            // "data offset 0 startblock 32780 (1/12) count 74 flag 0"
            let w: Vec<&str> = l.split_whitespace().collect();
            let off: u64 = w[2].parse().unwrap();
            let (ag, agbno) = w[5]
                .trim_matches(|c| c == '(' || c == ')')
                .split_once('/')
                .unwrap();
            let count: u64 = w[7].parse().unwrap();
            let at = (ag.parse::<u64>().unwrap() * agblocks + agbno.parse::<u64>().unwrap()) * bs;
            assert_eq!(off * bs, got.len() as u64, "{name}: a hole");
            got.extend(read_range(img, at, (count * bs) as usize));
        }
        got.truncate(data.len());
        assert!(
            got == *data,
            "{name}: content differs after used-only restore"
        );
    }
}

fn map_path(img: &Path) -> UsedMap {
    let dev = open_path(img, Access::ReadOnly).expect("open image");
    map_xfs(&dev).expect("map_xfs")
}

fn check_restore(img: &Path, map: &UsedMap, keep: &[(String, Vec<u8>)], dir: &Path) {
    let dst = dir.join("restored.img");
    restore_extents(img, &dst, map);
    let out = run_status("xfs_repair", &["-n", "-f", dst.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "xfs_repair -n on the used-only copy: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mnt = dir.join("check");
    let _m = LoopMount::new(&dst, &mnt, "ro,norecovery");
    for (name, data) in keep {
        let got = std::fs::read(mnt.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            got == *data,
            "{name}: content differs after used-only restore"
        );
    }
}

/// mkfs with `args`, fill, then: count vs xfs_db and partclone, restore-only-used check.
fn case(label: &str, args: &[&str], small: usize) -> UsedMap {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("src.img");
    mkfs(&img, args);
    let keep = populate(&img, t.path(), small);
    let start = Instant::now();
    let map = map_path(&img);
    let took = start.elapsed();
    let start = Instant::now();
    let pc = partclone_plus_btreeblks(&img);
    let pc_took = start.elapsed();
    eprintln!(
        "{label}: used {} copy {} of {} in {} extents; map {took:?}, partclone -c {pc_took:?}; \
         warnings {:?}",
        map.used_bytes,
        map.copy_bytes(),
        map.total_bytes,
        map.extents.len(),
        map.warnings
    );
    assert!(!map.raw);
    assert_eq!(
        map.used_bytes,
        xfs_db_used(&img),
        "{label}: vs xfs_db freesp"
    );
    assert_eq!(
        map.used_bytes, pc,
        "{label}: vs partclone.xfs Space in use + agf_btreeblks"
    );
    assert_eq!(map.copy_bytes(), map.used_bytes, "{label}: copy vs used");
    check_restore(&img, &map, &keep, t.path());
    map
}

#[test]
#[ignore = "needs root"]
fn v5_default() {
    let m = case("v5 default", &[], 300);
    assert_eq!(m.block_size, 4096);
}

#[test]
fn v4_no_crc() {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("src.img");
    let keep = mkfs_proto(&img, t.path(), &["-m", "crc=0"], 200);
    let map = map_path(&img);
    eprintln!("v4: used {} of {}", map.used_bytes, map.total_bytes);
    assert_eq!(map.used_bytes, xfs_db_used(&img), "v4: vs xfs_db freesp");
    assert_eq!(
        map.used_bytes,
        partclone_plus_btreeblks(&img),
        "v4: vs partclone"
    );
    let dst = t.path().join("restored.img");
    restore_extents(&img, &dst, &map);
    let out = run_status("xfs_repair", &["-n", "-f", dst.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "xfs_repair -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_files_unmounted(&dst, &keep);
}

#[test]
#[ignore = "needs root"]
fn reflink_rmapbt_two_ags() {
    case(
        "reflink+rmapbt, 2 AGs",
        &["-m", "reflink=1,rmapbt=1,finobt=1", "-d", "agcount=2"],
        300,
    );
}

#[test]
#[ignore = "needs root"]
fn sector_4096() {
    case("4 KiB sectors", &["-s", "size=4096"], 300);
}

/// 1 KiB blocks hold 121 free extents a leaf (v5): 3000 files, half deleted, give the
/// bno tree a second level, so the node walk is exercised.
#[test]
#[ignore = "needs root"]
fn blocks_1024_two_level_tree() {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("src.img");
    mkfs(&img, &["-b", "size=1024", "-d", "agcount=2"]);
    let keep = populate(&img, t.path(), 3000);
    assert!(
        max_bno_level(&img) >= 2,
        "fixture must have a 2-level bno tree"
    );
    let map = map_path(&img);
    assert_eq!(map.block_size, 1024);
    assert_eq!(map.used_bytes, xfs_db_used(&img));
    assert_eq!(map.used_bytes, partclone_plus_btreeblks(&img));
    check_restore(&img, &map, &keep, t.path());
    // The check can fail: without the last extent (the log or the last AG's data)
    // the copy is not whole.
    let mut short = map.clone();
    short.extents.pop();
    let dst = t.path().join("short.img");
    restore_extents(&img, &dst, &short);
    let out = run_status("xfs_repair", &["-n", "-f", dst.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "a copy missing its last extent passed xfs_repair -n"
    );
}

/// A filesystem shut down with changes in its log (`xfs_io -x -c "shutdown -f"`, as
/// after a crash): xfs_repair -n says the log is dirty, and the map refuses it, so the
/// backup images it whole.
#[test]
#[ignore = "needs root"]
fn dirty_log_is_imaged_raw() {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("src.img");
    mkfs(&img, &[]);
    let mnt = t.path().join("mnt");
    {
        let _m = LoopMount::new(&img, &mnt, "rw");
        std::fs::write(mnt.join("a"), prng_bytes(1, 5 << 20)).unwrap();
        run("sync", &[]);
        std::fs::write(mnt.join("b"), prng_bytes(2, 3 << 20)).unwrap();
        run(
            "xfs_io",
            &["-x", "-c", "shutdown -f", mnt.to_str().unwrap()],
        );
    }
    let out = run_status("xfs_repair", &["-n", "-f", img.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("log"),
        "xfs_repair -n: {text}"
    );
    let dev = open_path(&img, Access::ReadOnly).unwrap();
    let e = map_xfs(&dev).unwrap_err();
    assert!(matches!(e, XfsError::DirtyLog { .. }), "{e}");
    let m = map_filesystem(&dev, FsKind::Xfs);
    assert!(m.raw && m.raw_reason.unwrap().contains("log is not clean"));
    // Mounted and unmounted once (the log replayed), it maps again.
    drop(LoopMount::new(&img, &mnt, "rw"));
    assert!(map_xfs(&dev).is_ok());
}

/// A small log written round more than once (cycle numbers above 1, the head in the
/// middle): still clean after an unmount, and the counts still match.
#[test]
#[ignore = "needs root"]
fn wrapped_clean_log_maps() {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("src.img");
    sparse_file(&img, SIZE);
    // The fstests variables let mkfs.xfs make a log smaller than 64 MiB.
    let out = std::process::Command::new("mkfs.xfs")
        .args(["-q", "-f", "-l", "size=1400b", img.to_str().unwrap()])
        .envs([
            ("TEST_DIR", "/tmp"),
            ("TEST_DEV", "/dev/null"),
            ("QA_CHECK_FS", "xfs"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mnt = t.path().join("mnt");
    {
        let _m = LoopMount::new(&img, &mnt, "rw");
        let d = mnt.join("d");
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..6000 {
            std::fs::write(d.join(format!("f{i}")), i.to_string()).unwrap();
        }
        for round in 0..3 {
            for i in 0..6000 {
                let (a, b) = (format!("f{i}"), format!("r{round}f{i}"));
                std::fs::rename(d.join(&a), d.join(&b)).unwrap();
                std::fs::rename(d.join(&b), d.join(&a)).unwrap();
            }
        }
    }
    let lp = run("xfs_logprint", &["-d", img.to_str().unwrap()]);
    let lp = String::from_utf8_lossy(&lp.stdout);
    assert!(
        lp.contains("Cycle 0x00000002"),
        "the log did not wrap:\n{}",
        &lp[..lp.len().min(2000)]
    );
    let map = map_path(&img);
    assert_eq!(map.used_bytes, xfs_db_used(&img));
}
