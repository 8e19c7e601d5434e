//! An LVM2 physical volume in an image file, made by the real tools: `pvcreate` and
//! `vgcreate` on a loop device, the logical volumes added with `vgcfgrestore` from
//! edited metadata (the host has no device-mapper, so `lvcreate` cannot run; lvm2
//! itself writes every byte of the label and metadata), and each LV's filesystem
//! built in a scratch file by mkfs and laid onto the PV's extents the way
//! device-mapper's linear and striped targets lay them out.

#![allow(dead_code)]

pub mod backup;

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MIB: u64 = 1 << 20;
/// Extent size of the fixture VG.
pub const EXT: u64 = 4 * MIB;
/// Where the first extent starts (lvm2's default 1 MiB data alignment).
pub const PE_START: u64 = MIB;
/// Stripe size of the striped LV.
pub const STRIPE: u64 = 64 << 10;

/// Runs `prog args`, panicking with its output when it fails.
pub fn sh(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{prog}: {e} (scripts/setup.sh installs it)"));
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// lvm2 run on one device only, writing no backup or archive under /etc/lvm.
pub fn lvm(cmd: &str, dev: &Path, args: &[&str]) -> String {
    let config = format!(
        "devices {{ filter = [ \"a|^{}$|\", \"r|.*|\" ] }} backup {{ backup = 0 archive = 0 }}",
        dev.display()
    );
    let mut a = vec![cmd, "--config", &config];
    a.extend_from_slice(args);
    sh("lvm", &a)
}

/// A segment: first LV extent, extent count, the PV extent each stripe starts at.
pub type Seg = (u64, u64, Vec<u64>);
/// An LV: its name, its filesystem image (if any) and its segments.
pub type Lv = (String, Option<PathBuf>, Vec<Seg>);

/// A PV made by lvm2 for one test (unique names and UUIDs, so tests running side by
/// side never see each other's VG).
pub struct PvFixture {
    pub dir: tempfile::TempDir,
    pub pv: PathBuf,
    pub vg: String,
    /// Each LV: name, its filesystem image (if any), its segments as (first LV
    /// extent, extent count, PV extents of each stripe).
    pub lvs: Vec<Lv>,
}

/// A 30-character id from `seed`, as lvm2 prints ids (6-4-4-4-4-4-6).
pub fn lvm_id(seed: &str) -> String {
    let h = blake3::hash(seed.as_bytes()).to_hex().to_string();
    let s: String = h.chars().take(32).collect();
    let mut out = String::new();
    let mut pos = 0;
    for (n, w) in [6usize, 4, 4, 4, 4, 4, 6].iter().enumerate() {
        if n > 0 {
            out.push('-');
        }
        out.push_str(&s[pos..pos + w]);
        pos += w;
    }
    out
}

pub fn files_dir(dir: &Path, name: &str, n: usize, seed: u64) -> PathBuf {
    let d = dir.join(format!("files-{name}"));
    std::fs::create_dir_all(d.join("sub")).unwrap();
    for i in 0..n {
        let len = 1000 + (i * 7919 * (seed as usize + 1)) % 300_000;
        let mut v = vec![0u8; len];
        let mut s = seed.wrapping_mul(31).wrapping_add(i as u64) | 1;
        for b in v.iter_mut() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *b = s as u8;
        }
        let p = if i % 3 == 0 { d.join("sub") } else { d.clone() };
        std::fs::write(p.join(format!("f{i}")), v).unwrap();
    }
    d
}

fn mkfs_ext4(dir: &Path, name: &str, size: u64, seed: u64) -> PathBuf {
    let img = dir.join(format!("{name}.fs"));
    let files = files_dir(dir, name, 40, seed);
    std::fs::File::create(&img).unwrap().set_len(size).unwrap();
    sh(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-L",
            name,
            "-d",
            files.to_str().unwrap(),
            img.to_str().unwrap(),
        ],
    );
    img
}

/// Copies `lv_img` onto `pv` through its segments (device-mapper's layout).
pub fn scatter(pv: &Path, lv_img: &Path, segs: &[Seg]) {
    let mut src = std::fs::File::open(lv_img).unwrap();
    let mut dst = OpenOptions::new().write(true).open(pv).unwrap();
    for (first, count, stripes) in segs {
        let n = stripes.len() as u64;
        let (seg_start, seg_len) = (first * EXT, count * EXT);
        let unit = if n == 1 { seg_len } else { STRIPE };
        let mut buf = vec![0u8; unit as usize];
        for k in 0..seg_len / unit {
            let (stripe, row) = (k % n, k / n);
            src.seek(SeekFrom::Start(seg_start + k * unit)).unwrap();
            src.read_exact(&mut buf).unwrap();
            let at = PE_START + stripes[stripe as usize] * EXT + row * unit;
            dst.seek(SeekFrom::Start(at)).unwrap();
            dst.write_all(&buf).unwrap();
        }
    }
}

/// Reads LV `segs` back out of `pv` into `out` (the inverse of `scatter`).
pub fn gather(pv: &Path, out: &Path, segs: &[Seg]) {
    let mut src = std::fs::File::open(pv).unwrap();
    let total: u64 = segs.iter().map(|s| s.1 * EXT).sum();
    let mut dst = std::fs::File::create(out).unwrap();
    dst.set_len(total).unwrap();
    for (first, count, stripes) in segs {
        let n = stripes.len() as u64;
        let (seg_start, seg_len) = (first * EXT, count * EXT);
        let unit = if n == 1 { seg_len } else { STRIPE };
        let mut buf = vec![0u8; unit as usize];
        for k in 0..seg_len / unit {
            let (stripe, row) = (k % n, k / n);
            src.seek(SeekFrom::Start(
                PE_START + stripes[stripe as usize] * EXT + row * unit,
            ))
            .unwrap();
            src.read_exact(&mut buf).unwrap();
            dst.seek(SeekFrom::Start(seg_start + k * unit)).unwrap();
            dst.write_all(&buf).unwrap();
        }
    }
}

fn segment_text(i: usize, first: u64, count: u64, stripes: &[u64]) -> String {
    let list: Vec<String> = stripes.iter().map(|pe| format!("\"pv0\", {pe}")).collect();
    let size = if stripes.len() > 1 {
        format!("stripe_size = {}\n", STRIPE / 512)
    } else {
        String::new()
    };
    format!(
        "segment{} {{\nstart_extent = {first}\nextent_count = {count}\ntype = \"striped\"\nstripe_count = {}\n{size}stripes = [{}]\n}}\n",
        i + 1,
        stripes.len(),
        list.join(", ")
    )
}

impl PvFixture {
    /// A 96 MiB PV (23 extents of 4 MiB) in VG `vg`: "root" ext4 in two segments
    /// laid out of order, "data" ext4 striped over two stripes, "swap", a hidden
    /// "pool_tdata" of random bytes, and free extents between them holding garbage.
    pub fn new(vg: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = mkfs_ext4(dir.path(), "root", 7 * EXT, 1);
        let data = mkfs_ext4(dir.path(), "data", 4 * EXT, 2);
        let swap = dir.path().join("swap.fs");
        std::fs::File::create(&swap)
            .unwrap()
            .set_len(2 * EXT)
            .unwrap();
        sh("mkswap", &["-L", "lvswap", swap.to_str().unwrap()]);
        let tdata = dir.path().join("tdata.fs");
        std::fs::write(
            &tdata,
            (0..EXT).map(|i| (i * 7 % 253) as u8).collect::<Vec<u8>>(),
        )
        .unwrap();
        let lvs: Vec<Lv> = vec![
            (
                "root".into(),
                Some(root),
                vec![(0, 4, vec![8]), (4, 3, vec![1])],
            ),
            ("data".into(), Some(data), vec![(0, 4, vec![13, 16])]),
            ("swap".into(), Some(swap), vec![(0, 2, vec![19])]),
            ("pool_tdata".into(), Some(tdata), vec![(0, 1, vec![21])]),
        ];
        Self::build(dir, vg, 96 * MIB, lvs)
    }

    /// A PV of `len` bytes in VG `vg` holding `lvs` (their images in `dir`); LVs whose
    /// name ends in `_tdata` are hidden, the free extents hold garbage.
    pub fn build(dir: tempfile::TempDir, vg: &str, len: u64, lvs: Vec<Lv>) -> Self {
        let pv = dir.path().join("pv.img");
        // Garbage in the free extents: a map that copied them would be caught.
        let junk: Vec<u8> = (0..MIB).map(|i| (i * 131 % 251) as u8 | 1).collect();
        let mut f = std::fs::File::create(&pv).unwrap();
        for _ in 0..len / MIB {
            f.write_all(&junk).unwrap();
        }
        drop(f);
        let lo = sh("losetup", &["-f", "--show", pv.to_str().unwrap()]);
        let lo = PathBuf::from(lo.trim());
        let detach = Detach(lo.clone());
        let pv_id = lvm_id(&format!("{vg}-pv"));
        lvm(
            "pvcreate",
            &lo,
            &[
                "-q",
                "-ff",
                "-y",
                "--uuid",
                &pv_id,
                "--norestorefile",
                lo.to_str().unwrap(),
            ],
        );
        lvm(
            "vgcreate",
            &lo,
            &["-q", "-s", "4m", vg, lo.to_str().unwrap()],
        );
        let backup = dir.path().join("vg.txt");
        lvm(
            "vgcfgbackup",
            &lo,
            &["-q", "-f", backup.to_str().unwrap(), vg],
        );
        let mut text = String::from("logical_volumes {\n");
        for (name, _, segs) in &lvs {
            let visible = if name.ends_with("_tdata") {
                ""
            } else {
                ", \"VISIBLE\""
            };
            text += &format!(
                "{name} {{\nid = \"{}\"\nstatus = [\"READ\", \"WRITE\"{visible}]\nflags = []\ntags = [\"t-{name}\"]\nsegment_count = {}\n",
                lvm_id(&format!("{vg}-{name}")),
                segs.len()
            );
            for (i, (first, count, stripes)) in segs.iter().enumerate() {
                text += &segment_text(i, *first, *count, stripes);
            }
            text += "}\n";
        }
        text += "}\n";
        let meta = std::fs::read_to_string(&backup).unwrap();
        let end = meta.rfind('}').unwrap();
        let edited = dir.path().join("vg-lvs.txt");
        std::fs::write(&edited, format!("{}{text}{}", &meta[..end], &meta[end..])).unwrap();
        lvm(
            "vgcfgrestore",
            &lo,
            &["-q", "-f", edited.to_str().unwrap(), vg],
        );
        drop(detach);
        for (_, img, segs) in &lvs {
            if let Some(img) = img {
                scatter(&pv, img, segs);
            }
        }
        PvFixture {
            dir,
            pv,
            vg: vg.to_string(),
            lvs,
        }
    }

    pub fn lv(&self, name: &str) -> &Lv {
        self.lvs.iter().find(|l| l.0 == name).unwrap()
    }
}

/// Every file under `files` equals the one in the ext4 image `img` (debugfs cat).
pub fn same_files(img: &Path, files: &Path, sub: &str) {
    for e in std::fs::read_dir(files.join(sub.trim_start_matches('/'))).unwrap() {
        let e = e.unwrap();
        let inside = format!("{sub}/{}", e.file_name().to_string_lossy());
        if e.file_type().unwrap().is_dir() {
            same_files(img, files, &inside);
            continue;
        }
        let out = Command::new("debugfs")
            .args(["-R", &format!("cat {inside}"), img.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(
            out.stdout,
            std::fs::read(e.path()).unwrap(),
            "{inside} in {}",
            img.display()
        );
    }
}

impl PvFixture {
    /// Judges a copy of the PV with independent tools: lvm2's `pvck` and
    /// `vgcfgbackup` read its label and metadata (every LV listed), each ext4 LV read
    /// back through its segments passes `e2fsck -fn` and holds every file, the hidden
    /// LV is byte for byte the same, and the swap LV keeps its header.
    pub fn check_copy(&self, copy: &Path, what: &str) {
        let lo = sh("losetup", &["-f", "--show", "-r", copy.to_str().unwrap()]);
        let lo = Detach(lo.trim().into());
        lvm("pvck", &lo.0, &[lo.0.to_str().unwrap()]);
        let back = self.dir.path().join("back.txt");
        lvm(
            "vgcfgbackup",
            &lo.0,
            &["-q", "-f", back.to_str().unwrap(), &self.vg],
        );
        let text = std::fs::read_to_string(&back).unwrap();
        for (n, ..) in &self.lvs {
            assert!(
                text.contains(&format!("{n} {{")),
                "{what}: LV {n} missing from the metadata"
            );
        }
        drop(lo);
        for name in ["root", "data"] {
            let out = self.dir.path().join(format!("{name}.back"));
            gather(copy, &out, &self.lv(name).2);
            let fsck = Command::new("e2fsck")
                .args(["-fn", out.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                fsck.status.success(),
                "{what}: {name}: e2fsck -fn:\n{}",
                String::from_utf8_lossy(&fsck.stdout)
            );
            same_files(&out, &self.dir.path().join(format!("files-{name}")), "");
        }
        let (_, tdata, segs) = self.lv("pool_tdata");
        let out = self.dir.path().join("tdata.back");
        gather(copy, &out, segs);
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(tdata.as_ref().unwrap()).unwrap(),
            "{what}: the hidden LV"
        );
        let (_, swap, segs) = self.lv("swap");
        let out = self.dir.path().join("swap.back");
        gather(copy, &out, segs);
        assert_eq!(
            std::fs::read(&out).unwrap()[..4096],
            std::fs::read(swap.as_ref().unwrap()).unwrap()[..4096],
            "{what}: the swap header"
        );
    }
}

/// Detaches a loop device when dropped.
pub struct Detach(pub PathBuf);

impl Drop for Detach {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}
