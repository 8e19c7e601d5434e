//! A Clonezilla savedisk image of two disks (`disk` reads `sda sdb`, each disk with its
//! own table dump and boot areas; tests/clonezilla_fixture/shapes.rs): `images` shows a
//! row per disk, `restore --disk sdb` restores that disk (fsck.vfat -n, e2fsck -fn and
//! the files of the second disk's seed), `restore` without `--disk` or with a disk not
//! in the image is refused naming the disks and leaves the target byte for byte as it
//! was, `import` stores one image per disk, `browse` reads sdb2, and a `disk` file
//! naming a disk whose table dump is missing is refused naming the file.

mod clonezilla_fixture;
mod fsfixture;

use clonezilla_fixture::shapes::{bin, s};
use clonezilla_fixture::{check_restored, run_with_scratch, shapes, MIB};
use std::fs;
use std::path::Path;

/// The folder `img` holding disk sda (seed 11) and sdb (seed 12).
fn two_disks(d: &Path) -> clonezilla_fixture::Fixture {
    let a = clonezilla_fixture::build(&d.join("a"), "img", 11, false);
    let b = clonezilla_fixture::build(&d.join("b"), "img", 12, false);
    shapes::add_disk(&a, &b, "sdb");
    a
}

#[test]
#[ignore = "needs root"]
fn each_disk_lists_restores_imports_and_browses() {
    let d = tempfile::tempdir().unwrap();
    let fx = two_disks(d.path());
    let scratch = d.path().join("scratch");

    let (ok, out, _) = bin(&["images", s(&fx.root)]);
    assert!(ok, "{out}");
    for e in [
        "disk sda (160.0 MiB), disk 1 of 2 (--disk sda)",
        "disk sdb (160.0 MiB), disk 2 of 2 (--disk sdb)",
    ] {
        assert!(out.contains(e), "{e:?} not in:\n{out}");
    }

    // without --disk, or naming a disk the image lacks: refused, target untouched
    let target = d.path().join("t.img");
    let pattern: Vec<u8> = (0..240 * MIB).map(|i| (i % 251) as u8).collect();
    fs::write(&target, &pattern).unwrap();
    let base = [
        "restore",
        s(&fx.root),
        "img",
        s(&target),
        "--yes",
        "--no-nvram",
    ];
    let (ok, out) = run_with_scratch(&base, &scratch);
    assert!(
        !ok && out.contains("holds 2 disks (sda, sdb)") && out.contains("--disk"),
        "{out}"
    );
    let mut a = base.to_vec();
    a.extend(["--disk", "sdc"]);
    let (ok, out) = run_with_scratch(&a, &scratch);
    assert!(
        !ok && out.contains("no disk sdc") && out.contains("sda, sdb"),
        "{out}"
    );
    assert!(
        fs::read(&target).unwrap() == pattern,
        "the target was written"
    );

    // --disk sdb: the second disk's files, grown onto 240 MiB
    let mut a = base.to_vec();
    a.extend(["--disk", "sdb"]);
    let (ok, out) = run_with_scratch(&a, &scratch);
    assert!(ok, "{out}");
    check_restored(d.path(), &target, 12, 2);

    // import: one image per disk; restoring each from the repository gives its files
    let repo = d.path().join("repo");
    let (ok, out) = run_with_scratch(
        &["import", s(&fx.root), "img", s(&repo), "--name", "pc"],
        &scratch,
    );
    assert!(ok, "{out}");
    for (disk, seed) in [("sda", 11), ("sdb", 12)] {
        let t = d.path().join(format!("r-{disk}.img"));
        fs::File::create(&t).unwrap().set_len(200 * MIB).unwrap();
        let (ok, out, _) = bin(&[
            "restore",
            s(&repo),
            &format!("pc-{disk}"),
            s(&t),
            "--yes",
            "--no-nvram",
        ]);
        assert!(ok, "{out}");
        check_restored(d.path(), &t, seed, 2);
    }

    // browse: sdb2 by its name
    let cache = d.path().join("cache");
    let (ok, out, stdout) = bin(&[
        "browse",
        s(&fx.root),
        "img",
        "sdb2",
        "cat",
        "/etc/hostname",
        "--cache",
        s(&cache),
    ]);
    assert!(ok, "{out}");
    assert_eq!(stdout, b"host12\n");
}

#[test]
fn a_disk_without_its_table_dump_is_refused_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 13, false);
    fs::write(fx.image.join("disk"), "sda sdc\n").unwrap();
    let target = d.path().join("t.img");
    let pattern: Vec<u8> = (0..200 * MIB).map(|i| (i % 253) as u8).collect();
    fs::write(&target, &pattern).unwrap();
    for args in [
        vec!["images", s(&fx.root)],
        vec![
            "restore",
            s(&fx.root),
            "img",
            s(&target),
            "--disk",
            "sda",
            "--yes",
        ],
    ] {
        let (_, out, _) = bin(&args);
        assert!(
            out.contains("sdc-pt.sf") && out.contains("missing"),
            "{args:?}:\n{out}"
        );
    }
    assert!(
        fs::read(&target).unwrap() == pattern,
        "the target was written"
    );
}
