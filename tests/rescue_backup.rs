//! Rescue-grade backup end to end (issue 9): a disk image whose ext4 partition has
//! EIO injected (FaultyDevice) on a known file's blocks (found by debugfs) and on its
//! inode table (found by dumpe2fs) is backed up without aborting; the image records
//! exactly those ranges and names the file and the metadata; a restore writes zeros
//! there and reports the same list; the source is never written.

mod rescue_common;

use ironclone::device::{open_path, Access, BlockDevice};
use ironclone::imaging::plan_backup;
use ironclone::progress::{Collect, ProgressEvent};
use ironclone::repo::{self, AreaKind, BackupOptions, Repository, SourceInfo};
use ironclone::rescue::{Fault, FaultKind, FaultyDevice};
use ironclone::usedmap::ByteExtent;
use rescue_common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn backup_of_failing_disk_records_and_names_the_damage() {
    let f = fixture();
    let before = sha(&f.disk);
    let mut fl = faults(&f);
    // The file's bad sectors are also slow (as on a dying disk): every retry of
    // them takes 150 ms, and the front end must still see life meanwhile.
    fl.push(Fault {
        offset: PART + f.file_bad.offset,
        len: f.file_bad.len,
        kind: FaultKind::Slow(Duration::from_millis(150)),
    });
    let dev = FaultyDevice::new(open_path(&f.disk, Access::ReadOnly).unwrap(), fl);
    let planned = plan_backup(&dev, SourceInfo::default()).unwrap();
    let repo_dir = f.dir.join("repo");
    let r = Repository::init(&repo_dir, 1 << 20, 8 << 20).unwrap();
    let progress = Collect::default();
    let m = repo::backup(
        &r,
        &dev,
        &planned.plan,
        &BackupOptions::new("sick"),
        &progress,
    )
    .unwrap();

    let areas: Vec<_> = m
        .areas
        .iter()
        .filter(|a| !a.unreadable.is_empty())
        .collect();
    assert_eq!(areas.len(), 1, "{:#?}", m.areas);
    let a = areas[0];
    assert_eq!(a.kind, AreaKind::Partition);
    assert_eq!(a.offset, PART);
    let mut want = vec![f.itable_bad, f.file_bad];
    want.sort();
    assert_eq!(a.unreadable, want);
    assert_eq!(m.stats.unreadable_bytes, 4096 + 1536);

    let d = a.damage.as_ref().expect("ext4 damage report");
    let files: Vec<_> = d.files.iter().filter_map(|x| x.path.clone()).collect();
    assert_eq!(files, vec!["/sub/dir/deep.bin"], "{d:#?}");
    assert_eq!(d.files[0].bad_bytes, 1536);
    assert!(
        d.metadata.iter().any(|x| x.what.contains("inode table")),
        "{d:#?}"
    );
    let lines = m.damage_lines();
    assert!(
        lines.iter().any(|l| l.contains("/sub/dir/deep.bin")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("inode table")),
        "{lines:#?}"
    );

    // Live progress: one ReadError per bad range (device offsets), and heartbeats
    // while the slow sectors were retried.
    let ev = progress.events();
    let mut errs: Vec<(u64, u64)> = ev
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::ReadError { offset, len } => Some((*offset, *len)),
            _ => None,
        })
        .collect();
    errs.sort();
    let want_dev: Vec<(u64, u64)> = want.iter().map(|e| (PART + e.offset, e.len)).collect();
    assert_eq!(errs, want_dev);
    let beats = ev
        .iter()
        .filter(|e| matches!(e, ProgressEvent::Advance { bytes: 0 }))
        .count();
    assert!(beats >= 2, "no heartbeat while retrying slow bad sectors");
    assert!(matches!(
        ev.last(),
        Some(ProgressEvent::JobEnd { ok: true })
    ));

    assert!(dev.write_attempts().is_empty());
    assert_eq!(sha(&f.disk), before, "the source changed");
}

#[test]
fn cli_backup_with_faults_then_images_and_restore_report_the_same_damage() {
    let f = fixture();
    let before = sha(&f.disk);
    let spec = faults(&f)
        .iter()
        .map(|x| format!("eio:{}+{}", x.offset, x.len))
        .collect::<Vec<_>>()
        .join(",");
    let env = [("IRONCLONE_FAULTS", spec)];
    let repo_dir = f.dir.join("repo");
    let (disk, rs) = (f.disk.to_str().unwrap(), repo_dir.to_str().unwrap());
    let out = ok(&ironclone(&["backup", disk, rs, "--name", "sick"], &env));
    assert!(out.contains("DAMAGED SOURCE"), "{out}");
    let summary: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  area "))
        .map(str::trim)
        .collect();
    assert!(
        summary.iter().any(|l| l.contains("/sub/dir/deep.bin")),
        "{out}"
    );
    assert!(summary.iter().any(|l| l.contains("inode table")), "{out}");
    assert_eq!(sha(&f.disk), before, "the source changed");

    let out = ok(&ironclone(&["images", rs, "--json"], &[]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let img = &v["images"][0];
    assert_eq!(img["stats"]["unreadable_bytes"], 4096 + 1536);
    let listed: Vec<&str> = img["damage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(listed, summary, "images --json and the backup disagree");
    assert_eq!(
        img["damage_reports"][0]["report"]["files"][0]["path"],
        "/sub/dir/deep.bin"
    );
    let out = ok(&ironclone(&["images", rs], &[]));
    assert!(out.contains("damaged:"), "{out}");

    // Restore onto a same-size image file, the layout kept: the damaged ranges come
    // back as zeros, the rest of the file's block as it was, and the report lists
    // the same damage again.
    let target = f.dir.join("target.img");
    std::fs::File::create(&target)
        .unwrap()
        .set_len(48 * MIB)
        .unwrap();
    // Garbage first, so zeros at the bad ranges are the restore's doing.
    std::fs::write(&target, vec![0xA5u8; (48 * MIB) as usize]).unwrap();
    let ts = target.to_str().unwrap();
    let out = ok(&ironclone(
        &[
            "restore",
            rs,
            "sick",
            ts,
            "--yes",
            "--layout",
            "keep",
            "--no-repair",
        ],
        &[],
    ));
    let restored: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("area "))
        .collect();
    assert_eq!(restored, summary, "restore report differs:\n{out}");
    for b in [f.file_bad, f.itable_bad] {
        assert!(
            read_at(&target, PART + b.offset, b.len)
                .iter()
                .all(|&x| x == 0),
            "bad range {b:?} not zero after restore"
        );
    }
    // The rest of that file block is the source's data.
    let blk = f.file_bad.offset / 4096 * 4096;
    let good = (PART + blk, f.file_bad.offset - blk);
    assert_eq!(
        read_at(&target, good.0, good.1),
        read_at(&f.disk, good.0, good.1)
    );
    // The restored filesystem passes its own checker: the zeroed inode-table block held
    // only unused inodes, and zeros inside a file's data are no inconsistency.
    let part = f.dir.join("restored-p1.img");
    std::fs::write(&part, read_at(&target, PART, 32 * MIB)).unwrap();
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(&part)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "e2fsck -fn on the restored partition: {}\n{}{}",
        fsck.status,
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
}

/// NTFS partition: EIO on a file's first cluster (located with ntfsinfo) inside an
/// MBR disk image; the backup records it and names the file by its path.
#[test]
fn backup_of_failing_ntfs_partition_names_the_file() {
    ntfs_damage_is_named(512, 512);
}

/// The same on a volume made with `mkntfs -s 4096`, read through a loop device with
/// 4096-byte sectors, 64 KiB unreadable inside the file. Its 4 KiB MFT records still
/// carry fixups every 512 bytes (9 update sequence entries): a reader striding by the
/// sector size finds "update sequence count 9 does not fit" in record 0 and cannot
/// name anything.
#[test]
fn backup_of_failing_4k_sector_ntfs_names_the_file() {
    ntfs_damage_is_named(4096, 64 << 10);
}

/// Builds an NTFS partition with `sector`-byte sectors holding /report.bin, makes
/// `bad_len` bytes inside the file's first run unreadable, backs the disk up and
/// checks that the damage report names the file.
fn ntfs_damage_is_named(sector: u64, bad_len: u64) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fs = d.join("ntfs.img");
    std::fs::File::create(&fs)
        .unwrap()
        .set_len(32 * MIB)
        .unwrap();
    run(Command::new("mkntfs")
        .args(["-q", "-F", "-Q", "-c", "4096"])
        .args([
            "-s",
            &sector.to_string(),
            "-p",
            &(PART / sector).to_string(),
        ])
        .arg(&fs));
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 249) as u8 + 1).collect();
    std::fs::write(d.join("report.bin"), &big).unwrap();
    run(Command::new("ntfscp")
        .arg(&fs)
        .arg(d.join("report.bin"))
        .arg("report.bin"));
    let info = run(Command::new("ntfsinfo")
        .args(["-v", "-F", "/report.bin"])
        .arg(&fs));
    let data = info.split("Dumping attribute $DATA").nth(1).unwrap();
    let row: Vec<&str> = data
        .split("Length")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    let hex = |w: &str| u64::from_str_radix(w.trim_start_matches("0x"), 16).unwrap();
    let (lcn, run_len) = (hex(row[1]), hex(row[2]));
    // Inside the first run, past its first sector.
    assert!(run_len * 4096 >= sector + bad_len, "{data}");
    let disk = d.join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(48 * MIB)
        .unwrap();
    // 512-byte sectors: the image file itself; 4096: a loop device with that sector
    // size (as a 4Kn disk reports it), which sfdisk (2.38 has no --sector-size) and
    // the backup both go through.
    let lo = (sector != 512).then(|| attach_with_sector_size(&disk, sector));
    let src = lo.as_ref().map_or(disk.clone(), |l| l.0.clone());
    let mut child = Command::new("sfdisk")
        .arg("-q")
        .arg(&src)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sfdisk (util-linux) is required");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            format!(
                "label: dos\nstart={}, size={}, type=7\n",
                PART / sector,
                32 * MIB / sector
            )
            .as_bytes(),
        )
        .unwrap();
    assert!(child.wait().unwrap().success());
    run(Command::new("dd")
        .arg(format!("if={}", fs.display()))
        .arg(format!("of={}", src.display()))
        .args(["bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]));
    let bad = ByteExtent {
        offset: lcn * 4096 + sector,
        len: bad_len,
    };
    let source = open_path(&src, Access::ReadOnly).unwrap();
    assert_eq!(u64::from(source.logical_sector_size()), sector);
    let dev = FaultyDevice::new(
        source,
        vec![Fault {
            offset: PART + bad.offset,
            len: bad.len,
            kind: FaultKind::Eio,
        }],
    );
    let planned = plan_backup(&dev, SourceInfo::default()).unwrap();
    let r = Repository::init(&d.join("repo"), 1 << 20, 8 << 20).unwrap();
    let m = repo::backup(
        &r,
        &dev,
        &planned.plan,
        &BackupOptions::new("ntfs"),
        &Collect::default(),
    )
    .unwrap();
    let a = m
        .areas
        .iter()
        .find(|a| !a.unreadable.is_empty())
        .expect("an area with unreadable bytes");
    assert_eq!(a.unreadable, vec![bad]);
    let rep = a.damage.as_ref().expect("NTFS damage report");
    assert_eq!(rep.fs, "ntfs");
    assert!(rep.warnings.is_empty(), "{rep:#?}");
    let files: Vec<_> = rep.files.iter().filter_map(|f| f.path.clone()).collect();
    assert_eq!(files, vec!["/report.bin"], "{rep:#?}");
    assert_eq!(rep.files[0].bad_bytes, bad_len, "{rep:#?}");
    assert!(m
        .damage_lines()
        .iter()
        .any(|l| l.contains("/report.bin (MFT record")));
}
