//! The files' runs (`usedmap::file_runs`) of ext2, ext4 and NTFS fixtures written through
//! the kernel and ntfs-3g: every run's bytes in the image are the bytes of exactly one
//! file (or named stream) at the run's logical offset, and every file's written data is
//! covered once, sparse holes excluded. The files are read back from the mounted
//! filesystem, not through our decoders.

mod fsfixture;

use fsfixture::*;
use ironclone::device::{open_path, Access};
use ironclone::imaging::plan_backup;
use ironclone::probe::FsKind;
use ironclone::repo::SourceInfo;
use ironclone::usedmap::{file_runs, map_filesystem, FileRun};
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// One file or stream as written, and how many of its bytes the runs must cover.
struct Written {
    name: String,
    data: Vec<u8>,
    covered: u64,
}

const HOLE_AT: u64 = 8 << 20;
const PIECE: usize = 64 << 10;

/// Writes the test files into the mounted filesystem at `mnt`. On NTFS (`ntfs`) the small
/// file stays resident in its MFT record (no runs), and mid.bin gets a named stream
/// (ntfs-3g's `streams_interface=windows`).
fn populate(mnt: &Path, ntfs: bool) -> Vec<Written> {
    let mut out = Vec::new();
    // `dense`: the file's bytes live in clusters (not resident in its MFT record).
    let mut write = |name: &str, data: Vec<u8>, dense: bool| {
        std::fs::write(mnt.join(name), &data).unwrap();
        let covered = if dense { data.len() as u64 } else { 0 };
        out.push(Written {
            name: name.into(),
            data,
            covered,
        });
    };
    std::fs::create_dir_all(mnt.join("dir")).unwrap();
    write("empty", Vec::new(), true);
    write("small.bin", prng_bytes(1, 100), !ntfs);
    write("mid.bin", prng_bytes(2, (300 << 10) + 123), true);
    write("big.bin", prng_bytes(3, (6 << 20) + 7), true);
    write("dir/nested.bin", prng_bytes(4, 50 << 10), true);
    if ntfs {
        fill_and_punch(mnt, &mut out, 64 << 10);
    }
    // Two files appended in turn, each append flushed: on ext their blocks interleave;
    // on NTFS they land in the holes `fill_and_punch` left.
    let (a, b) = (prng_bytes(5, 1 << 20), prng_bytes(6, 1 << 20));
    let mut fa = OpenOptions::new()
        .create(true)
        .append(true)
        .open(mnt.join("fragA.bin"))
        .unwrap();
    let mut fb = OpenOptions::new()
        .create(true)
        .append(true)
        .open(mnt.join("fragB.bin"))
        .unwrap();
    for (pa, pb) in a.chunks(16 << 10).zip(b.chunks(16 << 10)) {
        fa.write_all(pa).unwrap();
        fa.sync_all().unwrap();
        fb.write_all(pb).unwrap();
        fb.sync_all().unwrap();
    }
    drop((fa, fb));
    for (name, data) in [("fragA.bin", a), ("fragB.bin", b)] {
        let covered = data.len() as u64;
        out.push(Written {
            name: name.into(),
            data,
            covered,
        });
    }
    // A sparse file: data at 0 and at HOLE_AT, nothing written between.
    let mut data = vec![0u8; HOLE_AT as usize + PIECE];
    data[..PIECE].copy_from_slice(&prng_bytes(7, PIECE));
    data[HOLE_AT as usize..].copy_from_slice(&prng_bytes(8, PIECE));
    let mut f = std::fs::File::create(mnt.join("sparse.bin")).unwrap();
    f.write_all(&data[..PIECE]).unwrap();
    f.seek(SeekFrom::Start(HOLE_AT)).unwrap();
    f.write_all(&data[HOLE_AT as usize..]).unwrap();
    drop(f);
    out.push(Written {
        name: "sparse.bin".into(),
        data,
        covered: 2 * PIECE as u64,
    });
    if ntfs {
        let data = prng_bytes(9, (200 << 10) + 5);
        std::fs::write(mnt.join("mid.bin:ads"), &data).unwrap();
        out.push(Written {
            name: "mid.bin:ads".into(),
            covered: data.len() as u64,
            data,
        });
    }
    out
}

/// ntfs-3g gives each new file a place of its own, so appends in turn stay contiguous:
/// fill the volume with `pad`-byte files and delete every other one, so that the next files
/// can only take the holes.
fn fill_and_punch(mnt: &Path, out: &mut Vec<Written>, pad: usize) {
    let mut pads = Vec::new();
    for i in 0.. {
        let (name, data) = (format!("pad{i}.bin"), prng_bytes(1000 + i, pad));
        if std::fs::write(mnt.join(&name), &data).is_err() {
            let _ = std::fs::remove_file(mnt.join(&name));
            break;
        }
        pads.push((name, data));
    }
    assert!(pads.len() > 100, "only {} pad files fit", pads.len());
    for (i, (name, data)) in pads.into_iter().enumerate() {
        if i % 2 == 0 {
            std::fs::remove_file(mnt.join(&name)).unwrap();
        } else {
            out.push(Written {
                name,
                covered: data.len() as u64,
                data,
            });
        }
    }
}

/// Checks the runs of the `kind` filesystem in `img` against `files` (read back from
/// the mount); `frag` names a file that must have several runs.
fn check(img: &Path, kind: FsKind, files: &[Written], frag: &str) -> Vec<FileRun> {
    let dev = open_path(img, Access::ReadOnly).expect("open image");
    let map = map_filesystem(&dev, kind);
    assert!(!map.raw, "{:?}", map.raw_reason);
    let found = file_runs(&dev, kind, &map);
    assert!(found.warnings.is_empty(), "{:?}", found.warnings);
    check_runs(img, &found.runs, &map.extents, files, frag);
    found.runs
}

fn check_runs(
    img: &Path,
    runs: &[FileRun],
    used: &[ironclone::usedmap::ByteExtent],
    files: &[Written],
    frag: &str,
) {
    for w in runs.windows(2) {
        assert!(w[0].end() <= w[1].offset, "unsorted or overlapping: {w:?}");
    }
    for r in runs {
        assert!(
            used.iter()
                .any(|e| e.offset <= r.offset && r.end() <= e.end()),
            "{r:?} outside the used map"
        );
    }
    let mut covered = vec![0u64; files.len()];
    let mut pieces = vec![0usize; files.len()];
    for r in runs {
        let bytes = read_range(img, r.offset, r.len as usize);
        let owners: Vec<usize> = files
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                let size = f.data.len() as u64;
                r.logical < size && {
                    let n = (size - r.logical).min(r.len) as usize;
                    bytes[..n] == f.data[r.logical as usize..r.logical as usize + n]
                }
            })
            .map(|(i, _)| i)
            .collect();
        let [i] = owners[..] else {
            panic!("{r:?} holds the bytes of {} files, not one", owners.len());
        };
        covered[i] += (files[i].data.len() as u64 - r.logical).min(r.len);
        pieces[i] += 1;
    }
    for (i, f) in files.iter().enumerate() {
        assert_eq!(covered[i], f.covered, "{}: bytes covered by runs", f.name);
    }
    let i = files.iter().position(|f| f.name == frag).unwrap();
    assert!(pieces[i] > 1, "{frag} is not fragmented: {} run", pieces[i]);
}

/// A file of 1 MiB allocated by fallocate (one uninitialized extent) of which only the
/// first 64 KiB were written: the rest reads as zeros and must have no run.
fn preallocated(mnt: &Path, out: &mut Vec<Written>) {
    let path = mnt.join("prealloc.bin");
    run("fallocate", &["-l", "1M", path.to_str().unwrap()]);
    let mut data = vec![0u8; 1 << 20];
    data[..PIECE].copy_from_slice(&prng_bytes(10, PIECE));
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all(&data[..PIECE]).unwrap();
    f.sync_all().unwrap();
    out.push(Written {
        name: "prealloc.bin".into(),
        data,
        covered: PIECE as u64,
    });
}

fn ext_fixture(dir: &Path, mkfs: &[&str]) -> (std::path::PathBuf, Vec<Written>) {
    let img = dir.join("fs.img");
    sparse_file(&img, 64 << 20);
    let mut args = mkfs.to_vec();
    args.extend(["-q", "-F", img.to_str().unwrap()]);
    run(args[0], &args[1..]);
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    run(
        "mount",
        &["-o", "loop", img.to_str().unwrap(), mnt.to_str().unwrap()],
    );
    let mut files = populate(&mnt, false);
    // Uninitialized extents exist only in extent-mapped files.
    if mkfs[0] == "mkfs.ext4" {
        preallocated(&mnt, &mut files);
    }
    run("umount", &[mnt.to_str().unwrap()]);
    (img, files)
}

#[test]
fn ext4_runs_hold_each_files_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (img, files) = ext_fixture(dir.path(), &["mkfs.ext4"]);
    let runs = check(&img, FsKind::Ext4, &files, "fragA.bin");
    // The backup plan carries them: for a filesystem on the whole disk...
    let dev = open_path(&img, Access::ReadOnly).unwrap();
    let plan = plan_backup(&dev, SourceInfo::default()).unwrap().plan;
    assert_eq!(plan.areas.len(), 1);
    assert_eq!(plan.areas[0].file_runs, runs);
    // ...and in a GPT partition at 1 MiB, relative to the partition.
    let disk = dir.path().join("disk.img");
    sparse_file(&disk, 70 << 20);
    let mut sfdisk = Command::new("sfdisk")
        .arg(&disk)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: gpt\nstart=2048, size=131072\n")
        .unwrap();
    assert!(sfdisk.wait().unwrap().success());
    let fs = std::fs::read(&img).unwrap();
    let mut d = OpenOptions::new().write(true).open(&disk).unwrap();
    d.seek(SeekFrom::Start(1 << 20)).unwrap();
    d.write_all(&fs).unwrap();
    drop(d);
    let dev = open_path(&disk, Access::ReadOnly).unwrap();
    let plan = plan_backup(&dev, SourceInfo::default()).unwrap().plan;
    let p1 = plan.areas.iter().find(|a| a.name == "p1").unwrap();
    assert_eq!(p1.file_runs, runs);
}

#[test]
fn ext2_indirect_block_runs_hold_each_files_bytes() {
    // 1 KiB blocks: big.bin (6 MiB) needs double indirect blocks.
    let dir = tempfile::tempdir().unwrap();
    let (img, files) = ext_fixture(dir.path(), &["mkfs.ext2", "-b", "1024"]);
    check(&img, FsKind::Ext2, &files, "fragA.bin");
}

fn ntfs_fixture(dir: &Path) -> (std::path::PathBuf, Vec<Written>) {
    let img = dir.join("ntfs.img");
    sparse_file(&img, 64 << 20);
    run("mkntfs", &["-F", "-f", "-q", img.to_str().unwrap()]);
    let files = {
        let m = Mount::with_options(
            &img,
            &dir.join("mnt"),
            "no_detach,streams_interface=windows",
        );
        populate(&m.0, true)
    };
    (img, files)
}

#[test]
fn ntfs_runs_hold_each_files_and_streams_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (img, files) = ntfs_fixture(dir.path());
    check(&img, FsKind::Ntfs, &files, "fragA.bin");
}

#[test]
fn a_torn_mft_record_is_skipped_and_counted_the_rest_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (img, mut files) = ntfs_fixture(dir.path());
    // big.bin's record: the FILE record holding its UTF-16 name (found by scanning the
    // image, not through our decoders).
    let raw = std::fs::read(&img).unwrap();
    let name: Vec<u8> = "big.bin"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let at = (0..raw.len() / 1024)
        .map(|i| i * 1024)
        .find(|&at| {
            raw[at..at + 4] == *b"FILE" && raw[at..at + 1024].windows(name.len()).any(|w| w == name)
        })
        .expect("big.bin's MFT record");
    // Its first stride's update sequence stamp no longer matches: a torn write.
    let mut f = OpenOptions::new().write(true).open(&img).unwrap();
    f.seek(SeekFrom::Start(at as u64 + 510)).unwrap();
    f.write_all(&[raw[at + 510] ^ 0xFF]).unwrap();
    drop(f);
    let dev = open_path(&img, Access::ReadOnly).unwrap();
    let map = map_filesystem(&dev, FsKind::Ntfs);
    let found = file_runs(&dev, FsKind::Ntfs, &map);
    assert_eq!(found.warnings.len(), 1, "{:?}", found.warnings);
    assert!(
        found.warnings[0].contains("1 file not followed")
            && found.warnings[0].contains("MFT record"),
        "{:?}",
        found.warnings
    );
    files.retain(|f| f.name != "big.bin");
    check_runs(&img, &found.runs, &map.extents, &files, "fragA.bin");
}

#[test]
fn ntfs_attribute_list_pieces_are_followed() {
    // 300 one-cluster pieces 64 KiB apart: 600 data and sparse runs are more than a
    // 1 KiB MFT record holds, so ntfs-3g continues the $DATA in an extension record
    // listed by an $ATTRIBUTE_LIST.
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("ntfs.img");
    sparse_file(&img, 16 << 20);
    run(
        "mkntfs",
        &["-F", "-f", "-q", "-c", "4096", img.to_str().unwrap()],
    );
    const STRIDE: usize = 68 << 10;
    let mut data = vec![0u8; 299 * STRIDE + 4096];
    {
        let m = Mount::new(&img, &dir.path().join("mnt"));
        let mut f = std::fs::File::create(m.0.join("listed.bin")).unwrap();
        for i in 0..300 {
            let piece = prng_bytes(20 + i as u64, 4096);
            data[i * STRIDE..i * STRIDE + 4096].copy_from_slice(&piece);
            f.seek(SeekFrom::Start((i * STRIDE) as u64)).unwrap();
            f.write_all(&piece).unwrap();
        }
    }
    let info = run("ntfsinfo", &["-F", "/listed.bin", img.to_str().unwrap()]);
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("$ATTRIBUTE_LIST") && info.matches("Dumping attribute $DATA").count() > 1,
        "listed.bin's $DATA is in one record; the fixture does not test attribute lists"
    );
    let files = [Written {
        name: "listed.bin".into(),
        data,
        covered: 300 * 4096,
    }];
    check(&img, FsKind::Ntfs, &files, "listed.bin");
}

/// Where `debugfs` says inode `name`'s record lies, in bytes from the image start.
fn inode_offset(img: &Path, name: &str) -> (u64, u64) {
    let out = run(
        "debugfs",
        &["-R", &format!("imap {name}"), img.to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let bs = run("dumpe2fs", &["-h", img.to_str().unwrap()]);
    let bs: u64 = String::from_utf8_lossy(&bs.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Block size:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // "Inode 14 is part of block group 0\n\tlocated at block 1234, offset 0x0d00"
    let ino: u64 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let at = text.split("located at block ").nth(1).unwrap();
    let (block, off) = at.split_once(", offset 0x").unwrap();
    let block: u64 = block.trim().parse().unwrap();
    let off = u64::from_str_radix(off.trim(), 16).unwrap();
    (ino, block * bs + off)
}

#[test]
fn a_damaged_inode_is_skipped_and_counted_the_rest_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (img, mut files) = ext_fixture(dir.path(), &["mkfs.ext4"]);
    let (ino, at) = inode_offset(&img, "/big.bin");
    // Break the extent header's magic in i_block (inode byte 0x28).
    let mut f = OpenOptions::new().write(true).open(&img).unwrap();
    f.seek(SeekFrom::Start(at + 0x28)).unwrap();
    f.write_all(&[0xEE, 0xEE]).unwrap();
    drop(f);
    let dev = open_path(&img, Access::ReadOnly).unwrap();
    let map = map_filesystem(&dev, FsKind::Ext4);
    let found = file_runs(&dev, FsKind::Ext4, &map);
    assert_eq!(found.warnings.len(), 1, "{:?}", found.warnings);
    assert!(
        found.warnings[0].contains("1 file not followed")
            && found.warnings[0].contains(&format!("inode {ino}:")),
        "{:?}",
        found.warnings
    );
    files.retain(|f| f.name != "big.bin");
    check_runs(&img, &found.runs, &map.extents, &files, "fragA.bin");
}
