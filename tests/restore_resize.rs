//! Proof of issue 5 through the binary: `ironclone backup` a disk image made by the
//! real tools (sfdisk, mkfs.ext4 -d, mkntfs + ntfscp), `ironclone restore` it onto
//! targets of another size, and judge the result only with independent tools:
//! sgdisk -v / sfdisk --verify, the GPT backup header read at the last LBA, e2fsck -fn,
//! dumpe2fs, ntfsfix -n, ntfsresize --info, and every file read back with debugfs /
//! ntfscat. Partitions are copied out of the target with dd (no loop devices needed).

mod common;
mod restore_fixture;

use common::{path_str, require_tool, run, sfdisk_json};
use restore_fixture::*;
use std::path::Path;

fn grow_and_shrink(gpt: bool) {
    let s = source(gpt);
    for (name, pct) in [("grow.img", 150), ("shrink.img", 60)] {
        let t = s.target(name, s.size * pct / 100);
        let log = s.restore_ok(&t, &[]);
        s.check(&t, true, &log);
        // Each data partition really changed size the way the disk did.
        for fs in &s.fss {
            let (_, before) = part(&s.disk, fs.number);
            let (_, after) = part(&t, fs.number);
            if pct > 100 {
                assert!(
                    after > before,
                    "p{} did not grow: {before} -> {after}\n{log}",
                    fs.number
                );
            } else {
                assert!(
                    after < before,
                    "p{} did not shrink: {before} -> {after}\n{log}",
                    fs.number
                );
            }
        }
        std::fs::remove_file(&t).unwrap();
    }
}

#[test]
#[ignore = "needs root"]
fn gpt_ext4_ntfs_grow_and_shrink() {
    grow_and_shrink(true);
}

#[test]
#[ignore = "needs root"]
fn mbr_logical_ext4_ntfs_grow_and_shrink() {
    grow_and_shrink(false);
}

#[test]
#[ignore = "needs root"]
fn new_ids_keep_layout_and_size_request() {
    let s = source(true);
    // --layout keep onto a larger disk: same starts and sizes; --new-ids: fresh table ids.
    let t = s.target("keep.img", s.size * 3 / 2);
    let log = s.restore_ok(&t, &["--layout", "keep", "--new-ids"]);
    s.check(&t, false, &log);
    let (a, b) = (parts(&s.disk), parts(&t));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.1, x.2),
            (y.1, y.2),
            "--layout keep moved partition {}\n{log}",
            x.0
        );
    }
    std::fs::remove_file(&t).unwrap();
    // --size 1=50M on a larger disk: p1 gets exactly 50 MiB (a shrink), p2 the rest.
    let t = s.target("size.img", s.size * 3 / 2);
    let log = s.restore_ok(&t, &["--size", "1=50M"]);
    s.check(&t, true, &log);
    assert_eq!(part(&t, 1).1, 50 * MIB, "--size 1=50M\n{log}");
    assert!(
        part(&t, 2).1 > part(&s.disk, 2).1,
        "p2 did not take the rest\n{log}"
    );
}

#[test]
fn mbr_new_ids_change_the_signature() {
    let s = source(false);
    let t = s.target("new.img", s.size);
    let log = s.restore_ok(&t, &["--new-ids"]);
    s.check(&t, false, &log);
}

fn blake(p: &Path) -> String {
    run("b2sum", &[path_str(p)])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn dry_run_and_too_small_write_nothing() {
    let s = source(true);
    let t = s.target("dry.img", s.size * 3 / 2);
    let before = blake(&t);
    let (ok, out) = s.restore(&t, &["--dry-run"]);
    assert!(ok, "dry run failed:\n{out}");
    assert!(out.contains("Grow"), "the dry run shows no plan:\n{out}");
    assert_eq!(before, blake(&t), "--dry-run wrote to the target");

    // 24 MiB cannot hold ~20 MiB of ext4 files plus ~14 MiB of NTFS files.
    let t = s.target("small.img", 24 * MIB);
    let before = blake(&t);
    let (ok, out) = s.restore(&t, &[]);
    assert!(!ok, "a restore onto a too small target succeeded:\n{out}");
    let missing: Option<u64> = out
        .split('(')
        .filter_map(|x| {
            x.strip_suffix(" bytes) missing")
                .or_else(|| x.split(" bytes) missing").next())
        })
        .filter_map(|x| x.trim().parse().ok())
        .next();
    let missing = missing.unwrap_or_else(|| panic!("no 'N bytes missing' in:\n{out}"));
    assert!(missing > 0 && missing < s.size, "missing {missing}:\n{out}");
    assert_eq!(before, blake(&t), "the refused restore wrote to the target");
}

/// 512-byte source onto a 4096-byte-sector target: the table's units are converted
/// (GPT first usable LBA must clear the 4-sector entry array), ext4 follows; NTFS,
/// whose boot sector fixes its sector size, is refused before anything is written.
#[test]
#[ignore = "needs root"]
fn sector_size_512_to_4096() {
    require_tool("losetup");
    let td = common::tempdir();
    let dir = td.path();
    let disk = dir.join("src.img");
    let size = 64 * MIB;
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    // sgdisk leaves first usable at 34 (512-byte units): 4.25 sectors of 4096.
    run(
        "sgdisk",
        &["-n", "1:2048:0", "-t", "1:8300", path_str(&disk)],
    );
    let (start, len) = part(&disk, 1);
    let fs = FsSpec {
        number: 1,
        fs: Fs::Ext4,
        files: files(7, 3),
    };
    ext4_4k_into(&disk, dir, &fs);
    let repo = dir.join("repo");
    let (ok, out) = ironclone(&["backup", path_str(&disk), path_str(&repo), "--name", "img"]);
    assert!(ok, "backup:\n{out}");
    let t = dir.join("t.img");
    std::fs::File::create(&t)
        .unwrap()
        .set_len(size * 3 / 2)
        .unwrap();
    let (ok, log) = ironclone(&[
        "restore",
        path_str(&repo),
        "img",
        path_str(&t),
        "--yes",
        "--no-nvram",
        "--sector-size",
        "4096",
    ]);
    assert!(ok, "restore --sector-size 4096:\n{log}");
    let (tstart, tlen) = {
        let lo = common::LoopDev::attach(&t, Some(4096));
        let v = run("sgdisk", &["-v", path_str(&lo.path)]);
        assert!(
            v.contains("No problems found"),
            "sgdisk -v (4096):\n{v}\n{log}"
        );
        let p = run("sgdisk", &["-p", path_str(&lo.path)]);
        let first: u64 = p
            .lines()
            .find_map(|l| l.strip_prefix("First usable sector is "))
            .and_then(|l| l.split(',').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no first usable in:\n{p}"));
        assert!(
            first >= 6,
            "first usable LBA {first} overlaps the entry array (LBA 2..5)\n{p}"
        );
        let j = sfdisk_json(&lo.path);
        assert_eq!(j["partitiontable"]["sectorsize"].as_u64(), Some(4096));
        part(&lo.path, 1)
    };
    let src_img = dir.join("chk-src.img");
    let out_img = dir.join("chk.img");
    dd_out(&disk, &src_img, start, len);
    dd_out(&t, &out_img, tstart, tlen);
    check_ext4(&src_img, &out_img, tlen, &fs, &log);

    // NTFS cannot follow: refused, target untouched.
    let s = source(true);
    let t = s.target("ntfs4k.img", s.size * 3 / 2);
    let before = blake(&t);
    let (ok, out) = s.restore(&t, &["--sector-size", "4096"]);
    assert!(!ok, "NTFS onto 4096-byte sectors was not refused:\n{out}");
    assert!(
        out.contains("4096"),
        "the refusal does not name the sector size:\n{out}"
    );
    assert_eq!(before, blake(&t), "the refused restore wrote to the target");
}

/// `sfdisk -d` with the device's path taken out, so two disks' dumps compare.
fn sfdisk_dump(disk: &Path) -> String {
    run("sfdisk", &["-d", path_str(disk)]).replace(path_str(disk), "DISK")
}

/// Issue 16: onto a disk of exactly the source's size, the table is the source's
/// byte for byte and no filesystem is resized, although the last partition ends at
/// the last usable LBA, off the MiB grid.
#[test]
fn same_size_disk_gets_the_source_table() {
    for gpt in [true, false] {
        let s = source_filled(gpt);
        let (start, len) = part(&s.disk, 2);
        if gpt {
            assert_ne!((start + len) % MIB, 0, "the fixture must end off the grid");
        }
        let t = s.target("same.img", s.size);
        let log = s.restore_ok(&t, &[]);
        s.check(&t, true, &log);
        assert_eq!(sfdisk_dump(&s.disk), sfdisk_dump(&t), "gpt={gpt}\n{log}");
        for fs in &s.fss {
            assert_eq!(
                part(&s.disk, fs.number),
                part(&t, fs.number),
                "p{} moved or was resized\n{log}",
                fs.number
            );
        }
        for word in ["ntfsresize", "resize2fs", "Shrink", "Grow"] {
            assert!(!log.contains(word), "gpt={gpt}: {word} in the log:\n{log}");
        }
    }
}

/// Issue 16: a disk whose one partition fills it to the end and is imaged raw (it
/// cannot shrink) restores onto a disk of the same size, byte for byte.
#[test]
fn raw_partition_to_the_end_fits_a_same_size_disk() {
    let td = common::tempdir();
    let dir = td.path();
    let disk = dir.join("raw.img");
    let size = 256 * MIB;
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    run("sgdisk", &["-n", "1:0:0", "-t", "1:8300", path_str(&disk)]);
    let (start, len) = part(&disk, 1);
    let mut noise = vec![0u8; len as usize];
    common::Rng::new(16).fill(&mut noise);
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
        f.write_all_at(&noise, start).unwrap();
    }
    let repo = dir.join("repo");
    let (ok, out) = ironclone(&["backup", path_str(&disk), path_str(&repo), "--name", "img"]);
    assert!(ok, "backup:\n{out}");
    assert!(
        out.contains("raw"),
        "the partition was not imaged raw:\n{out}"
    );
    let t = dir.join("t.img");
    std::fs::File::create(&t).unwrap().set_len(size).unwrap();
    let (ok, log) = ironclone(&[
        "restore",
        path_str(&repo),
        "img",
        path_str(&t),
        "--yes",
        "--no-nvram",
    ]);
    assert!(ok, "restore onto a same-size disk:\n{log}");
    assert_eq!(sfdisk_dump(&disk), sfdisk_dump(&t), "{log}");
    assert_eq!(part(&t, 1), (start, len));
    let out = dir.join("p1.out");
    dd_out(&t, &out, start, len);
    assert!(
        std::fs::read(&out).unwrap() == noise,
        "raw partition differs"
    );
}

/// ntfsresize rounds a shrunk volume down to whole clusters and keeps the backup boot
/// sector in the partition's last sector, past `number_of_sectors`: the image of the
/// shrunk filesystem must carry that sector, not only the boot repair (which rewrites
/// it). ntfsfix checks the partition's last sector.
#[test]
fn ntfs_shrink_keeps_its_backup_boot_sector_without_boot_repair() {
    let s = source(true);
    let t = s.target("norepair.img", s.size * 60 / 100);
    let log = s.restore_ok(&t, &["--no-repair"]);
    let (start, len) = part(&t, 2);
    assert!(len < part(&s.disk, 2).1, "p2 did not shrink\n{log}");
    let img = s.dir.join("p2.out");
    dd_out(&t, &img, start, len);
    let out = run("ntfsfix", &["-n", path_str(&img)]);
    assert!(!out.contains("BAD"), "ntfsfix -n:\n{out}\n{log}");
    let b = std::fs::read(&img).unwrap();
    assert_eq!(
        &b[b.len() - 512..],
        &b[..512],
        "no backup boot sector in the last sector\n{log}"
    );
}
