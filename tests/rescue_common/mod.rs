//! Shared by the rescue end-to-end tests: a disk image whose ext4 partition has a
//! known file and inode-table block to damage, the CLI runner, loop devices.

#![allow(dead_code)] // each test crate uses a different subset

use ironclone::device::{open_path, Access, BlockDevice};
use ironclone::rescue::{Fault, FaultKind};
use ironclone::usedmap::ByteExtent;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MIB: u64 = 1 << 20;
/// The partition starts at 1 MiB; it holds a 32 MiB ext4 with 4 KiB blocks.
pub const PART: u64 = MIB;

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (install e2fsprogs/util-linux): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub dir: PathBuf,
    pub disk: PathBuf,
    /// Partition-relative byte ranges: one on /sub/dir/deep.bin, one on a block of
    /// group 0's inode table that holds only freed inodes (the never-used end of the
    /// table is not read by a backup, so damage there would never be seen).
    pub file_bad: ByteExtent,
    pub itable_bad: ByteExtent,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let tree = d.join("tree");
    std::fs::create_dir_all(tree.join("sub/dir")).unwrap();
    std::fs::write(tree.join("a.txt"), b"hello").unwrap();
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8 + 1).collect();
    std::fs::write(tree.join("sub/dir/deep.bin"), &big).unwrap();
    // Files whose inodes fill whole inode-table blocks; one such block is emptied
    // below, so that the damaged table block is one a backup reads (under the
    // never-used mark, bg_itable_unused) yet holds no file.
    std::fs::create_dir_all(tree.join("pad")).unwrap();
    for i in 0..80 {
        std::fs::write(tree.join(format!("pad/p{i:02}")), b"").unwrap();
    }
    let fs = d.join("fs.img");
    std::fs::File::create(&fs)
        .unwrap()
        .set_len(32 * MIB)
        .unwrap();
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-d"])
        .arg(&tree)
        .arg(&fs));
    // Independent tools say where things are.
    let blocks: Vec<u64> = run(Command::new("debugfs")
        .arg("-R")
        .arg("blocks /sub/dir/deep.bin")
        .arg(&fs))
    .split_whitespace()
    .map(|w| w.parse().unwrap())
    .collect();
    assert!(blocks.len() > 100, "{blocks:?}");
    let dump = run(Command::new("dumpe2fs").arg(&fs));
    let field = |key: &str| -> u64 {
        dump.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|r| r.trim().split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("dumpe2fs prints no {key}"))
    };
    let itable_first = field("Inode table at ");
    let per_block = 4096 / field("Inode size:");
    let ever_used = field("Inodes per group:")
        - dump
            .lines()
            .find_map(|l| l.trim().split(", ").last()?.strip_suffix(" unused inodes"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .expect("dumpe2fs prints group 0's unused inodes");
    // The pad files' inode numbers (debugfs "ls -l": inode first), and the last table
    // block below the mark whose inodes are all pad files: they are deleted.
    let pads: Vec<(u64, String)> =
        run(Command::new("debugfs").arg("-R").arg("ls -l /pad").arg(&fs))
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let name = w.last()?;
                name.starts_with('p')
                    .then(|| Some((w.first()?.parse().ok()?, name.to_string())))?
            })
            .collect();
    let block = (0..ever_used / per_block)
        .rev()
        .find(|k| (k * per_block + 1..=(k + 1) * per_block).all(|i| pads.iter().any(|p| p.0 == i)))
        .expect("a table block of pad files only");
    let cmds: String = pads
        .iter()
        .filter(|p| (p.0 - 1) / per_block == block)
        .map(|p| format!("rm /pad/{}\n", p.1))
        .collect();
    let cmd_file = d.join("debugfs.cmds");
    std::fs::write(&cmd_file, cmds).unwrap();
    run(Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&cmd_file)
        .arg(&fs));
    let itable_hit = itable_first + block;
    let disk = d.join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(48 * MIB)
        .unwrap();
    let mut sf = Command::new("sfdisk");
    sf.arg("-q").arg(&disk).stdin(std::process::Stdio::piped());
    let mut child = sf.spawn().expect("sfdisk (util-linux) is required");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\nstart=2048, size=65536, type=83\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    run(Command::new("dd")
        .arg(format!("if={}", fs.display()))
        .arg(format!("of={}", disk.display()))
        .args(["bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]));
    Fixture {
        _dir: dir,
        dir: d,
        disk,
        // 3 sectors inside block 40 of the file, then a whole inode-table block.
        file_bad: ByteExtent {
            offset: blocks[40] * 4096 + 1024,
            len: 1536,
        },
        itable_bad: ByteExtent {
            offset: itable_hit * 4096,
            len: 4096,
        },
    }
}

pub fn sha(path: &Path) -> String {
    run(Command::new("sha256sum").arg(path))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

pub fn faults(f: &Fixture) -> Vec<Fault> {
    let mut v = vec![f.itable_bad, f.file_bad];
    v.sort();
    v.into_iter()
        .map(|e| Fault {
            offset: PART + e.offset,
            len: e.len,
            kind: FaultKind::Eio,
        })
        .collect()
}

pub fn ironclone(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ironclone"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

pub fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn read_at(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    let dev = open_path(path, Access::ReadOnly).unwrap();
    dev.read_vec(offset, len as usize).unwrap()
}

/// Detaches the loop device this test attached (and only that one).
pub struct Loop(pub PathBuf);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("partx")
            .arg("-d")
            .arg(&self.0)
            .stderr(std::process::Stdio::null())
            .status();
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

pub fn attach(file: &Path, partitions: bool) -> Loop {
    let dev = run(Command::new("losetup").args(["-f", "--show"]).arg(file))
        .trim()
        .to_string();
    let lo = Loop(PathBuf::from(dev));
    if partitions {
        run(Command::new("partx").arg("-u").arg(&lo.0));
    }
    lo
}

/// A loop device over `file` with `sector`-byte logical sectors (a 4Kn disk).
pub fn attach_with_sector_size(file: &Path, sector: u64) -> Loop {
    let dev = run(Command::new("losetup")
        .args(["-f", "--show", "--sector-size", &sector.to_string()])
        .arg(file))
    .trim()
    .to_string();
    Loop(PathBuf::from(dev))
}

pub fn getro(dev: &Path) -> String {
    run(Command::new("blockdev").arg("--getro").arg(dev))
        .trim()
        .to_string()
}
