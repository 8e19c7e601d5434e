//! The source disks of the restore proof (GPT or MBR with a logical partition,
//! ext4 and NTFS holding files with known contents), the binary runner, and the
//! independent checks a restored filesystem must pass.
// Each test file uses a different part of the fixture.
#![allow(dead_code)]

use crate::common::{path_str, require_tool, run, run_status, sfdisk_json, Rng};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MIB: u64 = 1 << 20;
pub const BIN: &str = env!("CARGO_BIN_EXE_ironclone");
pub const NTFS_TYPE: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fs {
    Ext4,
    Ntfs,
}

/// What went into one filesystem of the source: its partition number and files.
pub struct FsSpec {
    pub number: u32,
    pub fs: Fs,
    pub files: Vec<(String, Vec<u8>)>,
}

pub struct Source {
    pub _dir: tempfile::TempDir,
    pub dir: PathBuf,
    pub disk: PathBuf,
    pub repo: PathBuf,
    pub size: u64,
    pub gpt: bool,
    pub fss: Vec<FsSpec>,
}

pub fn files(seed: u64, n: usize) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let len = 4096 + rng.below(3 * MIB) as usize;
            let mut v = vec![0u8; len];
            rng.fill(&mut v);
            (format!("file{i}.bin"), v)
        })
        .collect()
}

pub fn dd_in(disk: &Path, part_img: &Path, offset: u64) {
    run(
        "dd",
        &[
            &format!("if={}", path_str(part_img)),
            &format!("of={}", path_str(disk)),
            "bs=1M",
            "oflag=seek_bytes",
            &format!("seek={offset}"),
            "conv=notrunc,sparse",
            "status=none",
        ],
    );
}

pub fn dd_out(disk: &Path, out: &Path, offset: u64, len: u64) {
    let _ = std::fs::remove_file(out);
    run(
        "dd",
        &[
            &format!("if={}", path_str(disk)),
            &format!("of={}", path_str(out)),
            "bs=1M",
            "iflag=skip_bytes,count_bytes",
            &format!("skip={offset}"),
            &format!("count={len}"),
            "conv=sparse",
            "status=none",
        ],
    );
}

/// (number, start bytes, size bytes) of every non-extended partition, from sfdisk.
pub fn parts(disk: &Path) -> Vec<(u32, u64, u64, serde_json::Value)> {
    let j = sfdisk_json(disk);
    let t = &j["partitiontable"];
    let ss = t["sectorsize"].as_u64().unwrap_or(512);
    t["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let num: u32 = node
                .rsplit(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap();
            (
                num,
                p["start"].as_u64().unwrap() * ss,
                p["size"].as_u64().unwrap() * ss,
                p.clone(),
            )
        })
        .collect()
}

pub fn part(disk: &Path, n: u32) -> (u64, u64) {
    parts(disk)
        .into_iter()
        .find(|p| p.0 == n)
        .map(|p| (p.1, p.2))
        .unwrap_or_else(|| panic!("no partition {n} on {}", disk.display()))
}

/// Builds the source disk: GPT (p1 ext4, p2 NTFS) or MBR (p1 ext4, p2 extended
/// holding p5 NTFS and p6 ext4), 160 MiB, and backs it up into `repo`.
pub fn source(gpt: bool) -> Source {
    source_with(gpt, false)
}

/// The same disk with its last partition filling it to the last usable sector, as
/// partitioners lay it out by default (`sgdisk -n 2:0:0`, fdisk's default end).
pub fn source_filled(gpt: bool) -> Source {
    source_with(gpt, true)
}

fn source_with(gpt: bool, fill: bool) -> Source {
    for t in [
        "sfdisk",
        "sgdisk",
        "mkfs.ext4",
        "mkntfs",
        "ntfscp",
        "ntfscat",
        "debugfs",
        "dumpe2fs",
        "e2fsck",
        "ntfsfix",
        "ntfsresize",
        "dd",
    ] {
        require_tool(t);
    }
    let td = crate::common::tempdir();
    let dir = td.path().to_path_buf();
    let disk = dir.join("src.img");
    let size = 160 * MIB;
    let f = std::fs::File::create(&disk).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    let script = match (gpt, fill) {
        (true, false) => format!("label: gpt\n,70M,L\n,80M,{NTFS_TYPE}\n"),
        (true, true) => "label: gpt\n,70M,L\n".to_string(),
        (false, _) => "label: dos\n,60M,83\n,,E\n,50M,7\n,,83\n".to_string(),
    };
    crate::common::run_in("sfdisk", &["-q", path_str(&disk)], Some(&script));
    if gpt && fill {
        // sgdisk's default end is the last usable LBA, off the MiB grid.
        run("sgdisk", &["-n", "2:0:0", "-t", "2:0700", path_str(&disk)]);
    }
    let fss = if gpt {
        vec![
            FsSpec {
                number: 1,
                fs: Fs::Ext4,
                files: files(1, 6),
            },
            FsSpec {
                number: 2,
                fs: Fs::Ntfs,
                files: files(2, 5),
            },
        ]
    } else {
        vec![
            FsSpec {
                number: 1,
                fs: Fs::Ext4,
                files: files(3, 5),
            },
            FsSpec {
                number: 5,
                fs: Fs::Ntfs,
                files: files(4, 4),
            },
            FsSpec {
                number: 6,
                fs: Fs::Ext4,
                files: files(5, 3),
            },
        ]
    };
    for s in &fss {
        let (start, len) = part(&disk, s.number);
        let img = dir.join(format!("p{}.img", s.number));
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(len).unwrap();
        drop(f);
        let content = dir.join(format!("content{}", s.number));
        std::fs::create_dir_all(&content).unwrap();
        for (name, data) in &s.files {
            std::fs::write(content.join(name), data).unwrap();
        }
        match s.fs {
            Fs::Ext4 => {
                run(
                    "mkfs.ext4",
                    &["-q", "-F", "-d", path_str(&content), path_str(&img)],
                );
            }
            Fs::Ntfs => {
                let hidden = (start / 512).to_string();
                run("mkntfs", &["-q", "-F", "-Q", "-p", &hidden, path_str(&img)]);
                for (name, _) in &s.files {
                    let src = content.join(name);
                    run("ntfscp", &["-q", path_str(&img), path_str(&src), name]);
                }
            }
        }
        dd_in(&disk, &img, start);
        std::fs::remove_file(&img).unwrap();
        std::fs::remove_dir_all(&content).unwrap();
    }
    let repo = dir.join("repo");
    let (ok, out) = ironclone(&["backup", path_str(&disk), path_str(&repo), "--name", "img"]);
    assert!(ok, "backup failed:\n{out}");
    Source {
        _dir: td,
        dir,
        disk,
        repo,
        size,
        gpt,
        fss,
    }
}

/// An ext4 with 4 KiB blocks holding `fs.files`, made with `mkfs.ext4 -d` in a scratch
/// image in `dir` and copied into partition `fs.number` of `disk`.
pub fn ext4_4k_into(disk: &Path, dir: &Path, fs: &FsSpec) {
    ext4_made_into(disk, dir, fs, &["-b", "4096"]);
}

/// Partition `fs.number` of `disk` made an ext4 (mkfs.ext4's defaults for its size)
/// holding `fs.files`.
pub fn ext4_into(disk: &Path, dir: &Path, fs: &FsSpec) {
    ext4_made_into(disk, dir, fs, &[]);
}

fn ext4_made_into(disk: &Path, dir: &Path, fs: &FsSpec, mkfs_args: &[&str]) {
    let (start, len) = part(disk, fs.number);
    let img = dir.join(format!("p{}-ext4.img", fs.number));
    std::fs::File::create(&img).unwrap().set_len(len).unwrap();
    let content = dir.join(format!("content-p{}", fs.number));
    std::fs::create_dir_all(&content).unwrap();
    for (name, data) in &fs.files {
        std::fs::write(content.join(name), data).unwrap();
    }
    let mut args = vec!["-q", "-F"];
    args.extend_from_slice(mkfs_args);
    args.extend_from_slice(&["-d", path_str(&content), path_str(&img)]);
    run("mkfs.ext4", &args);
    dd_in(disk, &img, start);
    std::fs::remove_file(&img).unwrap();
    std::fs::remove_dir_all(&content).unwrap();
}

/// GPT type of an LVM2 PV partition.
pub const LINUX_LVM: &str = "E6D6D379-F507-44C2-A23C-238F2A3DF928";

/// A 160 MiB GPT disk: p1 a 40 MiB ext4 holding files, p2 the 96 MiB PV image `pv`
/// (tests/lvm_fixture), backed up into `repo` as "img"; the backup's output too.
pub fn pv_disk_source(pv: &Path) -> (Source, String) {
    let td = crate::common::tempdir();
    let dir = td.path().to_path_buf();
    let disk = dir.join("src.img");
    let size = 160 * MIB;
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    let script = format!("label: gpt\n,40M,L\n,96M,{LINUX_LVM}\n");
    crate::common::run_in("sfdisk", &["-q", path_str(&disk)], Some(&script));
    let ext = FsSpec {
        number: 1,
        fs: Fs::Ext4,
        files: files(31, 3),
    };
    ext4_into(&disk, &dir, &ext);
    let (start, len) = part(&disk, 2);
    assert_eq!(
        len,
        std::fs::metadata(pv).unwrap().len(),
        "the PV's partition"
    );
    dd_in(&disk, pv, start);
    let repo = dir.join("repo");
    let (ok, log) = ironclone(&["backup", path_str(&disk), path_str(&repo), "--name", "img"]);
    assert!(ok, "backup failed:\n{log}");
    let s = Source {
        _dir: td,
        dir,
        disk,
        repo,
        size,
        gpt: true,
        fss: vec![ext],
    };
    (s, log)
}

pub fn ironclone(args: &[&str]) -> (bool, String) {
    run_status(BIN, args)
}

impl Source {
    /// A target file of `size` bytes (rounded down to 1 MiB), with a recognisable
    /// pattern at both ends so "untouched" can be checked.
    pub fn target(&self, name: &str, size: u64) -> PathBuf {
        let t = self.dir.join(name);
        let size = size / MIB * MIB;
        let f = std::fs::File::create(&t).unwrap();
        f.set_len(size).unwrap();
        let mut pat = vec![0u8; MIB as usize];
        Rng::new(size).fill(&mut pat);
        use std::os::unix::fs::FileExt;
        f.write_all_at(&pat, 0).unwrap();
        f.write_all_at(&pat, size - MIB).unwrap();
        t
    }

    /// GPT restores stage shrinks in an explicit --scratch; MBR ones use the default
    /// (`<repo>/tmp`), which must be left without staged files.
    pub fn restore(&self, target: &Path, extra: &[&str]) -> (bool, String) {
        let scratch = self.dir.join("scratch");
        let mut a = vec![
            "restore",
            path_str(&self.repo),
            "img",
            path_str(target),
            "--yes",
            "--no-nvram",
        ];
        if self.gpt {
            a.extend_from_slice(&["--scratch", path_str(&scratch)]);
        }
        a.extend_from_slice(extra);
        let r = ironclone(&a);
        for d in [scratch, self.repo.join("tmp")] {
            let left: Vec<_> = std::fs::read_dir(&d)
                .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            assert!(
                left.is_empty(),
                "staged files left in {}: {left:?}\n{}",
                d.display(),
                r.1
            );
        }
        r
    }

    pub fn restore_ok(&self, target: &Path, extra: &[&str]) -> String {
        let (ok, out) = self.restore(target, extra);
        assert!(
            ok,
            "restore {extra:?} onto {} failed:\n{out}",
            target.display()
        );
        out
    }

    /// Every check of a restored disk; `same_ids`: identifiers must equal the source's.
    pub fn check(&self, target: &Path, same_ids: bool, log: &str) {
        let tsize = std::fs::metadata(target).unwrap().len();
        if self.gpt {
            let v = run("sgdisk", &["-v", path_str(target)]);
            assert!(
                v.contains("No problems found"),
                "sgdisk -v on {}:\n{v}\n{log}",
                target.display()
            );
            // The backup header must sit at the last LBA and say so (MyLBA, offset 24).
            use std::os::unix::fs::FileExt;
            let mut hdr = [0u8; 512];
            let f = std::fs::File::open(target).unwrap();
            f.read_exact_at(&mut hdr, tsize - 512).unwrap();
            assert_eq!(
                &hdr[..8],
                b"EFI PART",
                "no backup GPT header at the last LBA\n{log}"
            );
            let my_lba = u64::from_le_bytes(hdr[24..32].try_into().unwrap());
            assert_eq!(my_lba, tsize / 512 - 1, "backup header MyLBA");
        } else {
            run("sfdisk", &["--verify", path_str(target)]);
        }
        let src = sfdisk_json(&self.disk);
        let dst = sfdisk_json(target);
        let (s, d) = (&src["partitiontable"], &dst["partitiontable"]);
        if same_ids {
            assert_eq!(s["id"], d["id"], "disk id changed\n{log}");
        } else {
            assert_ne!(s["id"], d["id"], "--new-ids kept the disk id\n{log}");
        }
        let sp = parts(&self.disk);
        let dp = parts(target);
        assert_eq!(sp.len(), dp.len(), "partition count\n{log}");
        for (a, b) in sp.iter().zip(&dp) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.3["type"], b.3["type"], "partition {} type", a.0);
            if self.gpt {
                if same_ids {
                    assert_eq!(a.3["uuid"], b.3["uuid"], "partition {} GUID\n{log}", a.0);
                } else {
                    assert_ne!(
                        a.3["uuid"], b.3["uuid"],
                        "partition {} GUID kept by --new-ids",
                        a.0
                    );
                }
            }
        }
        for fs in &self.fss {
            let (sstart, slen) = part(&self.disk, fs.number);
            let (start, len) = part(target, fs.number);
            let src_img = self.dir.join(format!("chk-src-{}.img", fs.number));
            let img = self.dir.join(format!("chk-{}.img", fs.number));
            dd_out(&self.disk, &src_img, sstart, slen);
            dd_out(target, &img, start, len);
            match fs.fs {
                Fs::Ext4 => check_ext4(&src_img, &img, len, fs, log),
                Fs::Ntfs => check_ntfs(&src_img, &img, start, len, fs, log),
            }
            let _ = std::fs::remove_file(&img);
            let _ = std::fs::remove_file(&src_img);
        }
    }
}

pub fn dumpe2fs_field(img: &Path, field: &str) -> String {
    let out = run("dumpe2fs", &["-h", path_str(img)]);
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("dumpe2fs: no {field}"))
        .trim()
        .to_string()
}

pub fn check_ext4(src_img: &Path, img: &Path, part_len: u64, fs: &FsSpec, log: &str) {
    let (ok, out) = run_status("e2fsck", &["-fn", path_str(img)]);
    assert!(ok, "e2fsck -fn on partition {}:\n{out}\n{log}", fs.number);
    let bs: u64 = dumpe2fs_field(img, "Block size").parse().unwrap();
    let blocks: u64 = dumpe2fs_field(img, "Block count").parse().unwrap();
    let bpg: u64 = dumpe2fs_field(img, "Blocks per group").parse().unwrap();
    let fs_bytes = blocks * bs;
    assert!(
        fs_bytes <= part_len && part_len - fs_bytes < bpg * bs,
        "ext4 p{}: {fs_bytes} bytes does not fill its {part_len}-byte partition (group {} bytes)\n{log}",
        fs.number,
        bpg * bs
    );
    assert_eq!(
        dumpe2fs_field(src_img, "Filesystem UUID"),
        dumpe2fs_field(img, "Filesystem UUID"),
        "ext4 p{} UUID",
        fs.number
    );
    let dir = img.with_extension("d");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in &fs.files {
        let out = dir.join(name);
        run(
            "debugfs",
            &[
                "-R",
                &format!("dump /{name} {}", path_str(&out)),
                path_str(img),
            ],
        );
        let got = std::fs::read(&out).unwrap_or_default();
        assert!(
            got == *data,
            "ext4 p{} file {name} differs after restore",
            fs.number
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

pub fn check_ntfs(src_img: &Path, img: &Path, start: u64, part_len: u64, fs: &FsSpec, log: &str) {
    let (ok, out) = run_status("ntfsfix", &["-n", path_str(img)]);
    assert!(ok, "ntfsfix -n on partition {}:\n{out}\n{log}", fs.number);
    let (ok, out) = run_status(
        "ntfsresize",
        &["--info", "--force", "--no-progress-bar", path_str(img)],
    );
    assert!(
        ok,
        "ntfsresize --info on partition {}:\n{out}\n{log}",
        fs.number
    );
    let b = std::fs::read(img).unwrap();
    let sb = std::fs::read(src_img).unwrap();
    assert_eq!(&b[3..7], b"NTFS");
    let total = u64::from_le_bytes(b[0x28..0x30].try_into().unwrap());
    let cluster = u64::from(u16::from_le_bytes([b[0x0b], b[0x0c]])) * u64::from(b[0x0d]);
    let part_sectors = part_len / 512;
    assert!(
        total < part_sectors && (part_sectors - total) * 512 <= cluster + 512,
        "NTFS p{}: total sectors {total} does not fill its partition of {part_sectors} sectors\n{log}",
        fs.number
    );
    let hidden = u32::from_le_bytes(b[0x1c..0x20].try_into().unwrap());
    assert_eq!(
        u64::from(hidden),
        start / 512,
        "NTFS p{} hidden sectors",
        fs.number
    );
    // The backup boot sector sits in the partition's last sector.
    let last = b.len() - 512;
    assert_eq!(
        &b[last..last + 512],
        &b[..512],
        "NTFS p{}: backup boot sector",
        fs.number
    );
    assert_eq!(
        &b[0x48..0x50],
        &sb[0x48..0x50],
        "NTFS p{} volume serial",
        fs.number
    );
    for (name, data) in &fs.files {
        let out = Command::new("ntfscat").arg(img).arg(name).output().unwrap();
        assert!(
            out.status.success(),
            "ntfscat {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout == *data,
            "NTFS p{} file {name} differs after restore",
            fs.number
        );
    }
}
