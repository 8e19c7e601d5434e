//! `ironclone browse /home/partimag IMAGE PART ls|cat|get` on a Clonezilla folder
//! made by Debian's partclone (tests/clonezilla_fixture): files come back byte for
//! byte from the ext4 (gzip) and FAT (zstd) partitions; the partition is unpacked
//! once and later calls read the cache; a damaged or replaced image is never served
//! from an old unpack and leaves nothing in the cache; the folder is not written.

mod clonezilla_fixture;
mod fsfixture;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `ironclone browse ROOT img AREA ARGS... --cache CACHE`: (ok, stdout, stderr).
fn browse(root: &Path, cache: &Path, area: &str, args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(["browse", s(root), "img", area])
        .args(args)
        .args(["--cache", s(cache)])
        .output()
        .unwrap();
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file under `dir` with its size and modification time.
fn listing(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (e.path(), m.len(), m.modified().unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn partitions_are_browsed_from_a_one_time_unpack() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 3, false);
    let tree = d.path().join("img-tree");
    let cache = d.path().join("cache");
    let before = listing(&fx.image);

    let (ok, out, err) = browse(&fx.root, &cache, "p2", &["ls", "/"]);
    assert!(ok, "{err}");
    let text = String::from_utf8_lossy(&out);
    for name in ["data0", "data3", "etc"] {
        assert!(text.contains(name), "{name} not listed:\n{text}");
    }
    assert!(err.contains("unpacked sda2 (ext4"), "{err}");

    // the second call reads the cache: no unpack message
    let (ok, out, err) = browse(&fx.root, &cache, "sda2", &["cat", "/etc/hostname"]);
    assert!(ok, "{err}");
    assert_eq!(out, b"host3\n");
    assert!(!err.contains("unpacked"), "unpacked again: {err}");

    let dest = d.path().join("data1");
    let (ok, _, err) = browse(&fx.root, &cache, "p2", &["get", "/data1", s(&dest)]);
    assert!(ok, "{err}");
    assert_eq!(
        fs::read(&dest).unwrap(),
        fs::read(tree.join("data1")).unwrap()
    );

    // the FAT partition (zstd)
    let (ok, out, err) = browse(&fx.root, &cache, "p1", &["cat", "/EFI/BOOT/BOOTX64.EFI"]);
    assert!(ok, "{err}");
    assert_eq!(out, fs::read(d.path().join("img-BOOTX64.EFI")).unwrap());

    // a partition that is not there is named with those that are
    let (ok, _, err) = browse(&fx.root, &cache, "p7", &["ls"]);
    assert!(!ok);
    assert!(
        err.contains("no partition p7") && err.contains("sda1, sda2"),
        "{err}"
    );

    assert_eq!(listing(&fx.image), before, "the image folder changed");

    // A replaced image (a byte of a data block flipped) is decoded again, not served
    // from the old unpack, and is refused naming the file; no unpack of it is kept.
    let gz = fx.image.join("sda2.ext4-ptcl-img.gz");
    let raw = fsfixture::run("gzip", &["-dc", s(&gz)]).stdout;
    let total = u64::from_le_bytes(raw[60..68].try_into().unwrap());
    let mut bad = raw.clone();
    bad[110 + total.div_ceil(8) as usize + 4 + 3 * 4096 + 9] ^= 1;
    let plain = fx.image.join("sda2.ext4-ptcl-img");
    fs::write(&plain, bad).unwrap();
    fs::remove_file(&gz).unwrap();
    fsfixture::run("gzip", &["-q", s(&plain)]);
    let cached_before = listing(&cache);
    let (ok, _, err) = browse(&fx.root, &cache, "p2", &["cat", "/etc/hostname"]);
    assert!(!ok, "a damaged image was browsed");
    assert!(
        err.contains("sda2.ext4-ptcl-img.gz") && err.contains("CRC32"),
        "{err}"
    );
    assert_eq!(
        listing(&cache),
        cached_before,
        "the failed unpack left a file"
    );
}
