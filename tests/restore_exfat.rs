//! An exFAT data partition through the binary: `ironclone backup` of a GPT disk
//! (p1 ext4, p2 exFAT filled through exfat-fuse), `ironclone restore` onto a larger
//! and a smaller disk (ext4 grows or shrinks, so the exFAT partition moves and keeps
//! its size) and onto one too small to hold it (refused before anything is
//! written). Judged by sgdisk -v, e2fsck, fsck.exfat -n, every file read back
//! through a read-only exfat-fuse mount, and the boot sector's PartitionOffset.
//! Needs root (loop devices, FUSE).

mod common;
mod exfat_fixture;
mod fsfixture;
mod restore_fixture;

use common::{path_str, run};
use restore_fixture::*;
use std::collections::BTreeMap;
use std::path::Path;

const BASIC_DATA: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
const EXFAT_LEN: u64 = 40 * MIB;

struct ExfatSource {
    s: Source,
    exfat_files: BTreeMap<String, Vec<u8>>,
    backup_log: String,
}

fn source() -> ExfatSource {
    for t in [
        "sfdisk",
        "sgdisk",
        "mkfs.ext4",
        "mkfs.exfat",
        "fsck.exfat",
        "mount.exfat-fuse",
    ] {
        common::require_tool(t);
    }
    let td = common::tempdir();
    let dir = td.path().to_path_buf();
    let disk = dir.join("src.img");
    let size = 100 * MIB;
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    let script = format!("label: gpt\n,40M,L\n,40M,{BASIC_DATA}\n");
    common::run_in("sfdisk", &["-q", path_str(&disk)], Some(&script));

    let ext = FsSpec {
        number: 1,
        fs: Fs::Ext4,
        files: files(21, 3),
    };
    ext4_into(&disk, &dir, &ext);

    // mkfs.exfat on the partition itself, so PartitionOffset is its start (2048+).
    let (start, len) = part(&disk, 2);
    assert_eq!(len, EXFAT_LEN);
    let img = dir.join("p2.img");
    std::fs::File::create(&img).unwrap().set_len(len).unwrap();
    exfat_fixture::mkfs(&img, 512, &["-L", "DATA"]);
    set_partition_offset(&img, start / 512);
    let exfat_files = exfat_fixture::fill(&img, &dir, 512, 120, 150_000);
    dd_in(&disk, &img, start);
    std::fs::remove_file(&img).unwrap();

    let repo = dir.join("repo");
    let (ok, backup_log) =
        ironclone(&["backup", path_str(&disk), path_str(&repo), "--name", "img"]);
    assert!(ok, "backup failed:\n{backup_log}");
    let line = backup_log
        .lines()
        .find(|l| l.trim_start().starts_with("p2 "))
        .unwrap_or_else(|| panic!("no p2 line in the backup summary:\n{backup_log}"));
    assert!(
        line.contains("exfat") && line.contains("to read") && !line.contains("raw"),
        "exFAT not imaged by used clusters: {line}\n{backup_log}"
    );
    ExfatSource {
        s: Source {
            _dir: td,
            dir,
            disk,
            repo,
            size,
            gpt: true,
            fss: vec![ext],
        },
        exfat_files,
        backup_log,
    }
}

/// `PartitionOffset` (byte 64) of the exFAT boot sector, in 512-byte sectors.
fn partition_offset(img: &Path, at: u64) -> u64 {
    use std::os::unix::fs::FileExt;
    let mut b = [0u8; 8];
    std::fs::File::open(img)
        .unwrap()
        .read_exact_at(&mut b, at + 64)
        .unwrap();
    u64::from_le_bytes(b)
}

/// mkfs.exfat on a loop device of a lone partition image writes PartitionOffset 0;
/// the value a real partition gets is set here, with the checksum sector re-sealed
/// (in both boot regions) by computing it in the test.
fn set_partition_offset(img: &Path, lba: u64) {
    let mut v = std::fs::read(img).unwrap();
    for base in [0usize, 512 * 12] {
        v[base + 64..base + 72].copy_from_slice(&lba.to_le_bytes());
        let mut sum = 0u32;
        for (i, &b) in v[base..base + 512 * 11].iter().enumerate() {
            if !matches!(i, 106 | 107 | 112) {
                sum = sum.rotate_right(1).wrapping_add(u32::from(b));
            }
        }
        for w in v[base + 512 * 11..base + 512 * 12].chunks_exact_mut(4) {
            w.copy_from_slice(&sum.to_le_bytes());
        }
    }
    std::fs::write(img, v).unwrap();
}

fn check_exfat(x: &ExfatSource, target: &Path, log: &str) {
    let (sstart, _) = part(&x.s.disk, 2);
    let (start, len) = part(target, 2);
    assert_eq!(len, EXFAT_LEN, "the exFAT partition changed size\n{log}");
    assert_ne!(
        start, sstart,
        "the fixture meant the exFAT partition to move\n{log}"
    );
    assert_eq!(
        partition_offset(target, start),
        start / 512,
        "PartitionOffset not moved with the partition\n{log}"
    );
    let img = x.s.dir.join("chk-exfat.img");
    dd_out(target, &img, start, len);
    let got = exfat_fixture::check_and_read(&img, &x.s.dir, 512);
    assert_eq!(got.len(), x.exfat_files.len(), "file count\n{log}");
    for (rel, data) in &x.exfat_files {
        assert!(
            got.get(rel) == Some(data),
            "exFAT {rel} differs after restore\n{log}"
        );
    }
    std::fs::remove_file(&img).unwrap();
}

fn b2sum(p: &Path) -> String {
    run("b2sum", &[path_str(p)])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
#[ignore = "needs root"]
fn exfat_moves_with_its_size_onto_larger_and_smaller_disks_and_a_too_small_one_is_refused() {
    let x = source();
    eprintln!("{}", x.backup_log);
    for (name, pct) in [("grow.img", 150), ("shrink.img", 70)] {
        let t = x.s.target(name, x.s.size * pct / 100);
        let log = x.s.restore_ok(&t, &[]);
        x.s.check(&t, true, &log);
        check_exfat(&x, &t, &log);
        std::fs::remove_file(&t).unwrap();
    }
    // 44 MiB holds the 40 MiB exFAT but not the ext4 beside it.
    let t = x.s.target("small.img", 44 * MIB);
    let before = b2sum(&t);
    let (ok, out) = x.s.restore(&t, &[]);
    assert!(!ok, "a restore onto a too small target succeeded:\n{out}");
    assert!(
        out.contains("missing"),
        "the refusal does not say what is missing:\n{out}"
    );
    assert_eq!(before, b2sum(&t), "the refused restore wrote to the target");
}
