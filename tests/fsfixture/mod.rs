//! Shared helpers for the used-map integration tests: running the reference tools
//! (a missing tool is a failure, not a skip), deterministic file contents, and the
//! "restore only the extents onto zeros" step that the strong tests rely on, and an
//! ntfs-3g mount that is fully written when dropped.

#![allow(dead_code)]

use ironclone::usedmap::UsedMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `prog args`, panicking with its stderr when it is missing or fails.
pub fn run(prog: &str, args: &[&str]) -> Output {
    let out = run_status(prog, args);
    assert!(
        out.status.success(),
        "{prog} {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Like `run` but returns a failed status instead of panicking on it.
pub fn run_status(prog: &str, args: &[&str]) -> Output {
    Command::new(prog).args(args).output().unwrap_or_else(|e| {
        panic!("required tool `{prog}` cannot be run ({e}); install it (scripts/setup.sh)")
    })
}

/// Deterministic pseudo-random bytes (xorshift64*), so failures reproduce.
pub fn prng_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        v.extend_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(len);
    v
}

pub fn sparse_file(path: &Path, size: u64) {
    File::create(path)
        .and_then(|f| f.set_len(size))
        .expect("create sparse image");
}

/// Writes only `map`'s extents of `src` onto a zeroed file `dst` of the same size.
pub fn restore_extents(src: &Path, dst: &Path, map: &UsedMap) {
    let size = std::fs::metadata(src).expect("stat source").len();
    sparse_file(dst, size);
    let mut s = File::open(src).expect("open source");
    let mut d = OpenOptions::new()
        .write(true)
        .open(dst)
        .expect("open target");
    let mut buf = vec![0u8; 1 << 20];
    for e in &map.extents {
        assert!(e.end() <= size, "extent {e:?} past the image end {size}");
        let mut pos = e.offset;
        while pos < e.end() {
            let n = ((e.end() - pos) as usize).min(buf.len());
            s.seek(SeekFrom::Start(pos)).unwrap();
            s.read_exact(&mut buf[..n]).unwrap();
            d.seek(SeekFrom::Start(pos)).unwrap();
            d.write_all(&buf[..n]).unwrap();
            pos += n as u64;
        }
    }
}

pub fn read_range(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut f = File::open(path).expect("open");
    let mut v = vec![0u8; len];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut v).unwrap();
    v
}

/// What `partclone.<fs> -c` (check, image to /dev/null) prints about `img`, stdout and
/// stderr together. Its log goes next to the image: the default, /var/log/partclone.log,
/// needs root.
pub fn partclone_check(tool: &str, img: &Path) -> String {
    let log = img.with_extension("partclone.log");
    let out = run(
        tool,
        &[
            "-c",
            "-s",
            img.to_str().unwrap(),
            "-O",
            "/dev/null",
            "-L",
            log.to_str().unwrap(),
        ],
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// partclone's "Space in use" in bytes: `N Blocks` × `Block size`.
/// Its log goes next to the image: the default, /var/log/partclone.log, needs root.
pub fn partclone_used(tool: &str, img: &Path) -> u64 {
    let text = partclone_check(tool, img);
    let blocks = text
        .lines()
        .find(|l| l.contains("Space in use:"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no 'Space in use' in {tool} output:\n{text}"));
    let bs = text
        .lines()
        .find(|l| l.contains("Block size:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no 'Block size' in {tool} output:\n{text}"));
    blocks * bs
}

/// True when some 512-aligned sector of `path` equals `sector` (read in 1 MiB chunks).
pub fn has_sector(path: &Path, sector: &[u8]) -> bool {
    let mut f = File::open(path).expect("open");
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            return false;
        }
        if buf[..n].chunks_exact(512).any(|c| c == sector) {
            return true;
        }
    }
}

/// An ntfs-3g FUSE mount run in the foreground (`no_detach`), so that dropping it can
/// unmount and then wait for ntfs-3g to exit: only then is everything written to the
/// image (a plain umount returns before a FUSE daemon has finished flushing).
pub struct Mount(pub PathBuf, std::process::Child);

impl Mount {
    pub fn new(img: &Path, dir: &Path) -> Self {
        Self::with_options(img, dir, "no_detach")
    }

    /// With ntfs-3g options `opts` (a `-o` list that must hold `no_detach`).
    pub fn with_options(img: &Path, dir: &Path, opts: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let child = std::process::Command::new("ntfs-3g")
            .args(["-o", opts])
            .arg(img)
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("required tool `ntfs-3g` cannot be run ({e})"));
        let m = Mount(dir.to_path_buf(), child);
        wait_fuse_mount(dir, img, "ntfs-3g");
        m
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // If the unmount fails (never mounted), stop our own ntfs-3g instead of waiting forever.
        if !run_status("umount", &[self.0.to_str().unwrap()])
            .status
            .success()
        {
            let _ = self.1.kill();
        }
        let _ = self.1.wait();
    }
}

/// The never-used end of every group's inode table, as byte ranges, read from
/// `dumpe2fs` (its "Inode table at A-B" and "N unused inodes" lines), not from our own
/// descriptor decoding. Trimmed to whole allocation units (bigalloc). Empty without
/// group descriptor checksums, where dumpe2fs prints no unused count.
pub fn itable_tails(img: &Path) -> Vec<(u64, u64)> {
    let out = run("dumpe2fs", &[img.to_str().expect("utf-8 path")]);
    let out = String::from_utf8_lossy(&out.stdout);
    let head = |key: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .map_or(0, |v| v.trim().parse().unwrap())
    };
    let (bs, ipg, isz) = (
        head("Block size"),
        head("Inodes per group"),
        head("Inode size"),
    );
    let cs = head("Cluster size").max(bs);
    let mut tails = Vec::new();
    let (mut uninit, mut table) = (false, None);
    for l in out.lines() {
        let l = l.trim();
        if l.starts_with("Group ") {
            uninit = l.contains("INODE_UNINIT");
            table = None;
        } else if let Some(r) = l.strip_prefix("Inode table at ") {
            let r = r.split_whitespace().next().unwrap();
            let (a, b) = r.split_once('-').unwrap();
            table = Some((a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap()));
        } else if let Some(n) = l.strip_suffix(" unused inodes") {
            let unused: u64 = n.rsplit(' ').next().unwrap().parse().unwrap();
            let unused = if uninit { ipg } else { unused };
            let (a, b) = table.expect("inode table line before the counts");
            let first = (a + ((ipg - unused) * isz).div_ceil(bs)) * bs;
            let (s, e) = (first.div_ceil(cs) * cs, (b + 1) * bs / cs * cs);
            if e > s {
                tails.push((s, e));
            }
        }
    }
    tails
}

/// Every regular file under `dir`, relative path to content.
pub fn read_tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_str().unwrap().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Waits (10 s at most) until a FUSE filesystem is mounted on `dir`: a FUSE daemon
/// returns before the kernel lists the mount.
pub fn wait_fuse_mount(dir: &Path, img: &Path, tool: &str) {
    let want = format!(" {} ", dir.display());
    for _ in 0..200 {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        if info
            .lines()
            .any(|l| l.contains(&want) && l.contains(" - fuse"))
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{tool} did not mount {} within 10 s", img.display());
}
