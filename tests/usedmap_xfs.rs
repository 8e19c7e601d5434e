//! XFS used map against the reference tools: the used count against
//! `xfs_db -r -c 'freesp -s'` and partclone.xfs, and the strong proof: copying ONLY the
//! mapped extents onto a zeroed file gives a filesystem `xfs_repair -n` calls clean and
//! whose files all read back identical (mounted `ro,norecovery`). Fixtures are made
//! by mkfs.xfs and filled through a loop mount, so those tests need root; the v4 one is
//! filled through a prototype file and read back with xfs_db. Corrupt AG headers, tree blocks and superblocks must give
//! typed errors naming the structure.

mod fsfixture;

use fsfixture::*;
use ironclone::device::{open_path, Access, MemDevice};
use ironclone::ondisk::xfs::XfsDecodeError;
use ironclone::probe::FsKind;
use ironclone::usedmap::{map_filesystem, map_xfs, UsedMap, XfsError};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// mkfs.xfs refuses data sections under 300 MB.
const SIZE: u64 = 320 << 20;

/// A loop mount, unmounted on drop.
struct LoopMount(PathBuf);

impl LoopMount {
    fn new(img: &Path, dir: &Path, opts: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let o = format!("loop,{opts}");
        run(
            "mount",
            &[
                "-t",
                "xfs",
                "-o",
                &o,
                img.to_str().unwrap(),
                dir.to_str().unwrap(),
            ],
        );
        LoopMount(dir.to_path_buf())
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = run_status("umount", &[self.0.to_str().unwrap()]);
    }
}

fn mkfs(img: &Path, args: &[&str]) {
    sparse_file(img, SIZE);
    let mut a = vec!["-q", "-f"];
    a.extend_from_slice(args);
    a.push(img.to_str().unwrap());
    run("mkfs.xfs", &a);
}

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

/// A fresh, empty filesystem image to corrupt copies of.
struct Pristine {
    _t: tempfile::TempDir,
    img: PathBuf,
    bs: u64,
    agblocks: u64,
}

impl Pristine {
    fn new(args: &[&str]) -> Self {
        let t = tempfile::tempdir().unwrap();
        let img = t.path().join("src.img");
        mkfs(&img, args);
        let head = read_range(&img, 0, 512);
        let (bs, agblocks) = (be32_at(&head, 4), be32_at(&head, 84));
        Pristine {
            _t: t,
            img,
            bs: bs.into(),
            agblocks: agblocks.into(),
        }
    }

    fn be32(&self, off: u64) -> u32 {
        be32_at(&read_range(&self.img, off, 4), 0)
    }

    /// Byte offset of AG `ag`'s AGF.
    fn agf(&self, ag: u64, sect: u64) -> u64 {
        ag * self.agblocks * self.bs + sect
    }

    /// A sparse copy with `patches` (offset, bytes) written in, mapped.
    fn map_patched(&self, patches: &[(u64, &[u8])]) -> Result<UsedMap, XfsError> {
        use std::io::{Seek, SeekFrom, Write};
        let copy = self.img.with_extension("bad.img");
        run(
            "cp",
            &[
                "--sparse=always",
                self.img.to_str().unwrap(),
                copy.to_str().unwrap(),
            ],
        );
        {
            let mut f = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
            for (off, bytes) in patches {
                f.seek(SeekFrom::Start(*off)).unwrap();
                f.write_all(bytes).unwrap();
            }
        }
        let dev = open_path(&copy, Access::ReadOnly).unwrap();
        map_xfs(&dev)
    }

    fn flipped(&self, off: u64, mask: u8) -> Result<UsedMap, XfsError> {
        let b = read_range(&self.img, off, 1)[0] ^ mask;
        self.map_patched(&[(off, &[b])])
    }
}

fn be32_at(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes(b[o..o + 4].try_into().unwrap())
}

#[test]
fn corrupt_agf_magic_names_the_ag() {
    let p = Pristine::new(&["-m", "crc=0"]);
    let agf2 = p.agf(2, 512);
    assert_eq!(p.be32(agf2), 0x5841_4746);
    let e = p.map_patched(&[(agf2, b"Y")]).unwrap_err();
    assert!(
        matches!(
            e,
            XfsError::Decode {
                source: XfsDecodeError::AgfMagic { ag: 2, .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("AG 2"), "{e}");
    // Through map_filesystem: imaged raw, the reason kept.
    let copy = p.img.with_extension("bad.img");
    let m = map_filesystem(&open_path(&copy, Access::ReadOnly).unwrap(), FsKind::Xfs);
    assert!(m.raw);
    let why = m.raw_reason.unwrap();
    assert!(why.contains("AGF magic") && why.contains("AG 2"), "{why}");
    assert!(p.map_patched(&[]).is_ok());
}

#[test]
fn corrupt_v5_checksums_are_caught() {
    let p = Pristine::new(&[]);
    // A superblock byte (inside sb_fdblocks): CRC mismatch.
    let e = p.flipped(150, 1).unwrap_err();
    assert!(
        matches!(
            e,
            XfsError::Decode {
                source: XfsDecodeError::SuperblockCrc { .. },
                ..
            }
        ),
        "{e}"
    );
    // An AGF field of AG 1 (agf_freeblks): CRC mismatch naming AG 1.
    let e = p.flipped(p.agf(1, 512) + 55, 1).unwrap_err();
    assert!(
        matches!(
            e,
            XfsError::Decode {
                source: XfsDecodeError::AgfCrc { ag: 1, .. },
                ..
            }
        ),
        "{e}"
    );
    // A record in AG 3's bno root: the block's CRC fails, naming AG and block.
    let root = u64::from(p.be32(p.agf(3, 512) + 16));
    let blk = (3 * p.agblocks + root) * p.bs;
    assert_eq!(p.be32(blk), 0x4142_3342);
    let e = p.flipped(blk + 60, 0x40).unwrap_err();
    assert!(
        matches!(
            e,
            XfsError::Decode {
                source: XfsDecodeError::BtreeCrc { ag: 3, agbno, .. },
                ..
            } if u64::from(agbno) == root
        ),
        "{e}"
    );
    // A wrong magic in that block.
    let e = p.flipped(blk + 1, 0x20).unwrap_err();
    assert!(
        e.to_string().contains("AG 3") && e.to_string().contains("magic"),
        "{e}"
    );
    assert!(p.map_patched(&[]).is_ok());
}

#[test]
fn v4_garbage_fields_are_errors() {
    let p = Pristine::new(&["-m", "crc=0"]);
    let agf1 = p.agf(1, 512);
    // AGF level beyond any tree.
    let e = p
        .map_patched(&[(agf1 + 28, &77u32.to_be_bytes())])
        .unwrap_err();
    assert!(
        e.to_string().contains("AG 1") && e.to_string().contains("agf_levels"),
        "{e}"
    );
    // A free extent past the AG's end (v4: no CRC to stop it first).
    let root = u64::from(p.be32(agf1 + 16));
    let blk = (p.agblocks + root) * p.bs;
    let last = (p.agblocks as u32 - 1).to_be_bytes();
    let e = p.map_patched(&[(blk + 16, &last)]).unwrap_err();
    assert!(e.to_string().contains("past the AG's end"), "{e}");
    // A loop: the root as its own child, at level 2.
    let e = p
        .map_patched(&[
            (agf1 + 28, &2u32.to_be_bytes()),
            (blk + 4, &1u16.to_be_bytes()),
        ])
        .unwrap_err();
    assert!(e.to_string().contains("AG 1"), "{e}");
    // An external log, a realtime section: refused, the reason said.
    let e = p.map_patched(&[(48, &0u64.to_be_bytes())]).unwrap_err();
    assert!(e.to_string().contains("external device"), "{e}");
    let e = p.map_patched(&[(16, &1u64.to_be_bytes())]).unwrap_err();
    assert!(e.to_string().contains("realtime"), "{e}");
    // agcount that does not match dblocks.
    let e = p.map_patched(&[(88, &1u32.to_be_bytes())]).unwrap_err();
    assert!(e.to_string().contains("sb_dblocks"), "{e}");
    // The device shorter than the filesystem.
    let dev = MemDevice::from_vec(read_range(&p.img, 0, 1 << 20), 512);
    assert!(matches!(map_xfs(&dev), Err(XfsError::Truncated { .. })));
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
