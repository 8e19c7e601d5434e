//! NTFS used map against the reference tools: partclone.ntfs's count, a restore of
//! only the mapped extents checked by ntfsfix/ntfsinfo/ntfscat, the backup boot sector,
//! hibernation/dirty warnings, and corrupt input that must give errors, not panics.

mod fsfixture;

use fsfixture::*;
use ironclone::device::{open_path, Access, MemDevice};
use ironclone::usedmap::ntfs::{map_ntfs, NtfsError, WARN_DIRTY, WARN_HIBERNATED};
use ironclone::usedmap::UsedMap;
use std::path::Path;

fn mkntfs(img: &Path, size: u64, cluster: u64) {
    mkntfs_sector(img, size, 512, cluster);
}

fn mkntfs_sector(img: &Path, size: u64, sector: u64, cluster: u64) {
    sparse_file(img, size);
    let (s, c) = (sector.to_string(), cluster.to_string());
    run(
        "mkntfs",
        &["-F", "-f", "-q", "-s", &s, "-c", &c, img.to_str().unwrap()],
    );
}

fn map_path(img: &Path) -> UsedMap {
    let dev = open_path(img, Access::ReadOnly).expect("open image");
    map_ntfs(&dev).expect("map_ntfs")
}

/// Files that must survive, as (NTFS path, content).
fn populate(img: &Path, dir: &Path, cluster: u64) -> Vec<(String, Vec<u8>)> {
    let mut keep = Vec::new();
    let scale = (cluster / 4096).max(1) as usize;
    {
        let m = Mount::new(img, &dir.join("mnt"));
        std::fs::create_dir_all(m.0.join("docs/sub")).unwrap();
        for i in 0..24u64 {
            let data = prng_bytes(i, 700 + (i as usize * 3001) % 40000 * scale.min(4));
            let name = format!("docs/sub/f{i}.bin");
            std::fs::write(m.0.join(&name), &data).unwrap();
            keep.push((format!("/{name}"), data));
        }
        std::fs::write(
            m.0.join("small.txt"),
            b"resident data lives in the MFT record",
        )
        .unwrap();
        keep.push((
            "/small.txt".into(),
            b"resident data lives in the MFT record".to_vec(),
        ));
    }
    {
        // Delete every other file so the next big file is fragmented into the holes.
        let m = Mount::new(img, &dir.join("mnt"));
        for i in (0..24).step_by(2) {
            std::fs::remove_file(m.0.join(format!("docs/sub/f{i}.bin"))).unwrap();
        }
    }
    keep.retain(|(p, _)| {
        !(0..24)
            .step_by(2)
            .any(|i| *p == format!("/docs/sub/f{i}.bin"))
    });
    for (i, size) in [(100u64, 9 << 20), (101, 3 << 20)] {
        let data = prng_bytes(i, size);
        let src = dir.join(format!("in{i}"));
        std::fs::write(&src, &data).unwrap();
        let name = format!("/big{i}.bin");
        run(
            "ntfscp",
            &[img.to_str().unwrap(), src.to_str().unwrap(), &name],
        );
        keep.push((name, data));
    }
    // A file written then deleted: its clusters are free but still hold its data.
    let stale = dir.join("stale");
    std::fs::write(&stale, prng_bytes(200, 4 << 20)).unwrap();
    run(
        "ntfscp",
        &[img.to_str().unwrap(), stale.to_str().unwrap(), "/stale.bin"],
    );
    {
        let m = Mount::new(img, &dir.join("mnt"));
        std::fs::remove_file(m.0.join("stale.bin")).unwrap();
    }
    keep
}

fn strong_check(cluster: u64, size: u64) {
    strong_check_sector(512, cluster, size);
}

fn strong_check_sector(sector: u64, cluster: u64, size: u64) {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("src.img");
    mkntfs_sector(&img, size, sector, cluster);
    let keep = populate(&img, t.path(), cluster);
    let start = std::time::Instant::now();
    let map = map_path(&img);
    let took = start.elapsed();
    eprintln!(
        "cluster {cluster}: used {} copy {} of {} in {took:?}, {} extents",
        map.used_bytes,
        map.copy_bytes(),
        map.total_bytes,
        map.extents.len()
    );
    assert_eq!(map.block_size, cluster);
    assert!(!map.raw);
    assert!(map.warnings.is_empty(), "{:?}", map.warnings);

    // (1) partclone's count. Both read the same $Bitmap, so they must agree exactly.
    let pc = partclone_used("partclone.ntfs", &img);
    assert_eq!(
        map.used_bytes, pc,
        "used_bytes vs partclone.ntfs Space in use"
    );

    // (3) the backup boot sector is the last sector, and it is mapped.
    let sz = std::fs::metadata(&img).unwrap().len();
    assert_eq!(
        map.total_bytes, sz,
        "mkntfs uses the whole image incl. the backup sector"
    );
    let last = map.extents.last().unwrap();
    assert_eq!(last.end(), sz, "backup boot sector missing from extents");
    assert_eq!(map.copy_bytes(), map.used_bytes + sector);

    // (2) restore only the extents onto zeros.
    let dst = t.path().join("dst.img");
    restore_extents(&img, &dst, &map);
    let n = sector as usize;
    assert_eq!(read_range(&dst, sz - sector, n), read_range(&img, 0, n));
    assert_eq!(
        read_range(&dst, sz - sector, n),
        read_range(&img, sz - sector, n)
    );
    let d = dst.to_str().unwrap();
    run("ntfsfix", &["-n", d]);
    run("ntfsinfo", &["-m", d]);
    for (path, data) in &keep {
        let out = run("ntfscat", &[d, path]);
        assert!(
            out.stdout == *data,
            "{path}: content differs after restore ({} vs {} bytes)",
            out.stdout.len(),
            data.len()
        );
    }
    // The deleted file's stale data was not copied: the map is not "everything".
    let stale = prng_bytes(200, 512);
    assert!(
        has_sector(&img, &stale),
        "fixture lost the deleted file's stale data"
    );
    assert!(
        !has_sector(&dst, &stale),
        "stale data of a deleted file was copied"
    );
}

#[test]
fn ntfs_512_byte_clusters() {
    strong_check(512, 96 << 20);
}

#[test]
fn ntfs_4k_clusters() {
    strong_check(4096, 96 << 20);
}

/// 4Kn: 4 KiB sectors, so the backup boot "sector" is 4 KiB.
#[test]
fn ntfs_4k_sectors() {
    strong_check_sector(4096, 4096, 96 << 20);
}

#[test]
fn ntfs_64k_clusters() {
    strong_check(65536, 128 << 20);
}

#[test]
fn ntfs_2m_clusters() {
    strong_check(2 << 20, 512 << 20);
}

/// Byte offset of `$VOLUME_INFORMATION.flags` in a fresh mkntfs image (1 KiB records,
/// contiguous $MFT), found with the test's own minimal walk.
fn volume_flags_offset(img: &[u8]) -> usize {
    let le16 = |o: usize| u16::from_le_bytes([img[o], img[o + 1]]) as usize;
    let le32 = |o: usize| u32::from_le_bytes(img[o..o + 4].try_into().unwrap()) as usize;
    let bps = le16(0x0B);
    let cs = bps * img[0x0D] as usize;
    let mft = u64::from_le_bytes(img[0x30..0x38].try_into().unwrap()) as usize * cs;
    let rec = mft + 3 * 1024;
    assert_eq!(&img[rec..rec + 4], b"FILE");
    let mut a = rec + le16(rec + 0x14);
    while le32(a) != 0x70 {
        assert_ne!(le32(a), 0xFFFF_FFFF, "no $VOLUME_INFORMATION");
        a += le32(a + 4);
    }
    let off = a + le16(a + 0x14) + 0x0A;
    assert_ne!((off - rec) % 512, 510, "flags on a fixup position");
    off
}

#[test]
fn ntfs_dirty_and_hibernated_warnings() {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("h.img");
    mkntfs(&img, 64 << 20, 4096);
    assert!(map_path(&img).warnings.is_empty());

    // Dirty flag set in $Volume; ntfsfix -d (ntfs-3g's own idea of the flag) clears it.
    let mut bytes = std::fs::read(&img).unwrap();
    let off = volume_flags_offset(&bytes);
    bytes[off] |= 1;
    std::fs::write(&img, &bytes).unwrap();
    assert_eq!(map_path(&img).warnings, vec![WARN_DIRTY.to_string()]);
    run("ntfsfix", &["-d", img.to_str().unwrap()]);
    let after = map_path(&img);
    assert!(
        !after.warnings.iter().any(|w| w == WARN_DIRTY),
        "{:?}",
        after.warnings
    );

    // A root hiberfil.sys starting with "hibr".
    for (magic, expect) in [(&b"hibr"[..], true), (b"WAKE", true), (b"\0\0\0\0", false)] {
        let img = t.path().join(format!("h{}.img", magic[0]));
        mkntfs(&img, 64 << 20, 4096);
        let mut data = magic.to_vec();
        data.extend(prng_bytes(7, 300_000));
        let src = t.path().join("hib");
        std::fs::write(&src, &data).unwrap();
        run(
            "ntfscp",
            &[
                img.to_str().unwrap(),
                src.to_str().unwrap(),
                "/hiberfil.sys",
            ],
        );
        let w = map_path(&img).warnings;
        assert_eq!(
            w.iter().any(|w| w == WARN_HIBERNATED),
            expect,
            "magic {magic:?}: {w:?}"
        );
    }
}

/// Offset of record 6's $DATA mapping pairs in a fresh mkntfs image.
fn bitmap_runs_offset(img: &[u8]) -> usize {
    let le16 = |o: usize| u16::from_le_bytes([img[o], img[o + 1]]) as usize;
    let le32 = |o: usize| u32::from_le_bytes(img[o..o + 4].try_into().unwrap()) as usize;
    let cs = le16(0x0B) * img[0x0D] as usize;
    let mft = u64::from_le_bytes(img[0x30..0x38].try_into().unwrap()) as usize * cs;
    let rec = mft + 6 * 1024;
    let mut a = rec + le16(rec + 0x14);
    while le32(a) != 0x80 {
        a += le32(a + 4);
    }
    assert_eq!(img[a + 8], 1, "$Bitmap $DATA is non-resident");
    a + le16(a + 0x20)
}

#[test]
fn ntfs_garbage_gives_errors() {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("g.img");
    mkntfs(&img, 32 << 20, 4096);
    let good = std::fs::read(&img).unwrap();
    let map = |v: &[u8]| map_ntfs(&MemDevice::from_vec(v.to_vec(), 512));
    assert!(map(&good).is_ok());
    let cs = 4096;
    let mft = u64::from_le_bytes(good[0x30..0x38].try_into().unwrap()) as usize * cs;

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut edit = |name: &'static str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = good.clone();
        f(&mut v);
        cases.push((name, v));
    };
    edit("bytes_per_sector 0", &|v| v[0x0B..0x0D].fill(0));
    edit("4 MiB clusters", &|v| v[0x0D] = 0xF3);
    edit("mft_lcn past end", &|v| {
        v[0x30..0x38].copy_from_slice(&u64::MAX.to_le_bytes())
    });
    edit("number_of_sectors huge", &|v| {
        v[0x28..0x30].copy_from_slice(&(1u64 << 40).to_le_bytes())
    });
    edit("record size 0", &|v| v[0x40] = 0);
    edit("no FILE magic in $Bitmap", &|v| v[mft + 6 * 1024] = b'X');
    edit("bad fixup in $Bitmap", &|v| v[mft + 6 * 1024 + 510] ^= 0xFF);
    edit("bad fixup in $MFT", &|v| v[mft + 1022] ^= 0xFF);
    let runs = bitmap_runs_offset(&good);
    edit("run past end", &|v| {
        v[runs..runs + 5].copy_from_slice(&[0x31, 0x01, 0xFF, 0xFF, 0x7F])
    });
    edit("negative LCN", &|v| {
        v[runs..runs + 4].copy_from_slice(&[0x21, 0x01, 0x00, 0x80])
    });
    edit("absurd length", &|v| {
        v[runs..runs + 6].copy_from_slice(&[0x14, 0xFF, 0xFF, 0xFF, 0x7F, 0x00])
    });
    edit("zero-length run", &|v| {
        v[runs..runs + 3].copy_from_slice(&[0x11, 0x00, 0x01])
    });
    for (name, v) in &cases {
        // A boot sector that fails validation is never trusted: the map comes from
        // the backup boot sector (and says so) or it is an error.
        match map(v) {
            Ok(m) if m.primary_lost.is_some() => eprintln!("{name}: {}", m.warnings[0]),
            Ok(m) => panic!(
                "{name}: expected an error or the backup, got {}",
                m.used_bytes
            ),
            Err(e) => eprintln!("{name}: {e}"),
        }
    }
    // Truncated image: the volume claims more than the device holds.
    assert!(matches!(
        map(&good[..good.len() / 2]),
        Err(NtfsError::Truncated { .. })
    ));
    assert!(map(&good[..300]).is_err());
    assert!(map(&[]).is_err());

    // Random byte flips in the boot sector and the first MFT records: never a panic.
    let mut v = good.clone();
    let mut s = 0x1234_5678_9abc_def1u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for _ in 0..3000 {
        let mut undo = Vec::new();
        for _ in 0..1 + next() % 6 {
            let region = if next() % 4 == 0 {
                0..512
            } else {
                mft..mft + 16 * 1024
            };
            let at = region.start + (next() as usize) % region.len();
            undo.push((at, v[at]));
            v[at] = next() as u8;
        }
        let dev = MemDevice::from_vec(v, 512);
        let _ = map_ntfs(&dev);
        v = dev.into_vec();
        for (at, b) in undo.into_iter().rev() {
            v[at] = b;
        }
    }
}
