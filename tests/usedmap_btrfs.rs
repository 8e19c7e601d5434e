//! btrfs used map against the reference tools on filesystems made by mkfs.btrfs and
//! filled through a loop mount (subvolumes, a snapshot, zstd-compressed files, a
//! deleted file): the allocated bytes against `btrfs inspect-internal dump-tree` and
//! the superblock's bytes_used, and a restore of only the mapped extents onto zeros
//! that `btrfs check --readonly` and a read-only scrub (both DUP copies) pass and
//! that gives back every file of every subvolume through a read-only mount. Corrupt superblocks and tree blocks must give
//! typed errors; a multi-device filesystem is refused. Needs root (loop mounts).

mod fsfixture;

use fsfixture::{has_sector, prng_bytes, read_tree, restore_extents, run, run_status, sparse_file};
use ironclone::device::{open_path, Access, MemDevice};
use ironclone::ondisk::btrfs::DecodeError;
use ironclone::usedmap::btrfs::{scan_btrfs, BtrfsError};
use ironclone::usedmap::{map_btrfs, UsedMap};
use std::collections::BTreeMap;
use std::path::Path;

/// A loop mount, unmounted when dropped.
struct LoopMount(std::path::PathBuf);

impl LoopMount {
    fn new(img: &Path, dir: &Path, opts: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        run(
            "mount",
            &[
                "-o",
                &format!("loop,{opts}"),
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

fn stale() -> Vec<u8> {
    prng_bytes(4242, 512)
}

/// Text that zstd shrinks a lot, so compressed extents are really compressed.
fn text(seed: u64, len: usize) -> Vec<u8> {
    let words = [
        "ironclone ",
        "btrfs ",
        "extent ",
        "chunk ",
        "tree ",
        "zstd ",
    ];
    let mut v = Vec::with_capacity(len + 16);
    let mut s = seed | 1;
    while v.len() < len {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.extend_from_slice(words[(s >> 60) as usize % words.len()].as_bytes());
    }
    v.truncate(len);
    v
}

/// mkfs.btrfs `args`, then two subvolumes, files (random, compressible, many small
/// inline ones), a deleted file, and a snapshot of sub1 taken before sub1 changes.
/// Returns every file of the filesystem as a read-only mount lists it.
fn build(img: &Path, work: &Path, args: &[&str], mount_opts: &str) -> BTreeMap<String, Vec<u8>> {
    sparse_file(img, 320 << 20);
    let mut a = vec!["-q", "-f"];
    a.extend_from_slice(args);
    a.push(img.to_str().unwrap());
    run("mkfs.btrfs", &a);
    let m = LoopMount::new(img, &work.join("mnt"), mount_opts);
    let root = &m.0;
    for s in ["sub1", "sub2"] {
        run(
            "btrfs",
            &["subvolume", "create", root.join(s).to_str().unwrap()],
        );
    }
    let w = |rel: &str, data: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    w("top/random.bin", &prng_bytes(1, 3 << 20));
    w("top/text.txt", &text(2, 4 << 20));
    for i in 0..200u64 {
        w(
            &format!("sub2/small/f{i}"),
            &prng_bytes(100 + i, 10 + (i as usize * 37) % 3000),
        );
    }
    w("sub1/a.bin", &prng_bytes(3, 2 << 20));
    w("sub1/log.txt", &text(4, 1 << 20));
    run(
        "btrfs",
        &[
            "subvolume",
            "snapshot",
            root.join("sub1").to_str().unwrap(),
            root.join("snap1").to_str().unwrap(),
        ],
    );
    // Changed after the snapshot: the snapshot keeps the old extents.
    w("sub1/a.bin", &prng_bytes(5, 1 << 20));
    w("sub1/new.txt", &text(6, 300_000));
    // A deleted file's data, written and freed last: data written after it could
    // reuse its freed extent and overwrite it (it did once, in a CI run), and the
    // test needs it still in the free space of a data chunk.
    let mut doomed = stale();
    doomed.extend(prng_bytes(4243, 8 << 20));
    w("top/doomed.bin", &doomed);
    run("sync", &[]);
    std::fs::remove_file(root.join("top/doomed.bin")).unwrap();
    run("sync", &[]);
    drop(m);
    let m = LoopMount::new(img, &work.join("mnt"), "ro");
    read_tree(&m.0)
}

/// (data bytes, metadata+system bytes) of the extent tree as dump-tree prints it:
/// `key (BYTENR EXTENT_ITEM LEN)` with `flags DATA`, and tree blocks as
/// METADATA_ITEM (skinny) or EXTENT_ITEM with `flags TREE_BLOCK`.
fn dump_tree_extents(img: &Path, nodesize: u64) -> (u64, u64) {
    let out = run(
        "btrfs",
        &[
            "inspect-internal",
            "dump-tree",
            "-t",
            "extent",
            img.to_str().unwrap(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let (mut data, mut meta) = (0u64, 0u64);
    for (i, l) in lines.iter().enumerate() {
        let Some(k) = l.split("key (").nth(1) else {
            continue;
        };
        let f: Vec<&str> = k
            .trim_end_matches(|c| c != ')')
            .trim_end_matches(')')
            .split_whitespace()
            .collect();
        if f.len() < 3 || !l.trim_start().starts_with("item ") {
            continue;
        }
        let next = lines.get(i + 1).copied().unwrap_or("");
        match f[1] {
            "EXTENT_ITEM" if next.contains("DATA") => data += f[2].parse::<u64>().unwrap(),
            "EXTENT_ITEM" => meta += f[2].parse::<u64>().unwrap(),
            "METADATA_ITEM" => meta += nodesize,
            _ => {}
        }
    }
    (data, meta)
}

fn dump_super(img: &Path, field: &str) -> u64 {
    let out = run(
        "btrfs",
        &["inspect-internal", "dump-super", img.to_str().unwrap()],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(field).filter(|r| r.starts_with(['\t', ' '])))
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in dump-super"))
}

fn check(name: &str, args: &[&str], opts: &str) -> UsedMap {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join(format!("{name}.img"));
    let files = build(&img, t.path(), args, opts);
    assert!(
        files.keys().any(|k| k.starts_with("snap1/")),
        "no snapshot files"
    );
    let dev = open_path(&img, Access::ReadOnly).unwrap();
    let started = std::time::Instant::now();
    let s = scan_btrfs(&dev).expect("scan_btrfs");
    let map = s.map;
    eprintln!(
        "{name}: data {} metadata {} system {}; copy {} of {}, {} extents, {:?}",
        s.data_bytes,
        s.metadata_bytes,
        s.system_bytes,
        map.copy_bytes(),
        map.total_bytes,
        map.extents.len(),
        started.elapsed()
    );
    assert!(map.warnings.is_empty(), "{:?}", map.warnings);
    let nodesize = dump_super(&img, "nodesize");
    let (data, meta) = dump_tree_extents(&img, nodesize);
    assert_eq!(s.data_bytes, data, "data extents vs dump-tree");
    assert_eq!(
        s.metadata_bytes + s.system_bytes,
        meta,
        "tree blocks vs dump-tree"
    );
    assert_eq!(
        s.data_bytes + s.metadata_bytes + s.system_bytes,
        dump_super(&img, "bytes_used"),
        "extents vs the superblock's bytes_used"
    );
    // DUP metadata is copied twice: at least data + 2 x metadata, and far less than the
    // chunks (free space inside them is not read).
    let meta_copies = if args.contains(&"single") { 1 } else { 2 };
    assert!(map.copy_bytes() >= s.data_bytes + meta_copies * s.metadata_bytes);
    assert!(map.copy_bytes() < s.data_bytes + 3 * s.metadata_bytes + (40 << 20));

    let dst = t.path().join("dst.img");
    restore_extents(&img, &dst, &map);
    let out = run_status("btrfs", &["check", "--readonly", dst.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "btrfs check --readonly after restore:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    {
        let m = LoopMount::new(&dst, &t.path().join("mnt-dst"), "ro");
        // btrfs check reads one copy of each tree block; a read-only scrub reads
        // both DUP copies and every data checksum.
        let out = run(
            "btrfs",
            &["scrub", "start", "-B", "-r", m.0.to_str().unwrap()],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains("no errors found"),
            "scrub after restore:\n{text}"
        );
        let got = read_tree(&m.0);
        assert_eq!(got.len(), files.len(), "file count after restore");
        for (rel, data) in &files {
            assert!(
                got.get(rel) == Some(data),
                "{rel}: content differs after restore"
            );
        }
    }
    assert!(
        has_sector(&img, &stale()),
        "fixture lost the deleted file's data"
    );
    assert!(
        !has_sector(&dst, &stale()),
        "free space inside a data chunk was copied"
    );
    map
}

#[test]
#[ignore = "needs root"]
fn default_dup_metadata() {
    check("default", &[], "rw");
}

#[test]
#[ignore = "needs root"]
fn single_metadata() {
    check("single", &["-m", "single"], "rw");
}

#[test]
#[ignore = "needs root"]
fn zstd_compressed() {
    check("zstd", &[], "compress=zstd");
}

/// A fresh filesystem as bytes (mkfs.btrfs on a file: no root needed).
fn fresh(args: &[&str]) -> Vec<u8> {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("g.img");
    sparse_file(&img, 128 << 20);
    let mut a = vec!["-q", "-f"];
    a.extend_from_slice(args);
    a.push(img.to_str().unwrap());
    run("mkfs.btrfs", &a);
    std::fs::read(&img).unwrap()
}

fn le64(v: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(v[at..at + 8].try_into().unwrap())
}

#[test]
fn bad_input_gives_typed_errors() {
    let good = fresh(&["-m", "single"]);
    let map = |v: &[u8]| map_btrfs(&MemDevice::from_vec(v.to_vec(), 512));
    assert!(map(&good).is_ok());
    let sb = 64 << 10;

    let mut v = good.clone();
    v[sb + 300] ^= 1; // the label: only the checksum notices
    let e = map(&v).unwrap_err();
    assert!(
        matches!(
            e,
            BtrfsError::Decode(DecodeError::Csum {
                what: "superblock",
                ..
            })
        ),
        "{e}"
    );

    let mut v = good.clone();
    v[sb + 64] = b'X';
    assert!(matches!(
        map(&v),
        Err(BtrfsError::Decode(DecodeError::NotBtrfs { .. }))
    ));

    // The chunk root block, found through the first system chunk's stripe: a flipped
    // byte with single metadata has no other copy to fall back on.
    let chunk_root = le64(&good, sb + 88);
    let dev = MemDevice::from_vec(good.clone(), 512);
    let phys = {
        // sys_chunk_array's first chunk: key (17) then the item; stripe 0 at item+48.
        let item = sb + 811 + 17;
        let logical = le64(&good, sb + 811 + 9);
        le64(&good, item + 48 + 8) + (chunk_root - logical)
    };
    drop(dev);
    let mut v = good.clone();
    v[phys as usize + 200] ^= 1;
    let e = map(&v).unwrap_err();
    assert!(
        matches!(
            e,
            BtrfsError::Decode(DecodeError::Csum {
                what: "tree block",
                ..
            })
        ),
        "{e}"
    );

    // Through map_filesystem: raw, with the reason.
    let m = ironclone::usedmap::map_filesystem(
        &MemDevice::from_vec(v, 512),
        ironclone::probe::FsKind::Btrfs,
    );
    assert!(m.raw && m.raw_reason.unwrap().contains("crc32c"));

    // Checksums other than crc32c are not verified here: raw, with the reason.
    let xx = fresh(&["--csum", "xxhash"]);
    let e = map(&xx).unwrap_err();
    assert!(matches!(e, BtrfsError::CsumType(1)), "{e}");
    let m = ironclone::usedmap::map_filesystem(
        &MemDevice::from_vec(xx, 512),
        ironclone::probe::FsKind::Btrfs,
    );
    assert!(m.raw && m.raw_reason.unwrap().contains("csum_type 1"));

    assert!(map(&good[..1 << 20]).is_err());
    assert!(map(&[]).is_err());
}

/// With DUP metadata a torn copy of a tree block is read from the other one.
#[test]
fn dup_metadata_survives_one_bad_copy() {
    let good = fresh(&[]);
    let sb = 64 << 10;
    let chunk_root = le64(&good, sb + 88);
    let item = sb + 811 + 17;
    let logical = le64(&good, sb + 811 + 9);
    let num_stripes = u16::from_le_bytes(good[item + 44..item + 46].try_into().unwrap());
    assert_eq!(num_stripes, 2, "mkfs.btrfs default: DUP system chunk");
    let phys = le64(&good, item + 48 + 8) + (chunk_root - logical);
    let mut v = good.clone();
    v[phys as usize + 200] ^= 1;
    let a = map_btrfs(&MemDevice::from_vec(good, 512)).unwrap();
    let b = map_btrfs(&MemDevice::from_vec(v, 512)).unwrap();
    assert_eq!(a.extents, b.extents);
}

#[test]
#[ignore = "needs root"]
fn multi_device_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a.img");
    let b = t.path().join("b.img");
    sparse_file(&a, 200 << 20);
    sparse_file(&b, 200 << 20);
    let la =
        String::from_utf8(run("losetup", &["-f", "--show", a.to_str().unwrap()]).stdout).unwrap();
    let lb =
        String::from_utf8(run("losetup", &["-f", "--show", b.to_str().unwrap()]).stdout).unwrap();
    let r = run_status(
        "mkfs.btrfs",
        &[
            "-q",
            "-f",
            "-m",
            "raid1",
            "-d",
            "single",
            la.trim(),
            lb.trim(),
        ],
    );
    run("losetup", &["-d", la.trim()]);
    run("losetup", &["-d", lb.trim()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let dev = open_path(&a, Access::ReadOnly).unwrap();
    let e = map_btrfs(&dev).unwrap_err();
    assert!(matches!(e, BtrfsError::MultiDevice(2)), "{e}");
    let m = ironclone::usedmap::map_filesystem(&dev, ironclone::probe::FsKind::Btrfs);
    assert!(m.raw && m.raw_reason.unwrap().contains("multi-device"));
}

/// Without root: mkfs.btrfs --rootdir fills a mixed-profile filesystem (data and
/// metadata in one chunk type, as on small volumes); its files come back from the
/// restored extents through `btrfs restore`, which reads the image in user space.
#[test]
fn mixed_rootdir_restores_through_btrfs_restore() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    let mut files = BTreeMap::new();
    for i in 0..30u64 {
        let data = if i % 3 == 0 {
            text(i, 50_000)
        } else {
            prng_bytes(i, 100 + (i as usize * 7919) % 200_000)
        };
        files.insert(format!("d{}/f{i}", i % 4), data);
    }
    for (rel, data) in &files {
        let p = tree.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let img = t.path().join("m.img");
    sparse_file(&img, 64 << 20);
    run(
        "mkfs.btrfs",
        &[
            "-q",
            "-f",
            "--mixed",
            "--rootdir",
            tree.to_str().unwrap(),
            img.to_str().unwrap(),
        ],
    );
    let dev = open_path(&img, Access::ReadOnly).unwrap();
    let s = scan_btrfs(&dev).expect("scan_btrfs");
    assert!(s.map.warnings.is_empty(), "{:?}", s.map.warnings);
    let (data, meta) = dump_tree_extents(&img, dump_super(&img, "nodesize"));
    // Mixed chunks hold data and tree blocks alike; the chunk tree is in the system chunk.
    assert_eq!(s.metadata_bytes, 0);
    assert_eq!(
        s.data_bytes + s.system_bytes,
        data + meta,
        "extents vs dump-tree"
    );
    assert_eq!(
        s.data_bytes + s.system_bytes,
        dump_super(&img, "bytes_used")
    );
    let dst = t.path().join("dst.img");
    restore_extents(&img, &dst, &s.map);
    run("btrfs", &["check", "--readonly", dst.to_str().unwrap()]);
    let out = t.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    run(
        "btrfs",
        &["restore", dst.to_str().unwrap(), out.to_str().unwrap()],
    );
    assert_eq!(read_tree(&out), files);
}
