//! Reading partition tables made by sfdisk/sgdisk, checked against `sfdisk --json`.

mod common;

use common::*;
use ironclone::device::{open_path, Access, BlockDevice, FileDevice};
use ironclone::table::gpt_header::GptHeaderError;
use ironclone::table::{read_layout, GptCopyKind, GptProblem, PartType, TableError, TableKind};
use std::path::Path;

const MIB: u64 = 1 << 20;

fn open(p: &Path) -> FileDevice {
    open_path(p, Access::ReadOnly).expect("open")
}

/// GPT with 128 entries, names, attributes and a partition in slot 7.
pub fn make_gpt(dir: &Path, name: &str, size: u64) -> std::path::PathBuf {
    let img = sparse(dir, name, size);
    run(
        "sgdisk",
        &[
            "-n1:2048:+8M",
            "-t1:ef00",
            "-c1:EFI system",
            "-n2:0:+4M",
            "-t2:ef02",
            "-c2:bios",
            "-A2:set:2",
            "-n3:0:+16M",
            "-t3:8300",
            "-c3:root fs",
            "-A3:set:60",
            "-n7:0:+6M",
            "-t7:8200",
            "-c7:swap",
            path_str(&img),
        ],
    );
    img
}

pub fn make_mbr_logicals(dir: &Path, name: &str, size: u64) -> std::path::PathBuf {
    let img = sparse(dir, name, size);
    run_in(
        "sfdisk",
        &["-q", path_str(&img)],
        Some(
            "label: dos\nlabel-id: 0x1234abcd\n\
             start=2048, size=8MiB, type=c, bootable\n\
             size=8MiB, type=83\n\
             size=4MiB, type=82\n\
             type=5\n\
             size=6MiB, type=83\n\
             size=6MiB, type=7\n\
             size=6MiB, type=83\n",
        ),
    );
    img
}

#[test]
fn gpt_128_entries_matches_sfdisk() {
    let d = tempdir();
    let img = make_gpt(d.path(), "gpt.img", 64 * MIB);
    let l = read_layout(&open(&img)).expect("read");
    assert_eq!(l.kind, TableKind::Gpt);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let g = l.gpt.as_ref().expect("geometry");
    assert_eq!((g.num_entries, g.entry_size), (128, 128));
    assert_eq!(
        l.partitions.iter().map(|p| p.number).collect::<Vec<_>>(),
        [1, 2, 3, 7]
    );
    let p2 = &l.partitions[1];
    assert!(p2.bootable && p2.attributes == 1 << 2);
    assert_eq!(p2.ptype.name(), Some("BIOS boot"));
    assert_eq!(l.partitions[2].attributes, 1 << 60);
    assert_eq!(l.partitions[0].name.as_deref(), Some("EFI system"));
    assert_matches_sfdisk(&l, &sfdisk_json(&img));
}

#[test]
fn mbr_with_logicals_matches_sfdisk() {
    let d = tempdir();
    let img = make_mbr_logicals(d.path(), "mbr.img", 64 * MIB);
    let l = read_layout(&open(&img)).expect("read");
    assert_eq!(l.kind, TableKind::Mbr);
    assert_eq!(l.disk_signature, Some(0x1234_abcd));
    let nums: Vec<u32> = l.partitions.iter().map(|p| p.number).collect();
    assert_eq!(nums, [1, 2, 3, 4, 5, 6, 7]);
    assert!(l.partitions[3].ptype.is_mbr_extended());
    assert!(l.partitions[4..]
        .iter()
        .all(|p| p.logical && p.ebr_lba.is_some()));
    assert!(l.partitions[0].bootable);
    assert_matches_sfdisk(&l, &sfdisk_json(&img));
}

#[test]
fn hybrid_mbr_reports_gpt_and_flags_hybrid() {
    let d = tempdir();
    let img = make_gpt(d.path(), "hyb.img", 64 * MIB);
    run("sgdisk", &["-h", "1:3", path_str(&img)]);
    let l = read_layout(&open(&img)).expect("read");
    assert_eq!(l.kind, TableKind::Gpt);
    assert!(l.hybrid_mbr);
    assert!(l.hybrid_entries.iter().any(|e| e.ptype == 0xEE));
    assert!(l.hybrid_entries.iter().filter(|e| !e.is_empty()).count() >= 3);
    assert_matches_sfdisk(&l, &sfdisk_json(&img));
}

#[test]
fn corrupted_primary_falls_back_to_backup_with_warning() {
    let d = tempdir();
    let img = make_gpt(d.path(), "bad.img", 64 * MIB);
    let before = sfdisk_json(&img);
    // Flip a byte of the primary header's DiskGUID: its CRC no longer matches.
    let f = open_path(&img, Access::ReadWrite).unwrap();
    let mut b = [0u8; 1];
    f.read_at(512 + 60, &mut b).unwrap();
    b[0] ^= 0xFF;
    f.write_at(512 + 60, &b).unwrap();
    drop(f);
    let l = read_layout(&open(&img)).expect("read falls back");
    assert!(l.gpt.as_ref().unwrap().from_backup);
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("primary GPT") && w.contains("HeaderCRC32")),
        "{:?}",
        l.warnings
    );
    assert_matches_sfdisk(&l, &before);
}

/// With both copies damaged, the error says for each which structure failed and at
/// which LBA (the primary header, the backup's entry array), as typed values a caller
/// can act on, and its message names the device.
#[test]
fn both_copies_damaged_name_structure_and_lba() {
    let d = tempdir();
    let img = make_gpt(d.path(), "both.img", 64 * MIB);
    let last = 64 * MIB / 512 - 1;
    let backup_array = last - 32;
    let f = open_path(&img, Access::ReadWrite).unwrap();
    for at in [512 + 60, backup_array * 512 + 40] {
        let mut b = [0u8; 1];
        f.read_at(at, &mut b).unwrap();
        b[0] ^= 0xFF;
        f.write_at(at, &b).unwrap();
    }
    drop(f);
    let e = read_layout(&open(&img)).expect_err("no valid copy");
    let TableError::NoValidGpt {
        device,
        primary,
        backup,
    } = &e
    else {
        panic!("{e}");
    };
    assert!(device.contains("both.img"), "{e}");
    assert_eq!(
        (primary.copy, backup.copy),
        (GptCopyKind::Primary, GptCopyKind::Backup)
    );
    assert!(
        matches!(
            primary.problem,
            GptProblem::Header {
                lba: 1,
                source: GptHeaderError::HeaderCrc { .. }
            }
        ),
        "{e}"
    );
    assert!(
        matches!(backup.problem, GptProblem::ArrayCrc { lba, .. } if lba == backup_array),
        "{e}"
    );
    assert!(!backup.problem.is_media_error());
    let text = e.to_string();
    assert!(
        text.contains("primary header at LBA 1: HeaderCRC32"),
        "{text}"
    );
    let want = format!("backup entry array at LBA {backup_array}: PartitionEntryArrayCRC32");
    assert!(text.contains(&want), "{text}");
    assert!(backup.to_string().contains("both.img"), "{backup}");
}

#[test]
#[ignore = "needs root"]
fn sector_4096_loop_device() {
    let d = tempdir();
    let img = sparse(d.path(), "4k.img", 64 * MIB);
    let lo = LoopDev::attach(&img, Some(4096));
    run(
        "sgdisk",
        &[
            "-n1:256:+8M",
            "-t1:ef00",
            "-n2:0:+20M",
            "-t2:8300",
            "-c2:data",
            path_str(&lo.path),
        ],
    );
    let dev = open(&lo.path);
    assert_eq!(dev.logical_sector_size(), 4096);
    let l = read_layout(&dev).expect("read");
    assert_eq!(l.sector_size, 4096);
    assert_eq!(l.partitions[0].start_lba.get(), 256);
    assert_eq!(l.partitions[0].size_bytes, 8 * MIB);
    assert_matches_sfdisk(&l, &sfdisk_json(&lo.path));
    // The same image read as a file with --sector-size semantics.
    let f = open(&img).with_sector_size(4096);
    assert_eq!(read_layout(&f).expect("read file").partitions, l.partitions);
    // At 512-byte sectors the table is not there (the header would be at byte 4096).
    assert_ne!(
        read_layout(&open(&img)).map(|x| x.partitions).ok(),
        Some(l.partitions.clone())
    );
}

#[test]
fn blank_disk_has_no_table() {
    let d = tempdir();
    let img = sparse(d.path(), "blank.img", 16 * MIB);
    let l = read_layout(&open(&img)).expect("read");
    assert_eq!(l.kind, TableKind::None);
    assert!(l.partitions.is_empty());
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let (ok, out) = run_status("sfdisk", &["--json", path_str(&img)]);
    assert!(
        !ok || !out.contains("partitiontable"),
        "sfdisk sees a table: {out}"
    );
}

#[test]
fn inspect_cli_json() {
    let d = tempdir();
    let img = make_mbr_logicals(d.path(), "cli.img", 64 * MIB);
    let out = run(
        env!("CARGO_BIN_EXE_ironclone"),
        &["inspect", "--json", path_str(&img)],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["table"]["kind"], "mbr");
    assert_eq!(v["table"]["disk_signature"], "0x1234abcd");
    assert_eq!(v["size_bytes"], 64 * MIB);
    assert_eq!(v["sector_size"], 512);
    let parts = v["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 7);
    assert_eq!(parts[0]["type"], "0x0c");
    assert_eq!(parts[0]["bootable"], true);
    assert_eq!(parts[4]["number"], 5);
    for key in [
        "start_lba",
        "end_lba",
        "size_bytes",
        "uuid",
        "name",
        "filesystem",
    ] {
        assert!(parts[0].get(key).is_some(), "missing {key}");
    }
    let human = run(
        env!("CARGO_BIN_EXE_ironclone"),
        &["inspect", path_str(&img)],
    );
    assert!(
        human.contains("table: mbr") && human.contains("logical"),
        "{human}"
    );

    let gpt = make_gpt(d.path(), "cli-gpt.img", 64 * MIB);
    let out = run(
        env!("CARGO_BIN_EXE_ironclone"),
        &["inspect", "--json", path_str(&gpt)],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["table"]["kind"], "gpt");
    assert_eq!(
        v["partitions"][0]["type"],
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    );
    assert_eq!(v["partitions"][0]["name"], "EFI system");

    let blank = sparse(d.path(), "cli-blank.img", 8 * MIB);
    let out = run(
        env!("CARGO_BIN_EXE_ironclone"),
        &["inspect", "--json", path_str(&blank)],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["table"]["kind"], "none");
    assert_eq!(v["partitions"], serde_json::json!([]));
    assert!(v.get("filesystem").is_some());
    let _ = PartType::Mbr(0);
}

#[test]
fn whole_disk_filesystems_are_not_tables() {
    let d = tempdir();
    for (mkfs, args) in [
        ("mkfs.vfat", vec!["-F", "32"]),
        ("mkfs.vfat", vec!["-F", "16"]),
        ("mkfs.ntfs", vec!["-q", "-F"]),
        ("mkfs.ext4", vec!["-q", "-F"]),
    ] {
        let img = sparse(d.path(), "fs.img", 64 * MIB);
        let mut a = args.clone();
        a.push(path_str(&img));
        run(mkfs, &a);
        let l = read_layout(&open(&img)).expect("read");
        assert_eq!(l.kind, TableKind::None, "{mkfs} {args:?}: {l:?}");
        assert!(l.partitions.is_empty());
        std::fs::remove_file(&img).unwrap();
    }
}

#[test]
#[ignore = "needs root"]
fn mbr_logicals_on_4096_loop_device() {
    let d = tempdir();
    let img = sparse(d.path(), "mbr4k.img", 64 * MIB);
    let lo = LoopDev::attach(&img, Some(4096));
    run_in(
        "sfdisk",
        &["-q", path_str(&lo.path)],
        Some(
            "label: dos\nsize=8MiB, type=83\nsize=4MiB, type=82\nsize=4MiB, type=c\n\
             size=30MiB, type=5\nsize=6MiB, type=83\nsize=6MiB, type=82\n",
        ),
    );
    let l = read_layout(&open(&lo.path)).expect("read");
    assert_eq!(l.sector_size, 4096);
    assert_eq!(l.partitions.len(), 6);
    assert_eq!(l.partitions[4].size_bytes, 6 * MIB);
    assert!(l.partitions[4].logical && l.partitions[5].logical);
    assert_matches_sfdisk(&l, &sfdisk_json(&lo.path));
}
