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

/// A partclone image file on its own (no folder) is a backup source: unpacked with its
/// checksums checked, backed up by used blocks, restored to a filesystem that passes
/// e2fsck with the files intact; a damaged one stores nothing and leaves no scratch.
#[test]
fn a_standalone_partclone_image_is_a_backup_source() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 4, false);
    let tree = d.path().join("img-tree");
    let bin = env!("CARGO_BIN_EXE_ironclone");
    let gz = d.path().join("sda2.ext4-ptcl-img.gz");
    fs::copy(fx.image.join("sda2.ext4-ptcl-img.gz"), &gz).unwrap();
    let repo = d.path().join("repo");
    let scratch = d.path().join("scratch");
    fs::create_dir(&scratch).unwrap();
    let backup = |src: &Path, name: &str| {
        Command::new(bin)
            .args([
                "backup",
                s(src),
                s(&repo),
                "--name",
                name,
                "--scratch",
                s(&scratch),
            ])
            .output()
            .unwrap()
    };
    let out = backup(&gz, "standalone");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("is a partclone (ext4) image"), "{err}");
    assert_eq!(fs::read_dir(&scratch).unwrap().count(), 0, "scratch left");

    let target = d.path().join("restored.img");
    let len = fs::metadata(d.path().join("img-root.img")).unwrap().len();
    fs::File::create(&target).unwrap().set_len(len).unwrap();
    let out = Command::new(bin)
        .args(["restore", s(&repo), "standalone", s(&target), "--yes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fsfixture::run("e2fsck", &["-fn", s(&target)]);
    let cat = fsfixture::run("debugfs", &["-R", "cat /data2", s(&target)]);
    assert_eq!(cat.stdout, fs::read(tree.join("data2")).unwrap());

    // a flipped byte in a data block: refused naming the file, no image stored
    let raw = fsfixture::run("gzip", &["-dc", s(&gz)]).stdout;
    let total = u64::from_le_bytes(raw[60..68].try_into().unwrap());
    let mut bad = raw.clone();
    bad[110 + total.div_ceil(8) as usize + 4 + 2 * 4096 + 5] ^= 1;
    let damaged = d.path().join("sda2.ext4-ptcl-img");
    fs::write(&damaged, bad).unwrap();
    let out = backup(&damaged, "damaged");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a damaged image was backed up");
    assert!(
        err.contains("sda2.ext4-ptcl-img") && err.contains("CRC32"),
        "{err}"
    );
    assert_eq!(fs::read_dir(&scratch).unwrap().count(), 0, "scratch left");
    let out = Command::new(bin)
        .args(["images", s(&repo)])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("standalone") && !list.contains("damaged"),
        "{list}"
    );
}
