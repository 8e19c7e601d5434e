//! A filesystem whose primary superblock (ext4) or boot sector (NTFS, FAT32) is
//! unreadable (EIO injected by the fault device) or zeroed is still backed up by its
//! used blocks, read through the backup copy; the loss is said in the backup's output
//! and kept in the manifest; the restore rebuilds the primary from the backup, and
//! the result passes the filesystem's own checker, mounts (ext4, ntfs-3g) or reads
//! (mtools) and holds the same files.

mod common;

use common::{path_str, require_tool, run, run_status, sfdisk_json, sparse, tempdir, Rng};
use ironclone::imaging::meta::partition_meta;
use ironclone::repo::Repository;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1 << 20;
/// The partition starts at 1 MiB.
const PART: u64 = MIB;
const BIN: &str = env!("CARGO_BIN_EXE_ironclone");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fs {
    Ext4,
    Ntfs,
    Fat32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Damage {
    /// Reads of the primary's sector fail with EIO.
    Unreadable,
    /// The primary's sector reads as zeros (FAT32: its FSInfo sector too).
    Zeroed,
}

struct Case {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    disk: PathBuf,
    part_len: u64,
    files: Vec<(String, Vec<u8>)>,
}

fn files(seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    (0..6)
        .map(|i| {
            let len = 1000 + rng.below(2 * MIB) as usize;
            let mut v = vec![0u8; len];
            rng.fill(&mut v);
            (format!("file{i}.bin"), v)
        })
        .collect()
}

/// Unmounts on drop, so a failing assertion never leaves a mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        // The kernel can hold a just-used mount busy for a moment: retry, then
        // detach it lazily rather than leave it behind.
        for _ in 0..20 {
            let ok = Command::new("umount")
                .arg(&self.0)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Mounts `img` (a file holding one filesystem) read-write or read-only.
fn mount(fs: Fs, img: &Path, at: &Path, ro: bool) -> Mounted {
    std::fs::create_dir_all(at).unwrap();
    let opt = if ro { "ro" } else { "rw" };
    match fs {
        Fs::Ext4 => run(
            "mount",
            &["-o", &format!("loop,{opt}"), path_str(img), path_str(at)],
        ),
        Fs::Ntfs => run("ntfs-3g", &["-o", opt, path_str(img), path_str(at)]),
        Fs::Fat32 => unreachable!("the host does not mount vfat; mtools reads it"),
    };
    Mounted(at.to_path_buf())
}

/// A disk image with an MBR and one partition at 1 MiB holding `fs` with files. The
/// files are written after mkfs (ext4: through a mount), so the backup copies are as
/// old as a real filesystem's: their counts and flags are stale.
fn source(fs: Fs) -> Case {
    let dir = tempdir();
    let d = dir.path().to_path_buf();
    let part_len = match fs {
        Fs::Ext4 => 200 * MIB,
        Fs::Ntfs => 64 * MIB,
        Fs::Fat32 => 64 * MIB,
    };
    let part = sparse(&d, "part.img", part_len);
    let files = files(part_len + fs as u64);
    match fs {
        Fs::Ext4 => {
            // 4 KiB blocks: 2 groups, the backup superblock at block 32768.
            run("mkfs.ext4", &["-q", "-F", "-b", "4096", path_str(&part)]);
            let mnt = d.join("mnt");
            let m = mount(fs, &part, &mnt, false);
            std::fs::create_dir_all(mnt.join("sub")).unwrap();
            for (name, data) in &files {
                std::fs::write(mnt.join("sub").join(name), data).unwrap();
            }
            drop(m);
        }
        Fs::Ntfs => {
            run("mkntfs", &["-Q", "-F", "-q", path_str(&part)]);
            for (name, data) in &files {
                let f = d.join(name);
                std::fs::write(&f, data).unwrap();
                run("ntfscp", &["-q", path_str(&part), path_str(&f), name]);
            }
        }
        Fs::Fat32 => {
            run(
                "mkfs.fat",
                &["-F", "32", "-s", "1", "-n", "PRIMLOST", path_str(&part)],
            );
            for (name, data) in &files {
                let f = d.join(name);
                std::fs::write(&f, data).unwrap();
                run(
                    "mcopy",
                    &["-i", path_str(&part), path_str(&f), &format!("::/{name}")],
                );
            }
        }
    }
    let disk = sparse(&d, "disk.img", part_len + 2 * MIB);
    run_in_sfdisk(&disk, part_len, fs);
    run(
        "dd",
        &[
            &format!("if={}", path_str(&part)),
            &format!("of={}", path_str(&disk)),
            "bs=1M",
            "seek=1",
            "conv=notrunc,sparse",
            "status=none",
        ],
    );
    std::fs::remove_file(&part).unwrap();
    Case {
        _dir: dir,
        dir: d,
        disk,
        part_len,
        files,
    }
}

fn run_in_sfdisk(disk: &Path, part_len: u64, fs: Fs) {
    let ty = match fs {
        Fs::Ext4 => "83",
        Fs::Ntfs => "7",
        Fs::Fat32 => "c",
    };
    let script = format!(
        "label: dos\nstart=2048, size={}, type={ty}\n",
        part_len / 512
    );
    common::run_in("sfdisk", &["-q", path_str(disk)], Some(&script));
}

/// The primary's sector, partition-relative.
fn primary_sector(fs: Fs) -> u64 {
    match fs {
        Fs::Ext4 => 1024,
        Fs::Ntfs | Fs::Fat32 => 0,
    }
}

fn ironclone(args: &[&str], env: &[(&str, String)]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ironclone {args:?} failed:\n{text}");
    text
}

/// Damages the primary of a new source and backs it up; checks that the backup says
/// so, records it and copied used blocks only. Returns the source and its repository.
fn backed_up(fs: Fs, damage: Damage) -> (Case, PathBuf) {
    for t in [
        "mkfs.ext4",
        "e2fsck",
        "mkntfs",
        "ntfscp",
        "ntfsfix",
        "ntfs-3g",
    ] {
        require_tool(t);
    }
    for t in ["mkfs.fat", "fsck.fat", "mcopy", "sfdisk"] {
        require_tool(t);
    }
    let c = source(fs);
    let at = PART + primary_sector(fs);
    let mut env = vec![];
    match damage {
        Damage::Unreadable => env.push(("IRONCLONE_FAULTS", format!("eio:{at}+512"))),
        Damage::Zeroed => {
            run(
                "dd",
                &[
                    "if=/dev/zero",
                    &format!("of={}", path_str(&c.disk)),
                    "bs=512",
                    &format!("seek={}", at / 512),
                    if fs == Fs::Fat32 {
                        "count=2"
                    } else {
                        "count=1"
                    },
                    "conv=notrunc",
                    "status=none",
                ],
            );
        }
    }
    let repo = c.dir.join("repo");
    let what = if fs == Fs::Ext4 {
        "primary superblock"
    } else {
        "primary boot sector"
    };

    // The backup: said, recorded, and by used blocks rather than raw.
    let out = ironclone(
        &[
            "backup",
            path_str(&c.disk),
            path_str(&repo),
            "--name",
            "img",
        ],
        &env,
    );
    assert!(out.contains(&format!("{what} (byte")), "{out}");
    assert!(out.contains("is lost"), "{out}");
    assert!(!out.contains("raw ("), "imaged raw:\n{out}");
    let r = Repository::open(&repo).unwrap();
    let m = r.load_manifest("img").unwrap();
    let area = m.areas.iter().find(|a| a.name == "p1").unwrap();
    let meta = partition_meta(&m, area).unwrap();
    assert!(!meta.map.raw, "{:?}", meta.map);
    let lost = meta
        .map
        .primary_lost
        .as_ref()
        .expect("primary_lost in the manifest");
    assert_eq!(lost.offset, primary_sector(fs));
    // ext4: group 1's copy (e2fsck -b 32768); NTFS: the partition's last sector;
    // FAT32: BPB_BkBootSec = 6.
    let backup = match fs {
        Fs::Ext4 => 32768 * 4096,
        Fs::Ntfs => c.part_len - 512,
        Fs::Fat32 => 6 * 512,
    };
    assert_eq!(lost.backup_offset, backup, "{lost:?}");
    let copied: u64 = area.extents.iter().map(|e| e.len).sum();
    assert!(
        copied * 2 < c.part_len,
        "{copied} of {} bytes copied: not a used-block image",
        c.part_len
    );
    // Browsing the image reads through a primary rebuilt in memory from the backup.
    let dir = if fs == Fs::Ext4 { "/sub" } else { "" };
    for (name, data) in &c.files {
        let path = format!("{dir}/{name}");
        let args = ["browse", path_str(&repo), "img", "p1", "cat", &path];
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "browse cat {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == *data, "{fs:?}: browse cat {path} differs");
    }
    (c, repo)
}

/// Restores onto a disk of `size` bytes with `layout`, checks that the primary was
/// rebuilt, and returns the restored partition copied out to a file, and the log.
fn restore(c: &Case, repo: &Path, size: u64, layout: &str) -> (PathBuf, String) {
    let target = sparse(&c.dir, &format!("target-{size}.img"), size);
    let out = ironclone(
        &[
            "restore",
            path_str(repo),
            "img",
            path_str(&target),
            "--yes",
            "--layout",
            layout,
            "--no-repair",
        ],
        &[],
    );
    assert!(out.contains("rebuilt from its backup"), "{out}");
    let p1 = &sfdisk_json(&target)["partitiontable"]["partitions"][0];
    let (start, sectors) = (p1["start"].as_u64().unwrap(), p1["size"].as_u64().unwrap());
    let part = c.dir.join(format!("restored-{size}.img"));
    run(
        "dd",
        &[
            &format!("if={}", path_str(&target)),
            &format!("of={}", path_str(&part)),
            "bs=512",
            &format!("skip={start}"),
            &format!("count={sectors}"),
            "conv=sparse",
            "status=none",
        ],
    );
    std::fs::remove_file(&target).unwrap();
    (part, out)
}

/// The restore onto a same-size disk rebuilds the primary.
fn roundtrip(fs: Fs, damage: Damage) {
    let (c, repo) = backed_up(fs, damage);
    let (part, out) = restore(&c, &repo, c.part_len + 2 * MIB, "keep");
    check(fs, &c, &part, &out);
}

/// The restored filesystem passes its checker and holds the source's files.
fn check(fs: Fs, c: &Case, part: &Path, log: &str) {
    let mnt = c.dir.join(format!(
        "mnt-{}",
        part.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    let dir = match fs {
        Fs::Ext4 => {
            let (ok, out) = run_status("e2fsck", &["-fn", path_str(part)]);
            assert!(ok, "e2fsck -fn after restore:\n{out}\n{log}");
            "sub/"
        }
        Fs::Ntfs => {
            let (ok, out) = run_status("ntfsfix", &["-n", path_str(part)]);
            assert!(ok, "ntfsfix -n after restore:\n{out}\n{log}");
            ""
        }
        Fs::Fat32 => {
            let (ok, out) = run_status("fsck.fat", &["-n", path_str(part)]);
            assert!(ok, "fsck.fat -n after restore:\n{out}\n{log}");
            assert!(!out.contains("differ"), "fsck.fat -n:\n{out}");
            for (name, data) in &c.files {
                let out = Command::new("mcopy")
                    .args(["-n", "-i", path_str(part), &format!("::/{name}"), "-"])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "mcopy {name}");
                assert!(out.stdout == *data, "FAT32 {name} differs after restore");
            }
            return;
        }
    };
    let _m = mount(fs, part, &mnt, true);
    for (name, data) in &c.files {
        let got = std::fs::read(mnt.join(dir).join(name)).unwrap();
        assert!(got == *data, "{fs:?} {name} differs after restore");
    }
}

#[test]
#[ignore = "needs root"]
fn ext4_primary_superblock_unreadable() {
    roundtrip(Fs::Ext4, Damage::Unreadable);
}

#[test]
#[ignore = "needs root"]
fn ext4_primary_superblock_zeroed() {
    roundtrip(Fs::Ext4, Damage::Zeroed);
}

#[test]
fn ntfs_boot_sector_unreadable() {
    roundtrip(Fs::Ntfs, Damage::Unreadable);
}

#[test]
fn ntfs_boot_sector_zeroed() {
    roundtrip(Fs::Ntfs, Damage::Zeroed);
}

#[test]
fn fat32_boot_sector_unreadable() {
    roundtrip(Fs::Fat32, Damage::Unreadable);
}

#[test]
fn fat32_boot_sector_zeroed() {
    roundtrip(Fs::Fat32, Damage::Zeroed);
}

/// Restores onto disks of other sizes: onto a smaller one the primary is rebuilt in
/// the scratch file before the resizer shrinks it there; onto a larger one, on the
/// target before the resizer grows it.
fn resized(fs: Fs, sizes: &[(u64, &str)]) {
    let (c, repo) = backed_up(fs, Damage::Unreadable);
    for &(size, verb) in sizes {
        let (part, out) = restore(&c, &repo, size, "proportional");
        assert!(
            out.contains(&format!("{} {verb} from", fs_name(fs))),
            "{out}"
        );
        check(fs, &c, &part, &out);
        std::fs::remove_file(&part).unwrap();
    }
}

fn fs_name(fs: Fs) -> &'static str {
    match fs {
        Fs::Ext4 => "ext4",
        Fs::Ntfs => "ntfs",
        Fs::Fat32 => "fat32",
    }
}

#[test]
#[ignore = "needs root"]
fn ext4_lost_primary_restored_shrunk_and_grown() {
    resized(Fs::Ext4, &[(130 * MIB, "shrunk"), (300 * MIB, "grown")]);
}

/// Grown only: an NTFS shrunk by the restore fails `ntfsfix -n` ("Checking the
/// alternate boot sector... BAD") whether or not its primary was lost (the staged
/// shrink leaves no backup boot sector in the partition's last sector).
#[test]
#[ignore = "needs root"]
fn ntfs_lost_boot_sector_restored_grown() {
    resized(Fs::Ntfs, &[(100 * MIB, "grown")]);
}
