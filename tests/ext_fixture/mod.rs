//! Helpers of the ext used-map tests (`usedmap_ext`, `usedmap_ext_itable`): running
//! e2fsprogs, a tree of random files, a sparse image, dumpe2fs fields, the map of a file.

#![allow(dead_code)] // each test crate uses a different subset

use crate::fsfixture::itable_tails;
use ironclone::device::{open_path, Access, BlockDevice};
use ironclone::usedmap::{map_ext, UsedMap};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::process::Command;

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (is e2fsprogs installed?): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deterministic pseudo-random bytes (xorshift), so file content is not compressible.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A source tree of files with random content; returns name → content hash.
pub fn make_tree(dir: &Path, seed: u64) -> BTreeMap<String, blake3::Hash> {
    let mut m = BTreeMap::new();
    fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    let sizes = [0usize, 1, 1000, 4096, 70_000, 1 << 20, 3 << 20, 5_000_001];
    for (i, &sz) in sizes.iter().enumerate() {
        let rel = match i % 3 {
            0 => format!("f{i}"),
            1 => format!("sub/f{i}"),
            _ => format!("sub/deeper/f{i}"),
        };
        let data = random_bytes(seed * 1000 + i as u64, sz);
        File::create(dir.join(&rel))
            .unwrap()
            .write_all(&data)
            .unwrap();
        m.insert(rel, blake3::hash(&data));
    }
    m
}

pub fn sparse(path: &Path, size: u64) {
    File::create(path).unwrap().set_len(size).unwrap();
}

pub fn dumpe2fs_field(img: &Path, key: &str) -> u64 {
    let out = run(Command::new("dumpe2fs").arg("-h").arg(img));
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("dumpe2fs has no {key}"))
        .trim()
        .parse()
        .unwrap()
}

pub fn map_file(img: &Path) -> UsedMap {
    let dev = open_path(img, Access::ReadOnly).unwrap();
    map_ext(&dev).unwrap()
}

/// Copies only the map's extents onto a zeroed sparse file of the same size.
pub fn restore_only_used(img: &Path, map: &UsedMap, out: &Path) {
    let src = open_path(img, Access::ReadOnly).unwrap();
    sparse(out, src.size());
    let dst = open_path(out, Access::ReadWrite).unwrap();
    let mut buf = vec![0u8; 4 << 20];
    for e in &map.extents {
        let mut off = e.offset;
        while off < e.end() {
            let n = ((e.end() - off) as usize).min(buf.len());
            src.read_at(off, &mut buf[..n]).unwrap();
            dst.write_at(off, &buf[..n]).unwrap();
            off += n as u64;
        }
    }
    dst.flush().unwrap();
}

/// Bytes of `map`'s extents that fall inside `tails`.
pub fn overlap(map: &UsedMap, tails: &[(u64, u64)]) -> u64 {
    let mut n = 0;
    for e in &map.extents {
        for &(s, t) in tails {
            n += e.end().min(t).saturating_sub(e.offset.max(s));
        }
    }
    n
}

pub fn check_counts(img: &Path, map: &UsedMap) {
    let bc = dumpe2fs_field(img, "Block count");
    let fb = dumpe2fs_field(img, "Free blocks");
    let bs = dumpe2fs_field(img, "Block size");
    assert_eq!(map.used_bytes, (bc - fb) * bs, "used bytes vs dumpe2fs");
    assert_eq!(map.total_bytes, bc * bs);
    assert!(
        map.warnings.is_empty(),
        "warnings on a clean fs: {:?}",
        map.warnings
    );
    // Everything used is copied except the never-used inode-table tails, and none of
    // those is read.
    let tails = itable_tails(img);
    let tail_bytes: u64 = tails.iter().map(|&(s, e)| e - s).sum();
    assert_eq!(
        overlap(map, &tails),
        0,
        "an unused inode-table tail is copied"
    );
    assert!(map.copy_bytes() >= map.used_bytes.min(map.total_bytes) - tail_bytes - bs);
}

/// partclone's own count ("Space in use: ... = N Blocks", "Block size: B Byte"), as an
/// independent second opinion from a different implementation. Its log goes next to the
/// image: the default, /var/log/partclone.log, needs root.
pub fn partclone_used_bytes(img: &Path) -> u64 {
    let out = Command::new("partclone.extfs")
        .args(["-c", "-s"])
        .arg(img)
        .args(["-O", "/dev/null", "-L"])
        .arg(img.with_extension("partclone.log"))
        .output()
        .expect("partclone.extfs missing (make setup installs partclone)");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "partclone.extfs failed: {text}");
    let num_before = |line_key: &str, unit: &str| -> u64 {
        let l = text
            .lines()
            .find(|l| l.contains(line_key))
            .unwrap_or_else(|| panic!("partclone printed no {line_key}: {text}"));
        let tail = l.split(line_key).nth(1).unwrap_or("");
        let tail = tail.rsplit('=').next().unwrap_or(tail);
        tail.split_whitespace()
            .take_while(|w| *w != unit)
            .filter_map(|w| w.parse().ok())
            .last()
            .unwrap_or_else(|| panic!("cannot parse {line_key} in: {l}"))
    };
    num_before("Space in use:", "Blocks") * num_before("Block size:", "Byte")
}

pub fn check_restore(
    img: &Path,
    map: &UsedMap,
    files: &BTreeMap<String, blake3::Hash>,
    tmp: &Path,
) {
    let out = tmp.join("restored.img");
    restore_only_used(img, map, &out);
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "e2fsck -fn on the used-only copy: {}\n{}{}",
        fsck.status,
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    for (rel, want) in files {
        let dumped = tmp.join("dumped");
        let _ = fs::remove_file(&dumped);
        run(Command::new("debugfs")
            .arg("-R")
            .arg(format!("dump /{rel} {}", dumped.display()))
            .arg(&out));
        let got = blake3::hash(&fs::read(&dumped).unwrap());
        assert_eq!(&got, want, "content of /{rel} after used-only restore");
    }
    fs::remove_file(&out).unwrap();
}
