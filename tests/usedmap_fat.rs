//! FAT12/16/32 used map against the reference tools: partclone.fat's count, a restore
//! of only the mapped extents checked by fsck.fat and mcopy, and corrupt boot sectors
//! that must give errors, not panics.

mod fsfixture;

use fsfixture::*;
use ironclone::device::{open_path, Access, MemDevice};
use ironclone::usedmap::fat::{map_fat, FatError};
use std::path::Path;

fn mtools(prog: &str, img: &Path, args: &[&str]) -> std::process::Output {
    let mut a = vec!["-i", img.to_str().unwrap()];
    a.extend_from_slice(args);
    run(prog, &a)
}

/// fsck.fat's "N files, U/T clusters": the independent count of allocated clusters.
fn fsck_used_clusters(img: &Path) -> u64 {
    let out = run("fsck.fat", &["-n", img.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(" files, ")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no cluster count in fsck.fat output:\n{text}"))
}

/// Bytes before the data region, read from the boot sector here rather than through
/// the parser under test.
fn meta_bytes(img: &Path) -> u64 {
    let b = read_range(img, 0, 512);
    let le16 = |o: usize| u64::from(u16::from_le_bytes([b[o], b[o + 1]]));
    let bps = le16(11);
    let fat_sz = if le16(22) != 0 {
        le16(22)
    } else {
        u64::from(u32::from_le_bytes(b[36..40].try_into().unwrap()))
    };
    (le16(14) + u64::from(b[16]) * fat_sz) * bps + (le16(17) * 32).div_ceil(bps) * bps
}

fn strong_check(fat: u32, size: u64, extra: &[&str]) {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("src.img");
    sparse_file(&img, size);
    let mut args = vec!["-F".to_string(), fat.to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(img.to_str().unwrap().into());
    run(
        "mkfs.fat",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    mtools("mmd", &img, &["::/EFI", "::/EFI/BOOT", "::/docs"]);
    let mut keep: Vec<(String, Vec<u8>)> = Vec::new();
    let scale = (size >> 20) as usize;
    for i in 0..20u64 {
        let data = prng_bytes(i, 300 + (i as usize * 7919) % (scale * 4000));
        let src = t.path().join(format!("f{i}"));
        std::fs::write(&src, &data).unwrap();
        let name = format!("::/docs/f{i}.bin");
        mtools("mcopy", &img, &[src.to_str().unwrap(), &name]);
        keep.push((name, data));
    }
    // Delete every other file, then write a big one that fills the holes (fragmented).
    for i in (0..20).step_by(2) {
        mtools("mdel", &img, &[&format!("::/docs/f{i}.bin")]);
    }
    keep.retain(|(n, _)| {
        !(0..20)
            .step_by(2)
            .any(|i| *n == format!("::/docs/f{i}.bin"))
    });
    let big = prng_bytes(99, scale * 40_000);
    let src = t.path().join("big");
    std::fs::write(&src, &big).unwrap();
    mtools(
        "mcopy",
        &img,
        &[src.to_str().unwrap(), "::/EFI/BOOT/BOOTX64.EFI"],
    );
    keep.push(("::/EFI/BOOT/BOOTX64.EFI".into(), big));
    // Stale data: written, then deleted.
    std::fs::write(&src, prng_bytes(200, scale * 20_000)).unwrap();
    mtools("mcopy", &img, &[src.to_str().unwrap(), "::/stale.bin"]);
    mtools("mdel", &img, &["::/stale.bin"]);

    let dev = open_path(&img, Access::ReadOnly).unwrap();
    let map = map_fat(&dev).expect("map_fat");
    eprintln!(
        "FAT{fat}: cluster {} used {} copy {} of {}, {} extents",
        map.block_size,
        map.used_bytes,
        map.copy_bytes(),
        map.total_bytes,
        map.extents.len()
    );
    assert!(map.warnings.is_empty(), "{:?}", map.warnings);
    assert_eq!(map.copy_bytes(), map.used_bytes);

    let used_clusters = fsck_used_clusters(&img);
    let pc = partclone_used("partclone.fat", &img);
    if fat == 12 {
        // partclone.fat 0.3.23 over-counts FAT12: it counts the two reserved entries
        // (clusters 0 and 1) and decodes 12-bit entries so that a 147-cluster file
        // shows as 220 clusters. fsck.fat is the reference here.
        assert!(
            pc > map.used_bytes,
            "partclone.fat FAT12 count {pc} expected above ours"
        );
    } else {
        assert_eq!(
            map.used_bytes, pc,
            "used_bytes vs partclone.fat Space in use"
        );
    }
    assert_eq!(
        map.used_bytes,
        meta_bytes(&img) + used_clusters * map.block_size,
        "used_bytes vs fsck.fat clusters"
    );

    let dst = t.path().join("dst.img");
    restore_extents(&img, &dst, &map);
    run("fsck.fat", &["-n", dst.to_str().unwrap()]);
    for (name, data) in &keep {
        let out = mtools("mcopy", &dst, &[name, "-"]);
        assert!(out.stdout == *data, "{name}: content differs after restore");
    }
    let stale = prng_bytes(200, 512);
    assert!(has_sector(&img, &stale), "fixture lost stale data");
    assert!(
        !has_sector(&dst, &stale),
        "stale data of a deleted file was copied"
    );
}

#[test]
fn fat12() {
    strong_check(12, 8 << 20, &[]);
}

#[test]
fn fat16() {
    strong_check(16, 16 << 20, &["-s", "4"]);
}

#[test]
fn fat32() {
    strong_check(32, 40 << 20, &["-s", "1"]);
}

/// mkfs.fat makes a FAT32 with fewer than 65525 clusters when asked (-F 32 on a small
/// partition, as some ESP scripts do); Linux, fsck.fat and mtools take the FAT32
/// layout from BPB_FATSz16 = 0, so the map must read its FAT as 32-bit entries.
/// mtools reads such a volume as FAT16 and cannot write to it, so the volume stays
/// as mkfs.fat made it (the root directory's cluster in use) and fsck.fat, which reads
/// it as FAT32, is the reference for the count and for the restored copy.
#[test]
fn fat32_with_few_clusters() {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("small32.img");
    sparse_file(&img, 40 << 20);
    let label = ["-F", "32", "-s", "8", "-n", "SMALL32"];
    run("mkfs.fat", &[&label[..], &[img.to_str().unwrap()]].concat());
    let dev = open_path(&img, Access::ReadOnly).unwrap();
    let map = map_fat(&dev).expect("map_fat");
    let used_clusters = fsck_used_clusters(&img);
    assert_eq!(used_clusters, 1, "fixture: only the root directory");
    assert_eq!(
        map.used_bytes,
        meta_bytes(&img) + used_clusters * map.block_size,
        "used_bytes vs fsck.fat clusters"
    );
    assert_eq!(map.copy_bytes(), map.used_bytes);
    let dst = t.path().join("dst.img");
    restore_extents(&img, &dst, &map);
    assert_eq!(fsck_used_clusters(&dst), used_clusters, "restored copy");
    let info = ironclone::probe::probe(&dev).expect("probe");
    assert_eq!(info.kind, ironclone::probe::FsKind::Fat32);
    assert_eq!(info.label.as_deref(), Some("SMALL32"));
}

#[test]
fn fat_garbage_gives_errors() {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("g.img");
    sparse_file(&img, 40 << 20);
    run("mkfs.fat", &["-F", "32", "-s", "1", img.to_str().unwrap()]);
    let good = std::fs::read(&img).unwrap();
    let map = |v: &[u8]| map_fat(&MemDevice::from_vec(v.to_vec(), 512));
    assert!(map(&good).is_ok());
    type Edit = fn(&mut Vec<u8>);
    let cases: [(&str, Edit); 6] = [
        ("bytes per sector 3", |v| {
            v[11..13].copy_from_slice(&3u16.to_le_bytes())
        }),
        ("sectors per cluster 0", |v| v[13] = 0),
        ("no FATs", |v| v[16] = 0),
        ("reserved 0", |v| v[14..16].fill(0)),
        ("FAT size 1", |v| {
            v[36..40].copy_from_slice(&1u32.to_le_bytes())
        }),
        ("no signature", |v| v[510] = 0),
    ];
    for (name, f) in cases {
        let mut v = good.clone();
        f(&mut v);
        // A FAT32 boot sector that fails validation is never trusted: the map comes
        // from the backup boot sector (and says so) or it is an error.
        match map(&v) {
            Ok(m) if m.primary_lost.is_some() => eprintln!("{name}: {}", m.warnings[0]),
            Ok(_) => panic!("{name}: expected an error or the backup"),
            Err(e) => eprintln!("{name}: {e}"),
        }
    }
    assert!(matches!(
        map(&good[..good.len() / 2]),
        Err(FatError::Truncated { .. })
    ));
    assert!(map(&[]).is_err());
    // Random flips in the boot sector of a small FAT12 (fast in debug builds): never a panic.
    let small = t.path().join("s.img");
    sparse_file(&small, 2 << 20);
    run("mkfs.fat", &["-F", "12", small.to_str().unwrap()]);
    let mut v = std::fs::read(&small).unwrap();
    assert!(map(&v).is_ok());
    let mut s = 0x9876_5432_1fed_cba1u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for _ in 0..3000 {
        let mut undo = Vec::new();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % 512;
            undo.push((at, v[at]));
            v[at] = next() as u8;
        }
        let dev = MemDevice::from_vec(v, 512);
        let _ = map_fat(&dev);
        v = dev.into_vec();
        for (at, b) in undo.into_iter().rev() {
            v[at] = b;
        }
    }
}

/// Swap lives here with FAT because both are small: the header page only, and the
/// UUID and label that mkswap wrote, as blkid reads them.
#[test]
fn swap_header_page() {
    use ironclone::usedmap::swap::{map_swap, read_swap_header};
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("swap.img");
    sparse_file(&img, 16 << 20);
    let uuid = "0b9c1f8e-5d4a-4c3b-9a2e-1f0e2d3c4b5a";
    run(
        "mkswap",
        &["-L", "myswap", "-U", uuid, img.to_str().unwrap()],
    );
    let dev = open_path(&img, Access::ReadOnly).unwrap();
    let map = map_swap(&dev).unwrap();
    assert_eq!(map.extents.len(), 1);
    assert_eq!(map.extents[0].offset, 0);
    assert_eq!(map.extents[0].len, 4096);
    assert_eq!(map.used_bytes, 4096);
    assert_eq!(map.total_bytes, 16 << 20);
    let h = read_swap_header(&dev).unwrap();
    assert_eq!(h.label, "myswap");
    assert_eq!(uuid::Uuid::from_bytes(h.uuid).to_string(), uuid);
    // Restoring the header page alone gives a swap area blkid recognises unchanged.
    let dst = t.path().join("dst.img");
    restore_extents(&img, &dst, &map);
    let out = run("blkid", &["-o", "export", dst.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("UUID={uuid}"))
            && text.contains("LABEL=myswap")
            && text.contains("TYPE=swap"),
        "{text}"
    );
}
