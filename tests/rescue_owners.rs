//! Naming the damage on real filesystems: fixtures made by mkfs with files, a file's
//! blocks found by debugfs / ntfsinfo (independent tools), EIO injected there with
//! FaultyDevice, the whole filesystem read by RescueReader, and the owner map must
//! name exactly that file. Hits on group structures are named as metadata.

use ironclone::device::{open_path, Access, BlockDevice};
use ironclone::rescue::owners::{map_owners, DamageReport};
use ironclone::rescue::{BadRange, Fault, FaultKind, FaultyDevice, RescueOptions, RescueReader};
use ironclone::usedmap::ByteExtent;
use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (install e2fsprogs/ntfs-3g): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/dir")).unwrap();
    std::fs::write(root.join("a.txt"), b"hello").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8 + 1).collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(root.join("sub/dir/deep.bin"), &big[..120_000]).unwrap();
}

fn mkext(dir: &Path, kind: &str) -> std::path::PathBuf {
    mkext_sized(dir, kind, 32 << 20)
}

fn mkext_sized(dir: &Path, kind: &str, size: u64) -> std::path::PathBuf {
    mkext_opts(dir, kind, size, &[])
}

fn mkext_opts(dir: &Path, kind: &str, size: u64, opts: &[&str]) -> std::path::PathBuf {
    let tree = dir.join("tree");
    write_tree(&tree);
    let img = dir.join(format!("{kind}.img"));
    std::fs::File::create(&img).unwrap().set_len(size).unwrap();
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", kind, "-b", "4096"])
        .args(opts)
        .arg("-d")
        .arg(&tree)
        .arg(&img));
    img
}

fn debugfs(img: &Path, req: &str) -> String {
    run(Command::new("debugfs").arg("-R").arg(req).arg(img))
}

fn blocks_of(img: &Path, file: &str) -> Vec<u64> {
    debugfs(img, &format!("blocks {file}"))
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect()
}

/// Reads the whole image through a FaultyDevice with EIO on `faults`; returns the
/// bad list, which must be exactly the injected ranges.
fn rescue_read(dev: &FaultyDevice<impl BlockDevice>, faults: &[(u64, u64)]) -> Vec<BadRange> {
    let mut r = RescueReader::new(
        dev,
        RescueOptions::default(),
        &ironclone::progress::NoProgress,
    );
    let mut bad = Vec::new();
    r.run(
        &[ByteExtent {
            offset: 0,
            len: dev.size(),
        }],
        |p| {
            bad.extend(p.bad);
            Ok::<(), std::io::Error>(())
        },
    )
    .unwrap();
    bad.sort();
    let want: Vec<_> = faults
        .iter()
        .map(|&(offset, len)| BadRange { offset, len })
        .collect();
    assert_eq!(bad, want);
    bad
}

fn faulty(img: &Path, faults: &[(u64, u64)]) -> FaultyDevice<ironclone::device::FileDevice> {
    let dev = open_path(img, Access::ReadOnly).unwrap();
    FaultyDevice::new(
        dev,
        faults
            .iter()
            .map(|&(offset, len)| Fault {
                offset,
                len,
                kind: FaultKind::Eio,
            })
            .collect(),
    )
}

fn paths(r: &DamageReport) -> Vec<String> {
    r.files
        .iter()
        .map(|f| {
            f.path
                .clone()
                .unwrap_or_else(|| format!("<inode {}>", f.id))
        })
        .collect()
}

fn check_file_hit(kind: &str, nth_block: usize) {
    check_file_hit_opts(kind, nth_block, &[], 4096);
}

/// `bs` is the block size `opts` give (4096 unless they pass `-b`).
fn check_file_hit_opts(kind: &str, nth_block: usize, opts: &[&str], bs: u64) {
    let dir = tempfile::tempdir().unwrap();
    let img = mkext_opts(dir.path(), kind, 32 << 20, opts);
    let blocks = blocks_of(&img, "/sub/dir/deep.bin");
    assert!(blocks.len() > nth_block, "{blocks:?}");
    let b = blocks[nth_block];
    let faults = [(b * bs + 512, 512)];
    let dev = faulty(&img, &faults);
    let bad = rescue_read(&dev, &faults);
    // The owner map reads the damaged source itself, tolerating its errors.
    let report = map_owners(&dev, &bad).unwrap().expect("ext recognised");
    assert_eq!(paths(&report), vec!["/sub/dir/deep.bin"], "{report:#?}");
    assert_eq!(report.files[0].bad_bytes, 512);
    assert!(report.metadata.is_empty(), "{report:#?}");
    assert_eq!(report.unowned_bytes, 0);
    assert!(dev.write_attempts().is_empty());
}

#[test]
fn ext4_extent_file_hit_is_named() {
    check_file_hit("ext4", 20);
}

#[test]
fn ext4_bigalloc_file_hit_is_named() {
    // 16 KiB clusters: s_blocks_per_group is four bitmaps' worth of blocks (the bitmap
    // counts clusters), which must not make the superblock "unusable".
    check_file_hit_opts("ext4", 20, &["-O", "bigalloc", "-C", "16384"], 4096);
}

#[test]
fn ext4_bigalloc_1k_blocks_file_hit_is_named() {
    // Groups start at block 0, yet the superblock is block 1 and the descriptors block
    // 2: they are not at s_first_data_block + 1.
    check_file_hit_opts(
        "ext4",
        20,
        &["-b", "1024", "-O", "bigalloc", "-C", "16384"],
        1024,
    );
}

#[test]
fn ext2_indirect_block_file_hit_is_named() {
    // Block 20 of the file is reached through the single-indirect block.
    check_file_hit("ext2", 20);
}

#[test]
fn ext4_metadata_hits_are_named() {
    let dir = tempfile::tempdir().unwrap();
    // Two groups, so there is a backup superblock in group 1.
    let img = mkext_sized(dir.path(), "ext4", 160 << 20);
    // Where debugfs says inode of deep.bin lives: "located at block N, offset 0x..."
    let imap = debugfs(&img, "imap /sub/dir/deep.bin");
    let block: u64 = imap
        .split("located at block ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("imap output: {imap}"));
    let ino: u64 = debugfs(&img, "stat /sub/dir/deep.bin")
        .split("Inode: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    let offset: u64 = imap
        .split("offset 0x")
        .nth(1)
        .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
        .unwrap();
    let journal = blocks_of(&img, "<8>")[3];
    let bad = vec![
        BadRange {
            offset: 1024 + 512,
            len: 512,
        },
        BadRange {
            offset: journal * 4096,
            len: 4096,
        },
        BadRange {
            offset: block * 4096 + offset,
            len: 256,
        },
    ];
    // Mapped on the damaged source itself: the primary superblock is unreadable,
    // so the backup in group 1 is used.
    let faults: Vec<_> = bad.iter().map(|b| (b.offset, b.len)).collect();
    let dev = faulty(&img, &faults);
    let report = map_owners(&dev, &bad).unwrap().unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("used the backup")),
        "{:?}",
        report.warnings
    );
    let what: Vec<_> = report.metadata.iter().map(|m| m.what.as_str()).collect();
    assert!(what.contains(&"primary superblock"), "{what:?}");
    assert!(
        what.iter().any(|w| w.starts_with("inode table of group 0")),
        "{what:?}"
    );
    assert!(what.contains(&"journal (inode 8)"), "{what:?}");
    let f = report
        .files
        .iter()
        .find(|f| f.id == ino)
        .expect("record hit listed");
    assert!(f.record_hit);
    assert_eq!(f.path.as_deref(), Some("/sub/dir/deep.bin"));
}

/// A hit inode-table block that holds only free inodes loses no file: the table is
/// named as metadata and no "file" appears (the inode bitmap says they are free; with
/// the bitmap unreadable too, ext4's bg_itable_unused still does).
#[test]
fn ext4_free_inodes_in_a_hit_table_block_are_not_files() {
    let dir = tempfile::tempdir().unwrap();
    let img = mkext(dir.path(), "ext4");
    let dump = run(Command::new("dumpe2fs").arg(&img));
    let field = |name: &str| -> u64 {
        dump.split(name)
            .nth(1)
            .map(str::trim_start)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("dumpe2fs has no '{name}'"))
    };
    let (table, ibitmap) = (field("Inode table at "), field("Inode bitmap at "));
    // The table's last block of group 0: inodes far above the handful in use.
    let last = table + field("Inode blocks per group:") - 1;
    for faults in [
        vec![(last * 4096, 4096)],
        vec![(ibitmap * 4096, 4096), (last * 4096, 4096)],
    ] {
        let dev = faulty(&img, &faults);
        let bad = rescue_read(&dev, &faults);
        let report = map_owners(&dev, &bad).unwrap().expect("ext recognised");
        assert!(report.files.is_empty(), "{report:#?}");
        let what: Vec<_> = report.metadata.iter().map(|m| m.what.as_str()).collect();
        assert!(
            what.iter().any(|w| w.starts_with("inode table of group 0")),
            "{what:?}"
        );
    }
}

/// An NTFS image holding /big.bin and /sub/dir/deep.bin (directories made through
/// ntfs-3g, which mkntfs/ntfscp cannot do).
fn mkntfs(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let img = dir.join("ntfs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    run(Command::new("mkntfs")
        .args(["-q", "-F", "-Q", "-c", "4096"])
        .arg(&img));
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    run(Command::new("ntfs-3g").arg(&img).arg(&mnt));
    let tree = dir.join("tree");
    write_tree(&tree);
    let copied = Command::new("cp")
        .arg("-r")
        .arg(tree.join("."))
        .arg(&mnt)
        .status();
    let umount = Command::new("umount").arg(&mnt).status();
    assert!(copied.unwrap().success() && umount.unwrap().success());
    img
}

/// First run (LCN) of a file's unnamed $DATA, and its MFT record, per ntfsinfo.
fn ntfs_data_lcn(img: &Path, file: &str) -> (u64, u64) {
    let out = run(Command::new("ntfsinfo").args(["-v", "-F", file]).arg(img));
    let rec = out
        .split("from mft record ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    let data = out.split("Dumping attribute $DATA").nth(1).unwrap();
    let row = data.split("Length").nth(1).unwrap();
    let lcn = row.split_whitespace().nth(1).unwrap();
    (
        u64::from_str_radix(lcn.trim_start_matches("0x"), 16).unwrap(),
        rec,
    )
}

#[test]
fn ntfs_file_hit_is_named_and_mft_hit_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let img = mkntfs(dir.path());
    let (lcn, rec) = ntfs_data_lcn(&img, "/sub/dir/deep.bin");
    let faults = [((lcn + 5) * 4096, 4096)];
    let dev = faulty(&img, &faults);
    let bad = rescue_read(&dev, &faults);
    let report = map_owners(&dev, &bad).unwrap().expect("ntfs recognised");
    assert_eq!(report.fs, "ntfs");
    assert_eq!(paths(&report), vec!["/sub/dir/deep.bin"], "{report:#?}");
    assert_eq!(report.files[0].id, rec);
    assert_eq!(report.files[0].bad_bytes, 4096);
    assert!(report.metadata.is_empty(), "{report:#?}");

    // The file's MFT record itself unreadable: the $MFT is named, and so is the
    // record whose file is lost.
    let (mft_lcn, _) = ntfs_data_lcn(&img, "/$MFT");
    let at = mft_lcn * 4096 + rec * 1024;
    let clean = open_path(&img, Access::ReadOnly).unwrap();
    let report = map_owners(
        &clean,
        &[BadRange {
            offset: at,
            len: 512,
        }],
    )
    .unwrap()
    .unwrap();
    assert!(
        report
            .metadata
            .iter()
            .any(|m| m.what.starts_with("$MFT (the master file table")),
        "{report:#?}"
    );
    assert!(
        report.files.iter().any(|f| f.id == rec && f.record_hit),
        "{report:#?}"
    );

    let boots = [
        BadRange {
            offset: 0,
            len: 512,
        },
        BadRange {
            offset: (32 << 20) - 512,
            len: 512,
        },
    ];
    let what: Vec<_> = map_owners(&clean, &boots)
        .unwrap()
        .unwrap()
        .metadata
        .into_iter()
        .map(|m| m.what)
        .collect();
    // The boot sector is also the data of the $Boot system file.
    assert_eq!(
        what,
        vec![
            "boot sector",
            "backup boot sector",
            "$Boot (system file, record 7: data)"
        ]
    );
}

/// Random bytes written over the metadata areas: the owner maps must answer (Ok or
/// Err) without panicking or hanging.
fn survive_garbage(img: &Path, area: std::ops::Range<usize>, bad: &[BadRange]) {
    let pristine = std::fs::read(img).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Counted, not timed: a parser that loops on garbage shows as far more reads than the
    // intact filesystem needs, whatever the machine's speed.
    let reads_of = |bytes: Vec<u8>| {
        let dev = FaultyDevice::new(ironclone::device::MemDevice::from_vec(bytes, 512), vec![]);
        let _ = map_owners(&dev, bad);
        dev.read_counts().0
    };
    let intact = reads_of(pristine.clone());
    let mut most = 0;
    for round in 0..25 {
        let mut bytes = pristine.clone();
        for _ in 0..(1 + round * 8) {
            let at = area.start + (rnd() as usize) % (area.end - area.start);
            bytes[at] = rnd() as u8;
        }
        most = most.max(reads_of(bytes));
    }
    eprintln!(
        "MEASURE {}: intact {intact} reads, garbage at most {most}",
        img.display()
    );
    assert!(
        most <= 2 * intact + 16,
        "{}: garbage took {most} reads, the intact filesystem {intact}",
        img.display()
    );
}

#[test]
fn owner_maps_survive_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let ext = mkext(dir.path(), "ext4");
    let whole = [BadRange {
        offset: 0,
        len: 32 << 20,
    }];
    // Keep the ext magic so the parser is exercised rather than refusing at once.
    survive_garbage(&ext, 2048..(2 << 20), &whole);
    let nt = mkntfs(&dir.path().join("n"));
    let (mft_lcn, _) = ntfs_data_lcn(&nt, "/$MFT");
    let mft = (mft_lcn * 4096) as usize;
    survive_garbage(&nt, mft..mft + 100 * 1024, &whole);
}
