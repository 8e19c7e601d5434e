//! Writing layouts onto devices of other sizes, checked with sgdisk -v and sfdisk.

mod common;

use common::*;
use ironclone::device::{open_path, Access, BlockDevice, MemDevice};
use ironclone::table::{
    read_layout, relocate_gpt_backup, write_layout, DiskLayout, TableError, TableKind, WriteOptions,
};
use std::path::Path;

const MIB: u64 = 1 << 20;

fn read(p: &Path) -> DiskLayout {
    read_layout(&open_path(p, Access::ReadOnly).unwrap()).expect("read")
}

fn write(p: &Path, l: &DiskLayout, opts: &WriteOptions) -> Result<DiskLayout, TableError> {
    let dev = open_path(p, Access::ReadWrite).unwrap();
    write_layout(&dev, l, opts)
}

fn sgdisk_verify(p: &Path) {
    let out = run("sgdisk", &["-v", path_str(p)]);
    assert!(
        out.contains("No problems found"),
        "sgdisk -v on {}:\n{out}",
        p.display()
    );
}

fn gpt_source(dir: &Path) -> std::path::PathBuf {
    let img = sparse(dir, "src.img", 64 * MIB);
    run(
        "sgdisk",
        &[
            "-n1:2048:+8M",
            "-t1:ef00",
            "-c1:EFI",
            "-n2:0:+16M",
            "-t2:8300",
            "-c2:root",
            "-A2:set:2",
            "-n5:0:+10M",
            "-t5:0700",
            "-c5:data",
            path_str(&img),
        ],
    );
    img
}

/// Starts, sizes, GUIDs and names agree between two sfdisk dumps (ignoring lastlba).
fn same_partitions(a: &serde_json::Value, b: &serde_json::Value) {
    let pa = &a["partitiontable"];
    let pb = &b["partitiontable"];
    assert_eq!(pa["id"], pb["id"]);
    assert_eq!(pa["label"], pb["label"]);
    let strip = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let mut p = p.clone();
                let node = p["node"].as_str().unwrap().to_string();
                let n: String = node
                    .chars()
                    .rev()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                p["node"] = serde_json::Value::String(n);
                p
            })
            .collect()
    };
    assert_eq!(strip(pa), strip(pb));
}

#[test]
fn gpt_round_trip_bigger_and_smaller() {
    let d = tempdir();
    let src = gpt_source(d.path());
    let l = read(&src);
    let want = sfdisk_json(&src);
    for (name, size) in [("big.img", 100 * MIB + 4096), ("small.img", 40 * MIB)] {
        let dst = sparse(d.path(), name, size);
        let written = write(&dst, &l, &WriteOptions::default()).expect("write");
        sgdisk_verify(&dst);
        let got = sfdisk_json(&dst);
        same_partitions(&want, &got);
        let back = read(&dst);
        assert!(back.warnings.is_empty(), "{:?}", back.warnings);
        assert_eq!(back.partitions, l.partitions);
        assert_eq!(back.disk_guid, l.disk_guid);
        let n = size / 512;
        let g = back.gpt.as_ref().unwrap();
        assert_eq!(
            g.alternate_lba.get(),
            n - 1,
            "backup header at the last LBA"
        );
        assert_eq!(g.last_usable_lba.get(), n - 34);
        assert_eq!(written.gpt, back.gpt);
        // Backup header is really at the last sector.
        let dev = open_path(&dst, Access::ReadOnly).unwrap();
        assert_eq!(&dev.read_vec((n - 1) * 512, 8).unwrap(), b"EFI PART");
        // Protective MBR sized to the disk.
        let m = dev.read_vec(0, 512).unwrap();
        assert_eq!(m[0x1BE + 4], 0xEE);
        assert_eq!(
            u32::from_le_bytes(m[0x1CA..0x1CE].try_into().unwrap()) as u64,
            n - 1
        );
    }
}

#[test]
fn gpt_keeps_boot_code_and_fresh_ids_option() {
    let d = tempdir();
    let src = gpt_source(d.path());
    let l = read(&src);
    let dst = sparse(d.path(), "dst.img", 64 * MIB);
    let dev = open_path(&dst, Access::ReadWrite).unwrap();
    dev.write_at(0, &[0xEB; 440]).unwrap();
    let w = write_layout(&dev, &l, &WriteOptions { fresh_ids: true }).unwrap();
    drop(dev);
    assert_ne!(w.disk_guid, l.disk_guid);
    assert!(w
        .partitions
        .iter()
        .zip(&l.partitions)
        .all(|(a, b)| a.uuid != b.uuid));
    sgdisk_verify(&dst);
    let back = read(&dst);
    assert_eq!(back.disk_guid, w.disk_guid);
    let m = open_path(&dst, Access::ReadOnly)
        .unwrap()
        .read_vec(0, 440)
        .unwrap();
    assert!(m.iter().all(|&b| b == 0xEB), "boot code kept");
}

#[test]
fn gpt_refuses_device_too_small_and_says_by_how_much() {
    let d = tempdir();
    let l = read(&gpt_source(d.path()));
    let end = l.last_used_lba().unwrap().get();
    // Room for the last partition minus 10 sectors.
    let n = end + 1 + 33 - 10;
    let dev = MemDevice::new((n * 512) as usize, 512);
    match write_layout(&dev, &l, &WriteOptions::default()) {
        Err(TableError::DoesNotFit {
            short_bytes,
            number,
            ..
        }) => {
            assert_eq!(short_bytes, 10 * 512);
            assert_eq!(number, 5);
        }
        other => panic!("expected DoesNotFit, got {other:?}"),
    }
    assert!(
        dev.snapshot().iter().all(|&b| b == 0),
        "nothing written on refusal"
    );
}

#[test]
fn relocate_backup_after_growing() {
    let d = tempdir();
    let img = gpt_source(d.path());
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.set_len(96 * MIB).unwrap();
    drop(f);
    let grown = read(&img);
    assert!(
        grown
            .warnings
            .iter()
            .any(|w| w.contains("not at the last LBA")),
        "{:?}",
        grown.warnings
    );
    let before = sfdisk_json(&img);
    let dev = open_path(&img, Access::ReadWrite).unwrap();
    let l = relocate_gpt_backup(&dev).expect("relocate");
    drop(dev);
    assert_eq!(l.gpt.unwrap().alternate_lba.get(), 96 * MIB / 512 - 1);
    sgdisk_verify(&img);
    same_partitions(&before, &sfdisk_json(&img));
    let after = read(&img);
    assert!(after.warnings.is_empty(), "{:?}", after.warnings);
    // The old backup header (at the old end) is gone.
    let old = open_path(&img, Access::ReadOnly)
        .unwrap()
        .read_vec(64 * MIB - 512, 8)
        .unwrap();
    assert_ne!(&old, b"EFI PART");
}

#[test]
fn mbr_with_logicals_round_trip() {
    let d = tempdir();
    let src = sparse(d.path(), "mbr.img", 64 * MIB);
    run_in(
        "sfdisk",
        &["-q", path_str(&src)],
        Some(
            "label: dos\nlabel-id: 0xdeadbeef\nstart=2048, size=8MiB, type=83, bootable\n\
             size=8MiB, type=7\nsize=4MiB, type=82\nsize=30MiB, type=5\nsize=6MiB, type=83\n\
             size=6MiB, type=c\nsize=6MiB, type=83\n",
        ),
    );
    let l = read(&src);
    let want = sfdisk_json(&src);
    // The extended partition ends at 52 MiB: 48 MiB is too small, by 4 MiB + 1 sector.
    let small = MemDevice::new((48 * MIB) as usize, 512);
    let e = write_layout(&small, &l, &WriteOptions::default()).unwrap_err();
    assert!(matches!(e, TableError::DoesNotFit { number: 4, .. }), "{e}");
    assert!(e.to_string().contains("short by"), "{e}");
    for (name, size) in [("big.img", 200 * MIB), ("fit.img", 53 * MIB)] {
        let dst = sparse(d.path(), name, size);
        // Put GPT garbage on the target: the MBR write must remove it.
        let dev = open_path(&dst, Access::ReadWrite).unwrap();
        dev.write_at(512, b"EFI PART").unwrap();
        write_layout(&dev, &l, &WriteOptions::default()).expect("write");
        drop(dev);
        let back = read(&dst);
        assert_eq!(back.kind, TableKind::Mbr);
        assert_eq!(back.partitions, l.partitions);
        assert_eq!(back.disk_signature, Some(0xdead_beef));
        same_partitions(&want, &sfdisk_json(&dst));
        let (ok, out) = run_status("sfdisk", &["--verify", path_str(&dst)]);
        assert!(ok, "sfdisk --verify: {out}");
    }
}

#[test]
#[ignore = "needs root"]
fn sector_4096_round_trip_on_loop() {
    let d = tempdir();
    let src = sparse(d.path(), "src4k.img", 64 * MIB);
    let dst = sparse(d.path(), "dst4k.img", 80 * MIB);
    let lsrc = LoopDev::attach(&src, Some(4096));
    let ldst = LoopDev::attach(&dst, Some(4096));
    run(
        "sgdisk",
        &[
            "-n1:256:+8M",
            "-t1:ef00",
            "-n2:0:+20M",
            "-c2:x",
            path_str(&lsrc.path),
        ],
    );
    let l = read(&lsrc.path);
    let dev = open_path(&ldst.path, Access::ReadWrite).unwrap();
    assert_eq!(dev.logical_sector_size(), 4096);
    write_layout(&dev, &l, &WriteOptions::default()).expect("write 4k");
    drop(dev);
    sgdisk_verify(&ldst.path);
    same_partitions(&sfdisk_json(&lsrc.path), &sfdisk_json(&ldst.path));
    let back = read(&ldst.path);
    // 128 entries x 128 bytes = 4 sectors of 4096: last usable = N - 1 - 4 - 1.
    assert_eq!(back.gpt.unwrap().last_usable_lba.get(), 80 * MIB / 4096 - 6);
}

#[test]
fn hybrid_mbr_round_trip_keeps_hybrid_entries() {
    let d = tempdir();
    let src = gpt_source(d.path());
    run("sgdisk", &["-h", "1:2", path_str(&src)]);
    let l = read(&src);
    assert!(l.hybrid_mbr);
    let dst = sparse(d.path(), "hyb-dst.img", 80 * MIB);
    write(&dst, &l, &WriteOptions::default()).expect("write");
    let back = read(&dst);
    assert!(back.hybrid_mbr);
    assert_eq!(back.hybrid_entries, l.hybrid_entries);
    assert_eq!(back.partitions, l.partitions);
    sgdisk_verify(&dst);
    // fdisk, forced to read the MBR side, sees the same hybrid entries (EE, EFI, Linux).
    let (src_mbr, dst_mbr) = (fdisk_mbr(&src), fdisk_mbr(&dst));
    assert_eq!(src_mbr.len(), 3, "{src_mbr:?}");
    assert_eq!(dst_mbr, src_mbr);
}

/// The MBR entries as `fdisk -l -t dos` lists them (number, boot flag, start, end,
/// sectors, id; the rounded size column dropped), without the device name.
fn fdisk_mbr(p: &Path) -> Vec<String> {
    let out = run("fdisk", &["-l", "-t", "dos", path_str(p)]);
    out.lines()
        .filter_map(|l| l.strip_prefix(path_str(p)))
        .map(|l| {
            let mut f: Vec<&str> = l.split_whitespace().collect();
            let boot = if f.get(1) == Some(&"*") {
                f.remove(1)
            } else {
                "-"
            };
            f.insert(1, boot);
            assert!(f.len() >= 7, "fdisk line {l:?}");
            [f[0], f[1], f[2], f[3], f[4], f[6]].join(" ")
        })
        .collect()
}

#[test]
#[ignore = "needs root"]
fn inspect_cli_4096_and_sector_size_flag() {
    let d = tempdir();
    let img = sparse(d.path(), "4k.img", 32 * MIB);
    {
        let lo = LoopDev::attach(&img, Some(4096));
        run("sgdisk", &["-n1:256:+8M", "-t1:8300", path_str(&lo.path)]);
        let out = run(
            env!("CARGO_BIN_EXE_ironclone"),
            &["inspect", "--json", path_str(&lo.path)],
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["sector_size"], 4096);
        assert_eq!(v["partitions"][0]["start_lba"], 256);
        assert_eq!(v["partitions"][0]["size_bytes"], 8 * MIB);
    }
    let out = run(
        env!("CARGO_BIN_EXE_ironclone"),
        &["inspect", "--json", "--sector-size", "4096", path_str(&img)],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["table"]["kind"], "gpt");
    assert_eq!(v["partitions"][0]["end_lba"], 256 + 2048 - 1);
}

/// In-memory round trips at both sector sizes, both table kinds, with fresh ids.
#[test]
fn mem_round_trips_both_sector_sizes() {
    use ironclone::table::{types, PartType, Partition};
    use ironclone::units::Lba;
    for ss in [512u32, 4096] {
        let part = |number, start: u64, end: u64, ptype, logical| Partition {
            number,
            start_lba: Lba(start),
            end_lba: Lba(end),
            size_bytes: (end - start + 1) * u64::from(ss),
            ptype,
            uuid: None,
            name: None,
            bootable: number == 1,
            attributes: 0,
            logical,
            ebr_lba: None,
        };
        let dev = MemDevice::new(64 * MIB as usize, ss);
        let n = dev.size() / u64::from(ss);
        let mut mbr = DiskLayout::none(ss, dev.size());
        mbr.kind = TableKind::Mbr;
        mbr.disk_signature = Some(0x0bad_cafe);
        let q = n / 8;
        mbr.partitions = vec![
            part(1, q, 2 * q - 1, PartType::Mbr(0x83), false),
            part(2, 2 * q, 7 * q, PartType::Mbr(0x0f), false),
            part(5, 2 * q + 1, 3 * q, PartType::Mbr(0x83), true),
            part(6, 3 * q + 2, 4 * q, PartType::Mbr(0x07), true),
            part(7, 5 * q, 7 * q, PartType::Mbr(0x82), true),
        ];
        let w = write_layout(&dev, &mbr, &WriteOptions { fresh_ids: true }).expect("mbr write");
        assert_ne!(w.disk_signature, mbr.disk_signature);
        let back = read_layout(&dev).expect("mbr read");
        assert_eq!(back.disk_signature, w.disk_signature);
        let mbr_signature = w.disk_signature.expect("the MBR write sets a signature");
        let strip = |ps: &[Partition]| -> Vec<Partition> {
            ps.iter()
                .cloned()
                .map(|p| Partition { ebr_lba: None, ..p })
                .collect()
        };
        assert_eq!(strip(&back.partitions), strip(&mbr.partitions), "ss {ss}");
        assert_eq!(back.partitions[3].ebr_lba, Some(Lba(3 * q + 1)));

        let mut gpt = DiskLayout::none(ss, dev.size());
        gpt.kind = TableKind::Gpt;
        gpt.partitions = vec![
            part(1, q, 2 * q - 1, PartType::Gpt(types::ESP), false),
            part(9, 2 * q, n - 40, PartType::Gpt(types::LINUX_FS), false),
        ];
        let w = write_layout(&dev, &gpt, &WriteOptions::default()).expect("gpt write");
        let back = read_layout(&dev).expect("gpt read");
        assert!(back.warnings.is_empty(), "{:?}", back.warnings);
        assert_eq!(back.partitions, w.partitions);
        assert_eq!(back.disk_guid, w.disk_guid);
        assert!(back.partitions.iter().all(|p| p.uuid.is_some()));
        // The signature the earlier MBR write put at 0x1B8 stays under the protective
        // MBR (the GPT layout carries none of its own), read back raw and by the reader.
        assert_eq!(gpt.disk_signature, None);
        let mut lba0 = vec![0u8; ss as usize];
        dev.read_at(0, &mut lba0).unwrap();
        assert_eq!(lba0[0x1B8..0x1BC], mbr_signature.to_le_bytes(), "ss {ss}");
        assert_eq!(back.disk_signature, Some(mbr_signature), "ss {ss}");
    }
}
