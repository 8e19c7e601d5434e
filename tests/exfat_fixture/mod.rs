//! exFAT fixtures for the used-map and restore tests. The host cannot mount exFAT
//! in the kernel, so files are written through exfat-fuse on a loop device (it
//! wants a block device), and read back the same way, read-only.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn run(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("required tool `{prog}` cannot be run ({e}); scripts/setup.sh"));
    assert!(
        out.status.success(),
        "{prog} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A loop device over an image file, detached when dropped.
pub struct Loop(pub String);

impl Loop {
    pub fn new(img: &Path, sector: u32) -> Self {
        let dev = run(
            "losetup",
            &[
                "-f",
                "--show",
                "-b",
                &sector.to_string(),
                img.to_str().unwrap(),
            ],
        );
        Loop(dev.trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// An exfat-fuse mount run in the foreground (`-d`), so that dropping it can unmount
/// and then wait for the daemon to exit: only then is everything on the image.
pub struct FuseMount {
    pub dir: PathBuf,
    child: Child,
    _dev: Loop,
}

impl FuseMount {
    pub fn new(img: &Path, dir: &Path, sector: u32, read_only: bool) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let dev = Loop::new(img, sector);
        let mut cmd = Command::new("mount.exfat-fuse");
        cmd.arg("-d");
        if read_only {
            cmd.args(["-o", "ro"]);
        }
        let child = cmd
            .arg(&dev.0)
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("mount.exfat-fuse cannot be run ({e}); scripts/setup.sh"));
        let m = FuseMount {
            dir: dir.to_path_buf(),
            child,
            _dev: dev,
        };
        crate::fsfixture::wait_fuse_mount(dir, img, "exfat-fuse");
        m
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// `mkfs.exfat args` on `img` with `sector`-byte logical sectors.
pub fn mkfs(img: &Path, sector: u32, args: &[&str]) {
    let dev = Loop::new(img, sector);
    let mut a: Vec<&str> = args.to_vec();
    a.push(&dev.0);
    run("mkfs.exfat", &a);
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
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

/// The stale file's first sector: written, then deleted, so it must not be copied.
pub fn stale_sector() -> Vec<u8> {
    bytes(777, 512)
}

/// Fills a fresh exFAT: `many` small files in a subdirectory, a file written into
/// the holes left by deleting every other of twenty (fragmented), a deleted file
/// whose data stays in free clusters. `scale` sizes the files (bytes per unit).
/// Returns every file's path (relative) and content.
pub fn fill(
    img: &Path,
    work: &Path,
    sector: u32,
    many: usize,
    scale: usize,
) -> BTreeMap<String, Vec<u8>> {
    let m = FuseMount::new(img, &work.join("mnt-fill"), sector, false);
    let root = &m.dir;
    let mut keep = BTreeMap::new();
    let put = |rel: String, data: Vec<u8>, keep: &mut BTreeMap<String, Vec<u8>>| {
        let p = root.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &data).unwrap();
        keep.insert(rel, data);
    };
    for i in 0..many {
        put(
            format!("many/d{}/f{i}.txt", i % 7),
            bytes(i as u64, 1 + (i * 131) % 3000),
            &mut keep,
        );
    }
    for i in 0..20u64 {
        put(
            format!("frag/f{i}.bin"),
            bytes(100 + i, scale * (1 + i as usize % 3)),
            &mut keep,
        );
    }
    for i in (0..20).step_by(2) {
        let rel = format!("frag/f{i}.bin");
        std::fs::remove_file(root.join(&rel)).unwrap();
        keep.remove(&rel);
    }
    put("frag/big.bin".into(), bytes(99, scale * 12), &mut keep);
    put("empty".into(), Vec::new(), &mut keep);
    let mut stale = stale_sector();
    stale.extend(bytes(778, scale * 4));
    std::fs::write(root.join("stale.bin"), &stale).unwrap();
    drop(stale);
    std::fs::remove_file(root.join("stale.bin")).unwrap();
    drop(m);
    keep
}

/// Checks an exFAT image with `fsck.exfat -n` and returns every file through a
/// read-only exfat-fuse mount.
pub fn check_and_read(img: &Path, work: &Path, sector: u32) -> BTreeMap<String, Vec<u8>> {
    let out = run("fsck.exfat", &["-n", img.to_str().unwrap()]);
    assert!(
        out.contains("clean"),
        "fsck.exfat -n {}:\n{out}",
        img.display()
    );
    let m = FuseMount::new(img, &work.join("mnt-check"), sector, true);
    crate::fsfixture::read_tree(&m.dir)
}
