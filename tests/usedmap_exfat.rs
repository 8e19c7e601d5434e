//! exFAT used map against the reference tools on volumes made by mkfs.exfat and
//! filled through exfat-fuse: the allocated clusters against dump.exfat's free count
//! and partclone.exfat's used-sector list, and a restore of only the mapped extents
//! that fsck.exfat passes and that gives back every file. Corrupt boot regions,
//! bitmap entries and FAT chains must give typed errors, never panics.
//! The volumes filled through FUSE need root (loop devices): `#[ignore = "needs root"]`.

mod exfat_fixture;
mod fsfixture;

use exfat_fixture as xf;
use fsfixture::{has_sector, restore_extents, sparse_file};
use ironclone::device::{open_path, Access, MemDevice};
use ironclone::ondisk::exfat::DecodeError;
use ironclone::usedmap::{map_exfat, ByteExtent, ExfatError, UsedMap};
use std::path::Path;

/// A `Name: value` line of dump.exfat's output.
fn dump_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|r| r.trim_start_matches(':').trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in dump.exfat output:\n{text}"))
}

/// partclone.exfat's used ranges (its `block A B` lines, inclusive, in its blocks)
/// as byte ranges, and its block size.
fn partclone_ranges(img: &Path) -> Vec<ByteExtent> {
    let text = fsfixture::partclone_check("partclone.exfat", img);
    let bs: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Block size:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no Block size in partclone output:\n{text}"));
    let v: Vec<ByteExtent> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.trim().strip_prefix("block ")?.split_whitespace();
            let a: u64 = w.next()?.parse().ok()?;
            let b: u64 = w.next()?.parse().ok()?;
            Some(ByteExtent {
                offset: a * bs,
                len: (b + 1 - a) * bs,
            })
        })
        .collect();
    assert!(!v.is_empty(), "no block lines in partclone output:\n{text}");
    ironclone::usedmap::merged(v)
}

/// `ranges` clipped to `[from, ..)`.
fn from(ranges: &[ByteExtent], start: u64) -> Vec<ByteExtent> {
    ranges
        .iter()
        .filter(|e| e.end() > start)
        .map(|e| ByteExtent {
            offset: e.offset.max(start),
            len: e.end() - e.offset.max(start),
        })
        .collect()
}

fn check(
    name: &str,
    size: u64,
    sector: u32,
    mkfs_args: &[&str],
    many: usize,
    scale: usize,
) -> UsedMap {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join(format!("{name}.img"));
    sparse_file(&img, size);
    xf::mkfs(&img, sector, mkfs_args);
    let files = xf::fill(&img, t.path(), sector, many, scale);

    let dev = open_path(&img, Access::ReadOnly).unwrap();
    let started = std::time::Instant::now();
    let map = map_exfat(&dev).expect("map_exfat");
    eprintln!(
        "{name}: cluster {} used {} copy {} of {}, {} extents, {:?}",
        map.block_size,
        map.used_bytes,
        map.copy_bytes(),
        map.total_bytes,
        map.extents.len(),
        started.elapsed()
    );
    assert!(map.warnings.is_empty(), "{:?}", map.warnings);
    assert_eq!(map.copy_bytes(), map.used_bytes);

    // dump.exfat's free count, from its own reading of the bitmap.
    let dump = fsfixture::run("dump.exfat", &[img.to_str().unwrap()]);
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    let ss = 1u64 << dump_field(&dump, "Sector Size Bits");
    assert_eq!(ss, u64::from(sector), "fixture sector size");
    let cs = ss << dump_field(&dump, "Sector per Cluster bits");
    let used_clusters = dump_field(&dump, "Cluster Count") - dump_field(&dump, "Free Clusters");
    let fat_bytes = dump_field(&dump, "FAT Length(sectors)") * ss;
    assert_eq!(map.block_size, cs);
    assert_eq!(
        map.used_bytes,
        24 * ss + fat_bytes + used_clusters * cs,
        "used_bytes vs dump.exfat: boot regions + FAT + used clusters"
    );

    // partclone.exfat marks everything before the heap and each used cluster: the
    // heap part must be exactly ours, and ours before the heap must lie inside its.
    let heap = dump_field(&dump, "Cluster Heap Offset (sector offset)") * ss;
    let pc = partclone_ranges(&img);
    assert_eq!(
        from(&map.extents, heap),
        from(&pc, heap),
        "clusters vs partclone.exfat"
    );
    assert_eq!(
        pc.first().map(|e| (e.offset, e.end() >= heap)),
        Some((0, true))
    );

    let dst = t.path().join("dst.img");
    restore_extents(&img, &dst, &map);
    let got = xf::check_and_read(&dst, t.path(), sector);
    assert_eq!(got.len(), files.len(), "file count after restore");
    for (rel, data) in &files {
        assert!(
            got.get(rel) == Some(data),
            "{rel}: content differs after restore"
        );
    }
    assert!(
        has_sector(&img, &xf::stale_sector()),
        "fixture lost stale data"
    );
    assert!(
        !has_sector(&dst, &xf::stale_sector()),
        "stale data of a deleted file was copied"
    );
    map
}

#[test]
#[ignore = "needs root"]
fn default_4k_clusters() {
    check("default", 64 << 20, 512, &[], 300, 20_000);
}

#[test]
#[ignore = "needs root"]
fn small_512_byte_clusters() {
    check("c512", 48 << 20, 512, &["-c", "512"], 200, 9_000);
}

#[test]
#[ignore = "needs root"]
fn big_128k_clusters() {
    check(
        "c128k",
        256 << 20,
        512,
        &["-c", "128K", "-L", "Big"],
        100,
        300_000,
    );
}

#[test]
#[ignore = "needs root"]
fn sectors_of_4096_bytes() {
    check("s4k", 96 << 20, 4096, &["-c", "32K"], 150, 50_000);
}

/// A fresh image made by mkfs.exfat, as a memory device, with the root directory's
/// byte offset and cluster size read from the boot sector here (not by the parser).
fn fresh() -> (Vec<u8>, usize, usize, usize) {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("g.img");
    sparse_file(&img, 8 << 20);
    fsfixture::run("mkfs.exfat", &[img.to_str().unwrap()]);
    let v = std::fs::read(&img).unwrap();
    let le32 = |o: usize| u32::from_le_bytes(v[o..o + 4].try_into().unwrap()) as usize;
    let ss = 1usize << v[108];
    let cs = ss << v[109];
    let root = le32(88) * ss + (le32(96) - 2) * cs;
    let fat = le32(80) * ss;
    (v, root, cs, fat)
}

/// The offset of the first root entry of `kind`.
fn entry(v: &[u8], root: usize, kind: u8) -> usize {
    (root..root + 4096)
        .step_by(32)
        .find(|&o| v[o] == kind)
        .expect("entry")
}

/// Rewrites the main boot region's checksum sector after an edit of sectors 0-10,
/// so that the field check, not the checksum, is what refuses it.
fn reseal(v: &mut [u8]) {
    let mut sum = 0u32;
    for (i, &b) in v[..512 * 11].iter().enumerate() {
        if !matches!(i, 106 | 107 | 112) {
            sum = sum.rotate_right(1).wrapping_add(u32::from(b));
        }
    }
    for w in v[512 * 11..512 * 12].chunks_exact_mut(4) {
        w.copy_from_slice(&sum.to_le_bytes());
    }
}

#[test]
fn bad_input_gives_typed_errors() {
    let (good, root, _cs, fat) = fresh();
    let map = |v: &[u8]| map_exfat(&MemDevice::from_vec(v.to_vec(), 512));
    assert!(map(&good).is_ok());

    let mut v = good.clone();
    v[600] ^= 1; // sector 1 (an extended boot sector)
    let e = map(&v).unwrap_err();
    assert!(
        matches!(
            e,
            ExfatError::Decode(DecodeError::BootChecksum { region: "main", .. })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("boot checksum sector"), "{e}");

    let mut v = good.clone();
    v[3..11].copy_from_slice(b"NTFS    ");
    assert!(matches!(
        map(&v),
        Err(ExfatError::Decode(DecodeError::NotExfat))
    ));

    let mut v = good.clone();
    v[110] = 3;
    reseal(&mut v);
    let e = map(&v).unwrap_err();
    assert!(e.to_string().contains("NumberOfFats"), "{e}");

    let mut v = good.clone();
    v[110] = 2;
    reseal(&mut v);
    assert!(matches!(map(&v), Err(ExfatError::TexFat(2))));

    let bm = entry(&good, root, 0x81);
    let mut v = good.clone();
    v[bm + 24..bm + 32].copy_from_slice(&1u64.to_le_bytes());
    let e = map(&v).unwrap_err();
    assert!(matches!(e, ExfatError::BitmapTooSmall { .. }), "{e}");

    let mut v = good.clone();
    v[bm + 20..bm + 24].copy_from_slice(&0u32.to_le_bytes());
    let e = map(&v).unwrap_err();
    assert!(
        matches!(
            e,
            ExfatError::Decode(DecodeError::DirEntry {
                field: "FirstCluster",
                ..
            })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("allocation bitmap"), "{e}");

    let mut v = good.clone();
    v[bm] = 0x01; // the entry gone: no bitmap
    assert!(matches!(map(&v), Err(ExfatError::Root(_))));

    // The root directory's FAT entry pointing at itself: a cycle, ended by the limit.
    let root_cluster = u32::from_le_bytes(good[96..100].try_into().unwrap()) as usize;
    let mut v = good.clone();
    let at = fat + root_cluster * 4;
    v[at..at + 4].copy_from_slice(&(root_cluster as u32).to_le_bytes());
    let e = map(&v).unwrap_err();
    assert!(
        matches!(e, ExfatError::Decode(DecodeError::Chain { .. })),
        "{e}"
    );

    assert!(matches!(
        map(&good[..good.len() / 2]),
        Err(ExfatError::Truncated { .. })
    ));
    assert!(map(&[]).is_err());

    // Through map_filesystem: imaged raw, with the reason.
    let dev = MemDevice::from_vec(
        {
            let mut v = good.clone();
            v[600] ^= 1;
            v
        },
        512,
    );
    let m = ironclone::usedmap::map_filesystem(&dev, ironclone::probe::FsKind::Exfat);
    assert!(m.raw);
    assert!(m.raw_reason.unwrap().contains("boot checksum"));
}

#[test]
fn random_flips_never_panic() {
    let (mut v, root, _, fat) = fresh();
    let mut s = 0x1234_5678_9abc_def1u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    // Flips in the boot sector (resealed, so the fields are reached), the FAT and
    // the root directory.
    for round in 0..3000 {
        let mut undo = Vec::new();
        for _ in 0..1 + next() % 4 {
            let at = match round % 3 {
                0 => 64 + (next() as usize) % 64,
                1 => fat + (next() as usize) % 64,
                _ => root + (next() as usize) % 256,
            };
            undo.push((at, v[at]));
            v[at] = next() as u8;
        }
        let keep: Vec<u8> = v[512 * 11..512 * 12].to_vec();
        reseal(&mut v);
        let dev = MemDevice::from_vec(v, 512);
        let _ = map_exfat(&dev);
        v = dev.into_vec();
        v[512 * 11..512 * 12].copy_from_slice(&keep);
        for (at, b) in undo.into_iter().rev() {
            v[at] = b;
        }
    }
}
