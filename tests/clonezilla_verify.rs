//! `ironclone verify DIR IMAGE` of a Clonezilla folder (tests/clonezilla_fixture, plus an
//! LV): a sound folder checks out naming each image (partitions and the LV) and is left
//! as it was; a bit flipped in a partition's or an LV's image, a checksum list that
//! disagrees with a file, and a missing image are each refused naming the file; the
//! whole folder (no IMAGE) checks every image in it, a broken one not hiding the others;
//! `verify FILE` checks a standalone partition image file.

mod clonezilla_fixture;
mod fsfixture;

use clonezilla_fixture::shapes::{add_lvm, s};
use clonezilla_fixture::{cli, damage_gz, damage_zst};
use std::fs;
use std::path::Path;

/// Every file of the folder with its bytes' hash, sorted.
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (
                name,
                blake3::hash(&fs::read(&p).unwrap()).to_hex().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn verify(root: &Path) -> (bool, String) {
    let (ok, _, text) = cli(&["verify", s(root), "img"]);
    (ok, text)
}

#[test]
#[ignore = "needs root"]
fn a_clonezilla_folder_verifies_and_each_damage_is_named() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 11, false);
    add_lvm(d.path(), &fx, 11);
    let before = snapshot(&fx.image);
    let (ok, text) = verify(&fx.root);
    assert!(ok, "a sound folder did not verify:\n{text}");
    for e in [
        "sda1 vfat",
        "sda2 ext4",
        "vg0-root ext4",
        "3 image(s)",
        "ok",
    ] {
        assert!(text.contains(e), "{e:?} not in:\n{text}");
    }
    assert_eq!(snapshot(&fx.image), before, "verify changed the folder");
    let (ok, out, text) = cli(&["verify", s(&fx.root), "img", "--json"]);
    assert!(ok, "{text}");
    let last = String::from_utf8_lossy(&out)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["images"].as_array().map(Vec::len), Some(3), "{last}");

    // The LV's image: its own file is named.
    let lv = fx.image.join("vg0-root.ext4-ptcl-img.zst");
    let good_lv = fs::read(&lv).unwrap();
    damage_zst(&lv);
    let (ok, text) = verify(&fx.root);
    assert!(!ok, "a damaged LV image verified:\n{text}");
    for e in [
        "vg0-root",
        "vg0-root.ext4-ptcl-img.zst",
        "checksum mismatch",
    ] {
        assert!(text.contains(e), "{e:?} not in:\n{text}");
    }
    fs::write(&lv, good_lv).unwrap();
    assert!(verify(&fx.root).0, "the LV image put back");

    // A partition's image; the same file on its own (`verify FILE`) before and after.
    let gz = fx.image.join("sda2.ext4-ptcl-img.gz");
    let good_gz = fs::read(&gz).unwrap();
    let alone = d.path().join("sda2.ext4-ptcl-img.gz");
    fs::write(&alone, &good_gz).unwrap();
    let (ok, _, text) = cli(&["verify", s(&alone)]);
    assert!(ok && text.contains("ext4"), "{text}");
    for named in [vec![s(&alone)], vec![s(&fx.root), "img"]] {
        let mut args = vec!["verify"];
        args.extend(named);
        args.extend(["--read-data-subset", "1/2"]);
        let (ok, _, text) = cli(&args);
        assert!(!ok && text.contains("checked whole"), "{args:?}: {text}");
    }
    damage_gz(&alone);
    let (ok, _, text) = cli(&["verify", s(&alone)]);
    assert!(!ok, "a damaged standalone image verified:\n{text}");
    for e in [
        "sda2.ext4-ptcl-img.gz",
        "checksum mismatch",
        "did not check out",
    ] {
        assert!(text.contains(e), "{e:?} not in:\n{text}");
    }
    damage_gz(&gz);
    let (ok, text) = verify(&fx.root);
    assert!(!ok, "a damaged partition image verified:\n{text}");
    for e in [
        "partition sda2",
        "sda2.ext4-ptcl-img.gz",
        "checksum mismatch",
    ] {
        assert!(text.contains(e), "{e:?} not in:\n{text}");
    }
    fs::write(&gz, good_gz).unwrap();

    // A checksum list that disagrees with a file it lists.
    let sums = fx.image.join("MD5SUMS");
    fs::write(&sums, format!("{}  parts\n", "0".repeat(32))).unwrap();
    let (ok, text) = verify(&fx.root);
    assert!(!ok, "a wrong MD5SUMS line verified:\n{text}");
    for e in ["MD5SUMS", "parts"] {
        assert!(text.contains(e), "{e:?} not in:\n{text}");
    }
    fs::remove_file(&sums).unwrap();

    // A missing image.
    fs::remove_file(fx.image.join("sda1.vfat-ptcl-img.zst")).unwrap();
    let (ok, text) = verify(&fx.root);
    assert!(!ok, "a folder without sda1's image verified:\n{text}");
    assert!(text.contains("sda1"), "{text}");

    // The whole folder (no IMAGE): a sound second image is checked, the broken one is
    // named, and the exit is non-zero.
    let fx2 = clonezilla_fixture::build(d.path(), "img2", 12, false);
    assert_eq!(fx2.root, fx.root);
    let (ok, _, text) = cli(&["verify", s(&fx.root)]);
    assert!(!ok, "a folder with a broken image verified:\n{text}");
    for e in [
        "checked Clonezilla image",
        "partimag/img2 in",
        "DAMAGED Clonezilla image",
        "1 of 2 Clonezilla image(s) did not check out",
    ] {
        assert!(text.contains(e), "{e:?} not in:\n{text}");
    }
    // One image folder named by its own path.
    let (ok, _, text) = cli(&["verify", s(&fx2.image)]);
    assert!(ok && text.contains("img2"), "{text}");
}
