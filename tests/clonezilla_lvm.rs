//! Restore and import of a Clonezilla image of a disk with LVM (tests/czlvm_fixture:
//! GPT, ext4 sda1, PV sda2 holding an ext4 LV in two out-of-order segments, an XFS LV
//! and a swap LV, made with lvm2, partclone and vgcfgbackup at test time):
//! - restored onto a loop device of the same size, the PV is lvm2's (`pvck`,
//!   `vgcfgbackup` list the VG's LVs), each LV read at its extents passes e2fsck -fn or
//!   xfs_repair -n and holds the fixture's files, swap has its saved UUID and label;
//! - onto a 1.5x disk, the PV grows and its LVs are laid out anew (one segment each);
//!   onto 0.88x the PV shrinks through its LVs; onto a disk too small for the LVs'
//!   minimums it is refused, the target unchanged;
//! - a byte flipped in an LV's partclone data refuses the restore naming the LV image,
//!   and the target is unchanged byte for byte;
//! - imported into a repository, `verify` passes and a native restore gives the same
//!   checked disk, and onto 1.5x lays the LVs out anew from the image's `meta.map.lvm`.
//!
//! Needs root (loop devices, lvm2 on them).

mod clonezilla_fixture;
mod czlvm_fixture;
mod fsfixture;
mod lvm_fixture;
mod xfs_fixture;

use clonezilla_fixture::run_with_scratch;
use czlvm_fixture::{s, DISK};
use fsfixture::run;
use lvm_fixture::{Detach, MIB};
use std::fs;
use std::path::Path;

fn restore(root: &Path, target: &Path, scratch: &Path) -> (bool, String) {
    run_with_scratch(
        &["restore", s(root), "img", s(target), "--yes", "--no-nvram"],
        scratch,
    )
}

fn hash(p: &Path) -> blake3::Hash {
    blake3::hash(&fs::read(p).unwrap())
}

#[test]
#[ignore = "needs root"]
fn an_lvm_image_restores_same_size_and_larger_and_a_flipped_byte_writes_nothing() {
    let cz = czlvm_fixture::build("czlvmr");
    let d = cz.pv.dir.path();
    let scratch = d.join("scratch");

    // same size, onto a loop device: the PV copied as it was
    let target = d.join("t-same.img");
    fs::File::create(&target).unwrap().set_len(DISK).unwrap();
    {
        let lo = run("losetup", &["-f", "--show", s(&target)]);
        let lo = Detach(String::from_utf8_lossy(&lo.stdout).trim().into());
        let (ok, out) = restore(&cz.root, &lo.0, &scratch);
        assert!(ok, "{out}");
        assert!(!out.contains("temporary repository"), "{out}");
    }
    cz.check(&target, false, "same size");
    fs::remove_file(&target).unwrap();

    // 1.5x: the PV grows, its LVs laid out anew
    let target = d.join("t-large.img");
    fs::File::create(&target)
        .unwrap()
        .set_len(DISK / 2 * 3)
        .unwrap();
    let (ok, out) = restore(&cz.root, &target, &scratch);
    assert!(ok, "{out}");
    assert!(out.contains("laid out anew"), "{out}");
    cz.check(&target, true, "1.5x");
    fs::remove_file(&target).unwrap();

    // 0.88x: the PV shrinks through its LVs (native relayout)
    let target = d.join("t-smaller.img");
    fs::File::create(&target)
        .unwrap()
        .set_len(360 * MIB)
        .unwrap();
    let (ok, out) = restore(&cz.root, &target, &scratch);
    assert!(ok, "{out}");
    assert!(out.contains("laid out anew"), "{out}");
    cz.check(&target, true, "0.88x");
    fs::remove_file(&target).unwrap();

    // too small even for the LVs' minimums (XFS: 300 MiB): refused, nothing written
    let target = d.join("t-small.img");
    fs::File::create(&target)
        .unwrap()
        .set_len(240 * MIB)
        .unwrap();
    let before = hash(&target);
    let (ok, out) = restore(&cz.root, &target, &scratch);
    assert!(!ok, "restored onto a disk too small:\n{out}");
    assert_eq!(hash(&target), before, "the small target was written");
    fs::remove_file(&target).unwrap();

    // a flipped byte in the root LV's data: refused before the target is touched
    czlvm_fixture::flip_lv_byte(&cz.image.join("czlvmr-root.ext4-ptcl-img.zst"));
    let target = d.join("t-bad.img");
    let pattern: Vec<u8> = (0..32 * MIB).map(|i| (i % 251) as u8).collect();
    fs::write(&target, &pattern).unwrap();
    fs::File::options()
        .write(true)
        .open(&target)
        .unwrap()
        .set_len(DISK)
        .unwrap();
    let before = hash(&target);
    let (ok, out) = restore(&cz.root, &target, &scratch);
    assert!(!ok, "a damaged LV image was restored:\n{out}");
    for e in ["czlvmr-root.ext4-ptcl-img.zst", "checksum mismatch"] {
        assert!(out.contains(e), "{e:?} not in:\n{out}");
    }
    assert_eq!(hash(&target), before, "the target was written");
}

#[test]
#[ignore = "needs root"]
fn an_lvm_image_imports_verifies_and_restores_natively() {
    let cz = czlvm_fixture::build("czlvmi");
    let d = cz.pv.dir.path();
    let scratch = d.join("scratch");
    let repo = d.join("repo");
    let (ok, out) = run_with_scratch(
        &["import", s(&cz.root), "img", s(&repo), "--name", "cz"],
        &scratch,
    );
    assert!(ok, "{out}");
    let o = fsfixture::run_status(env!("CARGO_BIN_EXE_ironclone"), &["verify", s(&repo), "cz"]);
    assert!(
        o.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let target = d.join("t.img");
    fs::File::create(&target).unwrap().set_len(DISK).unwrap();
    let (ok, out) = run_with_scratch(
        &["restore", s(&repo), "cz", s(&target), "--yes", "--no-nvram"],
        &scratch,
    );
    assert!(ok, "{out}");
    cz.check(&target, false, "import, native restore");
    fs::remove_file(&target).unwrap();
    // the image's meta.map.lvm lets the native restore lay the LVs out anew
    fs::File::create(&target)
        .unwrap()
        .set_len(DISK / 2 * 3)
        .unwrap();
    let (ok, out) = run_with_scratch(
        &["restore", s(&repo), "cz", s(&target), "--yes", "--no-nvram"],
        &scratch,
    );
    assert!(ok, "{out}");
    assert!(out.contains("laid out anew"), "{out}");
    cz.check(&target, true, "import, native restore 1.5x");
}
