//! A Clonezilla savedisk folder of a disk holding LVM, built the way ocs-sr writes
//! one: a GPT disk with an ext4 `sda1` and the PV `sda2` of VG `<vg>`, whose LVs are
//! `root` (ext4 in two segments laid out of order), `data` (XFS) and `swap`. The PV is
//! made by lvm2 (tests/lvm_fixture: pvcreate, vgcreate, the LVs added by
//! vgcfgrestore, their filesystems laid onto the extents); the folder then gets
//! `lvm_vg_dev.list`, `lvm_logv.list`, `lvm_<vg>.conf` (vgcfgbackup of that PV), one
//! partclone image per filesystem (`<vg>-root.ext4-ptcl-img.zst`,
//! `<vg>-data.xfs-ptcl-img.zst`, `sda1.ext4-ptcl-img.zst`), `swappt-<vg>-swap.info`
//! and the table files. The checks read the restored PV with lvm2 (`pvck`,
//! `vgcfgbackup`), each LV gathered from the extents lvm2 names, and the
//! filesystems with e2fsck -fn / xfs_repair -n and the fixture's files.

#![allow(dead_code)]

use crate::fsfixture::{run, run_status};
use crate::lvm_fixture::backup::{metadata, parse};
use crate::lvm_fixture::{files_dir, gather, lvm, same_files, Detach, PvFixture, Seg, EXT, MIB};
use crate::xfs_fixture::{self, LoopMount};
use std::fs;
use std::path::{Path, PathBuf};

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The source disk: 408 MiB GPT, sda1 ext4 16 MiB from 1 MiB, sda2 the 384 MiB PV.
pub const DISK: u64 = 408 * MIB;
const P1: (u64, u64) = (MIB, 16 * MIB);
const P2: (u64, u64) = (17 * MIB, 384 * MIB);

pub struct CzLvm {
    pub pv: PvFixture,
    /// The folder of image folders (/home/partimag) and the image folder `img`.
    pub root: PathBuf,
    pub image: PathBuf,
    pub swap_uuid: String,
}

/// The LV segments as the fixture lays them out: (LV extent, count, [PV extent]).
fn layout(data_ext: u64) -> Vec<(&'static str, Vec<Seg>)> {
    vec![
        ("root", vec![(0, 4, vec![10]), (4, 2, vec![1])]),
        ("data", vec![(0, data_ext, vec![14])]),
        ("swap", vec![(0, 2, vec![3])]),
    ]
}

fn ext4(dir: &Path, name: &str, size: u64, seed: u64) -> PathBuf {
    let img = dir.join(format!("{name}.fs"));
    let files = files_dir(dir, name, 30, seed);
    fs::File::create(&img).unwrap().set_len(size).unwrap();
    run(
        "mkfs.ext4",
        &["-q", "-F", "-L", name, "-d", s(&files), s(&img)],
    );
    img
}

/// partclone `-c` of `fs` into the folder as `name` (zstd-compressed, as ocs-sr does).
fn partclone(tool: &str, fs: &Path, image: &Path, name: &str) {
    let out = image.join(name);
    let log = image.with_extension("pclog");
    run(
        tool,
        &["-q", "-c", "-s", s(fs), "-O", s(&out), "-L", s(&log)],
    );
    run("zstd", &["-q", "-f", "--rm", s(&out)]);
    let _ = fs::remove_file(log);
}

pub fn build(vg: &str) -> CzLvm {
    let dir = tempfile::Builder::new()
        .prefix("ironclone-czlvm-")
        .tempdir()
        .unwrap();
    let d = dir.path().to_path_buf();
    let root_fs = ext4(&d, "root", 6 * EXT, 1);
    let data_fs = d.join("data.fs");
    xfs_fixture::mkfs(&data_fs, &["-L", "xdata"]);
    let files = files_dir(&d, "data", 30, 2);
    {
        let mnt = d.join("mnt");
        let _m = LoopMount::new(&data_fs, &mnt, "rw");
        run("cp", &["-a", &format!("{}/.", s(&files)), s(&mnt)]);
    }
    let swap = d.join("swap.fs");
    fs::File::create(&swap).unwrap().set_len(2 * EXT).unwrap();
    run("mkswap", &["-q", "-L", "lvswap", s(&swap)]);
    let swap_uuid =
        String::from_utf8(run("blkid", &["-p", "-o", "value", "-s", "UUID", s(&swap)]).stdout)
            .unwrap()
            .trim()
            .to_string();
    let boot = ext4(&d, "boot", P1.1, 3);
    let lvs = layout(xfs_fixture::SIZE / EXT)
        .into_iter()
        .zip([root_fs.clone(), data_fs.clone(), swap])
        .map(|((n, segs), img)| (n.to_string(), Some(img), segs))
        .collect();
    let pv = PvFixture::build(dir, vg, P2.1, lvs);

    let root = d.join("partimag");
    let image = root.join("img");
    fs::create_dir_all(&image).unwrap();
    // the table, as sfdisk dumps it and the GPT copies Clonezilla cuts out
    let disk = d.join("table.img");
    fs::File::create(&disk).unwrap().set_len(DISK).unwrap();
    let (s1, s2) = (P1.0 / 512, P2.0 / 512);
    let (e1, e2) = (s1 + P1.1 / 512 - 1, s2 + P2.1 / 512 - 1);
    run(
        "sgdisk",
        &[
            "-Z",
            "-n",
            &format!("1:{s1}:{e1}"),
            "-t",
            "1:8300",
            "-n",
            &format!("2:{s2}:{e2}"),
            "-t",
            "2:8E00",
            s(&disk),
        ],
    );
    crate::clonezilla_fixture::save_gpt_disk(&disk, &image, "sda");
    fs::write(image.join("disk"), "sda\n").unwrap();
    fs::write(image.join("parts"), "sda1 sda2\n").unwrap();
    fs::write(
        image.join("dev-fs.list"),
        format!("# <Device name>   <File system>   <Size>\n/dev/sda1 ext4 16M\n/dev/sda2 LVM2_member 384M\n/dev/mapper/{vg}-root ext4 24M\n/dev/mapper/{vg}-data xfs 320M\n"),
    )
    .unwrap();
    fs::write(
        image.join("clonezilla-img"),
        "This image was saved by Clonezilla\n### Image created time: 2026-1203-1200\n",
    )
    .unwrap();
    // the VG as ocs-sr saves it: vgcfgbackup's text, the PV and LV lists
    let conf = image.join(format!("lvm_{vg}.conf"));
    {
        let lo = run("losetup", &["-f", "--show", "-r", s(&pv.pv)]);
        let lo = Detach(PathBuf::from(String::from_utf8_lossy(&lo.stdout).trim()));
        lvm("vgcfgbackup", &lo.0, &["-q", "-f", s(&conf), vg]);
    }
    let text: String = fs::read_to_string(&conf)
        .unwrap()
        .lines()
        .map(|l| match l.trim_start().starts_with("device = ") {
            true => "\t\t\tdevice = \"/dev/sda2\"\t# Hint only\n".to_string(),
            false => format!("{l}\n"),
        })
        .collect();
    fs::write(&conf, &text).unwrap();
    let pv_id = parse(&text).pv_id;
    fs::write(
        image.join("lvm_vg_dev.list"),
        format!("{vg} /dev/sda2 {pv_id}\n"),
    )
    .unwrap();
    fs::write(
        image.join("lvm_logv.list"),
        format!(
            "/dev/{vg}/root  Linux rev 1.0 ext4 filesystem data, UUID=x, volume name \"root\" (extents) (large files) (huge files)\n\
             /dev/{vg}/data  SGI XFS filesystem data (blksz 4096, inosz 512, v2 dirs)\n\
             /dev/{vg}/swap  Linux swap file, 4k page size, little endian, version 1, size 2047 pages, 0 bad pages, LABEL=lvswap, UUID={swap_uuid}\n"
        ),
    )
    .unwrap();
    partclone(
        "partclone.ext4",
        &root_fs,
        &image,
        &format!("{vg}-root.ext4-ptcl-img"),
    );
    partclone(
        "partclone.xfs",
        &data_fs,
        &image,
        &format!("{vg}-data.xfs-ptcl-img"),
    );
    partclone("partclone.ext4", &boot, &image, "sda1.ext4-ptcl-img");
    fs::write(
        image.join(format!("swappt-{vg}-swap.info")),
        format!("UUID=\"{swap_uuid}\"\nLABEL=\"lvswap\"\n"),
    )
    .unwrap();
    CzLvm {
        pv,
        root,
        image,
        swap_uuid,
    }
}

/// Flips one bit of a used block halfway through the partclone image `zst` (file
/// data, past the metadata a planner reads), recompressed in place.
pub fn flip_lv_byte(zst: &Path) {
    let mut raw = run("zstd", &["-dcq", s(zst)]).stdout;
    // header 110 + bitmap + its CRC, then the blocks, a checksum after every group
    let le = |r: std::ops::Range<usize>| {
        let mut b = [0u8; 8];
        b[..r.len()].copy_from_slice(&raw[r]);
        u64::from_le_bytes(b) as usize
    };
    let (total, used, bs) = (le(60..68), le(76..84), le(84..88));
    let (cs, bpc) = (le(98..100), le(100..104));
    let k = used / 2;
    let at = 110 + total.div_ceil(8) + 4 + k * bs + k / bpc * cs + 77;
    raw[at] ^= 0x04;
    let plain = zst.with_extension("");
    fs::write(&plain, &raw).unwrap();
    run("zstd", &["-q", "-f", "--rm", s(&plain)]);
}

/// Makes the image folder a saveparts one, as `ocs-sr saveparts` writes it: no `disk`
/// and no table files (`sda-*`); `parts` still names sda1 and the PV sda2.
pub fn to_saveparts(image: &Path) {
    for e in fs::read_dir(image).unwrap() {
        let e = e.unwrap();
        let f = e.file_name().to_string_lossy().into_owned();
        if f == "disk" || f.starts_with("sda-") {
            fs::remove_file(e.path()).unwrap();
        }
    }
}

/// (start, size) in bytes of partition `n` of the disk image or device `disk`.
pub fn part(disk: &Path, n: usize) -> (u64, u64) {
    let o = run("sfdisk", &["-J", s(disk)]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &j["partitiontable"]["partitions"][n - 1];
    (
        p["start"].as_u64().unwrap() * 512,
        p["size"].as_u64().unwrap() * 512,
    )
}

/// Compares every file under `files` with the same path under `mounted`.
fn same_tree(files: &Path, mounted: &Path, what: &str) {
    for e in fs::read_dir(files).unwrap() {
        let e = e.unwrap();
        let there = mounted.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            same_tree(&e.path(), &there, what);
        } else {
            assert!(
                fs::read(e.path()).unwrap() == fs::read(&there).unwrap(),
                "{what}: {} differs",
                there.display()
            );
        }
    }
}

impl CzLvm {
    /// Judges the disk restored into the file `target`: sda1's ext4; lvm2 reads the PV
    /// (pvck, vgcfgbackup: the VG and its three LVs); each LV gathered from the extents
    /// lvm2 names (`relaid`: one segment each, else the source's) passes its checker and
    /// holds the fixture's files; the swap LV has its saved UUID and label.
    pub fn check(&self, target: &Path, relaid: bool, what: &str) {
        let d = self.pv.dir.path();
        let boot = d.join("boot.out");
        crate::clonezilla_fixture::dd_range(target, part(target, 1), &boot);
        let o = run_status("e2fsck", &["-fn", s(&boot)]);
        assert!(
            o.status.success(),
            "{what}: sda1: e2fsck -fn:\n{}",
            String::from_utf8_lossy(&o.stdout)
        );
        same_files(&boot, &d.join("files-boot"), "");
        let pv = d.join("pv.out");
        crate::clonezilla_fixture::dd_range(target, part(target, 2), &pv);
        self.check_pv(&pv, relaid, what);
    }

    /// Judges the PV restored into the file `pv` (its first byte the PV's): lvm2 reads
    /// it (pvck, vgcfgbackup: the VG and its three LVs); each LV gathered from the
    /// extents lvm2 names (`relaid`: one segment each, else the source's) passes its
    /// checker and holds the fixture's files; the swap LV has its saved UUID and label.
    pub fn check_pv(&self, pv: &Path, relaid: bool, what: &str) {
        let d = self.pv.dir.path();
        let m = metadata(&self.pv, pv);
        // the same VG and PV as saved: lvm2's ids read back equal the folder's
        let conf = self.image.join(format!("lvm_{}.conf", self.pv.vg));
        let saved = parse(&fs::read_to_string(conf).unwrap());
        assert_eq!(
            (&m.vg_id, &m.pv_id),
            (&saved.vg_id, &saved.pv_id),
            "{what}: the VG or PV id differs from the saved metadata"
        );
        let data_ext = xfs_fixture::SIZE / EXT;
        for (name, src) in layout(data_ext) {
            let lv = m
                .lvs
                .get(name)
                .unwrap_or_else(|| panic!("{what}: LV {name} not in vgcfgbackup's text"));
            let segs = match relaid {
                true => vec![(0, lv.count, vec![lv.first])],
                false => src,
            };
            let out = d.join(format!("{name}.out"));
            gather(pv, &out, &segs);
            match name {
                "root" => {
                    let o = run_status("e2fsck", &["-fn", s(&out)]);
                    assert!(
                        o.status.success(),
                        "{what}: LV root: e2fsck -fn:\n{}",
                        String::from_utf8_lossy(&o.stdout)
                    );
                    same_files(&out, &d.join("files-root"), "");
                }
                "data" => {
                    let o = run_status("xfs_repair", &["-n", s(&out)]);
                    assert!(
                        o.status.success(),
                        "{what}: LV data: xfs_repair -n:\n{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    );
                    let mnt = d.join("mnt-check");
                    let _m = LoopMount::new(&out, &mnt, "ro,norecovery");
                    same_tree(&d.join("files-data"), &mnt, what);
                }
                _ => {
                    let o = run("blkid", &["-p", "-o", "export", s(&out)]);
                    let t = String::from_utf8_lossy(&o.stdout);
                    assert!(
                        t.contains("TYPE=swap")
                            && t.contains(&format!("UUID={}", self.swap_uuid))
                            && t.contains("LABEL=lvswap"),
                        "{what}: LV swap: {t}"
                    );
                }
            }
        }
    }
}
