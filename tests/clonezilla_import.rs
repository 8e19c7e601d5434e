//! `ironclone import` of a Clonezilla savedisk folder (tests/clonezilla_fixture: GPT,
//! FAT ESP + ext4, zstd and gzip partclone images): restored onto 0.6x and 1.5x disks
//! the filesystems pass fsck.vfat -n and e2fsck -fn and give back every file; a second
//! import of a similar image stores little; a damaged data block, a missing split
//! volume and a truncated image are refused naming them, the repository unchanged;
//! with `--no-precheck` a damaged image fails the import and leaves no image.
//! `ironclone restore DIR IMAGE TARGET` restores straight from the folder (here with
//! the ESP saved as a dd image).

mod clonezilla_fixture;
mod fsfixture;

use clonezilla_fixture::{check_restored, extract, run_with_scratch, run_with_scratch_env};

use fsfixture::{prng_bytes, run, run_status};
use std::fs;
use std::path::{Path, PathBuf};

const BIN: &str = env!("CARGO_BIN_EXE_ironclone");
const MIB: u64 = 1 << 20;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn import(root: &Path, image: &str, repo: &Path, name: &str, scratch: &Path) -> (bool, String) {
    run_with_scratch(
        &["import", s(root), image, s(repo), "--name", name],
        scratch,
    )
}

/// Total bytes of the files under `dir` (the repository's size on disk).
fn tree_bytes(dir: &Path) -> u64 {
    let mut n = 0;
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            tree_bytes(&e.path())
        } else {
            m.len()
        };
    }
    n
}

#[test]
fn import_restores_to_any_size_and_dedups() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "2026-11-30-12-img", 1, false);
    let repo = d.path().join("repo");
    let scratch = d.path().join("scratch");
    let (ok, out) = import(&fx.root, "2026-11-30-12-img", &repo, "first", &scratch);
    assert!(ok, "{out}");
    let after_first = tree_bytes(&repo);
    for (name, factor) in [("small", 0.6f64), ("big", 1.5)] {
        let target = d.path().join(format!("{name}.img"));
        let size = ((160.0 * factor) as u64) * MIB;
        fs::File::create(&target).unwrap().set_len(size).unwrap();
        let rs = d.path().join("rscratch");
        fs::create_dir_all(&rs).unwrap();
        let o = run_status(
            BIN,
            &[
                "restore",
                s(&repo),
                "first",
                s(&target),
                "--yes",
                "--no-nvram",
                "--scratch",
                s(&rs),
            ],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "restore onto {factor}x: {text}");
        check_restored(d.path(), &target, 1, 2);
    }
    // a later image of the same machine: one new file, new filesystem UUIDs and times
    let fx2 = clonezilla_fixture::build(&d.path().join("later"), "2026-12-01-12-img", 1, true);
    // without --scratch: the scratch disk goes to <repo>/tmp and is removed there
    let o = run_status(
        BIN,
        &[
            "import",
            s(&fx2.root),
            "2026-12-01-12-img",
            s(&repo),
            "--name",
            "second",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let left: Vec<_> = fs::read_dir(repo.join("tmp")).unwrap().collect();
    assert!(left.is_empty(), "scratch left in <repo>/tmp: {left:?}");
    let grew = tree_bytes(&repo) - after_first;
    eprintln!("repository: {after_first} bytes after the first import, +{grew} after the second");
    assert!(
        grew * 10 < after_first,
        "second import grew the repository by {grew} of {after_first}"
    );
}

/// The backup reads the blocks the check decoded and kept in memory; with a budget
/// smaller than the image (`IRONCLONE_KEEP_DECODED`) it decodes the rest again. Both
/// imports of the same folder hold the same bytes: the second stores no new data.
#[test]
fn import_from_the_kept_decode_and_with_a_small_budget_store_the_same() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 7, false);
    let repo = d.path().join("repo");
    let scratch = d.path().join("scratch");
    let (ok, out) = import(&fx.root, "img", &repo, "kept", &scratch);
    assert!(ok, "{out}");
    assert!(out.contains("the backup decoded nothing again"), "{out}");
    assert!(out.contains("started over 0 time(s)"), "{out}");
    let after_first = tree_bytes(&repo);
    let (ok, out) = run_with_scratch_env(
        &["import", s(&fx.root), "img", s(&repo), "--name", "small"],
        &scratch,
        &[("IRONCLONE_KEEP_DECODED", "65536")],
    );
    assert!(ok, "{out}");
    assert!(out.contains("the memory budget ran out"), "{out}");
    assert!(
        out.contains("0 B new"),
        "the second import stored new data:\n{out}"
    );
    let grew = tree_bytes(&repo) - after_first;
    assert!(grew * 20 < after_first, "grew by {grew} of {after_first}");
}

/// Decompresses `gz`, flips one byte at `at`, and compresses it back in place.
fn corrupt_gz(gz: &Path, at: usize) {
    let o = run("gzip", &["-dc", s(gz)]);
    let mut b = o.stdout;
    b[at] ^= 0x01;
    let raw = gz.with_extension("");
    fs::write(&raw, b).unwrap();
    fs::remove_file(gz).unwrap();
    run("gzip", &["-q", s(&raw)]);
}

#[test]
fn damaged_images_are_refused_and_store_nothing() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 2, false);
    let repo = d.path().join("repo");
    let scratch = d.path().join("scratch");
    // a repository that already holds one image: its files must not change
    let (ok, out) = import(&fx.root, "img", &repo, "base", &scratch);
    assert!(ok, "{out}");
    let before = tree_bytes(&repo);
    let gz: PathBuf = fx.image.join("sda2.ext4-ptcl-img.gz");
    let pristine = fs::read(&gz).unwrap();
    let refused = |what: &str, expect: &[&str]| {
        let (ok, out) = import(&fx.root, "img", &repo, "bad", &scratch);
        assert!(!ok, "{what}: import succeeded");
        for e in expect {
            assert!(out.contains(e), "{what}: {e:?} not in:\n{out}");
        }
        assert_eq!(tree_bytes(&repo), before, "{what}: the repository changed");
    };
    // a data block: header 110 + bitmap + CRC, then the blocks
    let raw = run("gzip", &["-dc", s(&gz)]).stdout;
    let total = u64::from_le_bytes(raw[60..68].try_into().unwrap());
    let data = 110 + total.div_ceil(8) as usize + 4;
    corrupt_gz(&gz, data + 5 * 4096 + 17);
    refused(
        "flipped data byte",
        &[
            "partition sda2",
            "sda2.ext4-ptcl-img.gz",
            "CRC32 checksum mismatch",
            "image byte",
        ],
    );
    fs::write(&gz, &pristine).unwrap();
    corrupt_gz(&gz, 115);
    refused("flipped bitmap byte", &["partition sda2", "bitmap CRC32"]);
    fs::write(&gz, &pristine).unwrap();
    corrupt_gz(&gz, 40);
    refused("flipped header byte", &["partition sda2", "header CRC32"]);
    fs::write(&gz, &pristine).unwrap();
    fs::write(&gz, &pristine[..pristine.len() / 2]).unwrap();
    refused("truncated image", &["sda2.ext4-ptcl-img.gz"]);
    // split volumes with .ab missing
    fs::write(&gz, &pristine).unwrap();
    run(
        "split",
        &["-a", "2", "-b", "300K", s(&gz), &format!("{}.", s(&gz))],
    );
    fs::remove_file(&gz).unwrap();
    fs::remove_file(format!("{}.ab", s(&gz))).unwrap();
    refused("missing volume", &["sda2.ext4-ptcl-img.gz.ab", "missing"]);
}

/// `--no-precheck` decodes once, checking every checksum as the backup reads: a clean
/// image imports (and the report does not blame the memory budget for what planning
/// left undecoded), a byte flipped late in the data fails the import naming it and
/// leaves no image, only packs that `prune` removes, after which `verify` is clean.
#[test]
fn no_precheck_import_checks_as_it_reads_and_a_damaged_one_leaves_no_image() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 6, false);
    let repo = d.path().join("repo");
    let scratch = d.path().join("scratch");
    let args = |name: &'static str| ["import", s(&fx.root), "img", s(&repo), "--name", name];
    let no_precheck = |name: &'static str| {
        let mut a = args(name).to_vec();
        a.push("--no-precheck");
        run_with_scratch(&a, &scratch)
    };
    let (ok, out) = no_precheck("clean");
    assert!(ok, "{out}");
    assert!(!out.contains("memory budget"), "{out}");
    let gz: PathBuf = fx.image.join("sda2.ext4-ptcl-img.gz");
    let raw = run("gzip", &["-dc", s(&gz)]).stdout;
    // inside the last used blocks, past the metadata the planner reads
    corrupt_gz(&gz, raw.len() - 5000);
    let (ok, out) = no_precheck("bad");
    assert!(!ok, "a damaged image was imported:\n{out}");
    for e in [
        "partition sda2",
        "sda2.ext4-ptcl-img.gz",
        "checksum mismatch",
    ] {
        assert!(out.contains(e), "{e:?} not in:\n{out}");
    }
    let images = run(BIN, &["images", s(&repo)]);
    let listed = String::from_utf8_lossy(&images.stdout).to_string();
    assert!(
        listed.contains("clean") && !listed.contains("bad"),
        "{listed}"
    );
    // Both fail the test when they fail.
    run(BIN, &["prune", s(&repo)]);
    run(BIN, &["verify", s(&repo)]);
}

/// Writes `list` into the image folder with `tool` (md5sum, sha1sum, b2sum) over every
/// file in it, as Clonezilla's checksum options do.
fn write_list(image: &Path, tool: &str, list: &str) {
    let mut names: Vec<String> = fs::read_dir(image)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !["MD5SUMS", "SHA1SUMS", "B2SUMS"].contains(&n.as_str()))
        .collect();
    names.sort();
    let mut args: Vec<&str> = vec!["--"];
    args.extend(names.iter().map(String::as_str));
    let o = std::process::Command::new(tool)
        .args(&args)
        .current_dir(image)
        .output()
        .unwrap();
    assert!(o.status.success(), "{tool}");
    fs::write(image.join(list), o.stdout).unwrap();
}

#[test]
fn checksum_lists_are_checked_before_anything_is_stored() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 3, false);
    let repo = d.path().join("repo");
    let scratch = d.path().join("scratch");
    for (tool, list) in [
        ("md5sum", "MD5SUMS"),
        ("sha1sum", "SHA1SUMS"),
        ("b2sum", "B2SUMS"),
    ] {
        write_list(&fx.image, tool, list);
    }
    let (ok, out) = import(&fx.root, "img", &repo, "good", &scratch);
    assert!(ok, "intact folder with three checksum lists: {out}");
    let before = tree_bytes(&repo);
    // The saved MBR: nothing but the list covers it (partclone's checksums do not).
    let mbr = fx.image.join("sda-mbr");
    let pristine = fs::read(&mbr).unwrap();
    let mut flipped = pristine.clone();
    flipped[100] ^= 0x40;
    fs::write(&mbr, &flipped).unwrap();
    let (ok, out) = import(&fx.root, "img", &repo, "bad", &scratch);
    assert!(!ok, "a flipped MBR byte was imported: {out}");
    assert!(
        out.contains("sda-mbr") && out.contains("differs from the one"),
        "{out}"
    );
    assert_eq!(
        tree_bytes(&repo),
        before,
        "a refused import changed the repository"
    );
    // Each list on its own catches it (the lists are not only read, each is checked).
    for keep in ["MD5SUMS", "SHA1SUMS", "B2SUMS"] {
        let saved: Vec<(String, Vec<u8>)> = ["MD5SUMS", "SHA1SUMS", "B2SUMS"]
            .iter()
            .filter(|l| **l != keep)
            .map(|l| (l.to_string(), fs::read(fx.image.join(l)).unwrap()))
            .collect();
        for (l, _) in &saved {
            fs::remove_file(fx.image.join(l)).unwrap();
        }
        let (ok, out) = import(&fx.root, "img", &repo, "bad", &scratch);
        assert!(
            !ok && out.contains(keep) && out.contains("sda-mbr"),
            "{keep} alone: {out}"
        );
        for (l, b) in saved {
            fs::write(fx.image.join(l), b).unwrap();
        }
    }
    fs::write(&mbr, &pristine).unwrap();
    // A list naming a file the folder lacks, and a malformed line: refused by name.
    let md5 = fs::read_to_string(fx.image.join("MD5SUMS")).unwrap();
    fs::write(
        fx.image.join("MD5SUMS"),
        format!("{md5}d41d8cd98f00b204e9800998ecf8427e  sda3.ext4-ptcl-img.zst\n"),
    )
    .unwrap();
    let (ok, out) = import(&fx.root, "img", &repo, "bad", &scratch);
    assert!(!ok && out.contains("sda3.ext4-ptcl-img.zst"), "{out}");
    fs::write(
        fx.image.join("MD5SUMS"),
        format!("{md5}not-a-checksum  parts\n"),
    )
    .unwrap();
    let (ok, out) = import(&fx.root, "img", &repo, "bad", &scratch);
    assert!(!ok && out.contains("MD5SUMS line"), "{out}");
    assert_eq!(tree_bytes(&repo), before);
}

#[test]
fn restore_straight_from_the_folder_with_a_dd_esp() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 3, false);
    // the ESP as Clonezilla saves a filesystem partclone does not know: dd, zstd
    fs::remove_file(fx.image.join("sda1.vfat-ptcl-img.zst")).unwrap();
    let esp = d.path().join("img-esp.img");
    let dd = fx.image.join("sda1.dd-img.zst");
    run("zstd", &["-q", s(&esp), "-o", s(&dd)]);
    let target = d.path().join("t.img");
    fs::File::create(&target)
        .unwrap()
        .set_len(240 * MIB)
        .unwrap();
    let scratch = d.path().join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    let t = std::time::Instant::now();
    let o = run_status(
        BIN,
        &[
            "restore",
            s(&fx.root),
            "img",
            s(&target),
            "--yes",
            "--no-nvram",
            "--scratch",
            s(&scratch),
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    eprintln!(
        "restore from the Clonezilla folder: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let left: Vec<_> = fs::read_dir(&scratch).unwrap().collect();
    assert!(
        left.is_empty(),
        "temporary repository or scratch left: {left:?}"
    );
    check_restored(d.path(), &target, 3, 2);
    // a damaged image: refused before the target is written
    let gz = fx.image.join("sda2.ext4-ptcl-img.gz");
    let data = fs::read(&gz).unwrap();
    fs::write(&gz, &data[..data.len() - 4000]).unwrap();
    let fresh = d.path().join("fresh.img");
    fs::File::create(&fresh)
        .unwrap()
        .set_len(240 * MIB)
        .unwrap();
    let o = run_status(
        BIN,
        &[
            "restore",
            s(&fx.root),
            "img",
            s(&fresh),
            "--yes",
            "--no-nvram",
            "--scratch",
            s(&scratch),
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("sda2.ext4-ptcl-img.gz"), "{err}");
    assert!(
        fs::read(&fresh).unwrap().iter().all(|&b| b == 0),
        "the target was written"
    );
}

#[test]
fn mbr_disk_with_a_logical_partition_imports_and_restores() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build_mbr(d.path(), "mbr-img", 4);
    let repo = d.path().join("repo");
    let scratch = d.path().join("scratch");
    let (ok, out) = import(&fx.root, "mbr-img", &repo, "mbr", &scratch);
    assert!(ok, "{out}");
    for (name, factor) in [("small", 0.6f64), ("big", 1.5)] {
        let target = d.path().join(format!("{name}.img"));
        fs::File::create(&target)
            .unwrap()
            .set_len(((160.0 * factor) as u64) * MIB)
            .unwrap();
        let o = run_status(
            BIN,
            &[
                "restore",
                s(&repo),
                "mbr",
                s(&target),
                "--yes",
                "--no-nvram",
            ],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "restore onto {factor}x: {text}");
        // p1 FAT, p2 extended, p5 ext4: the ext4 is third in sfdisk's list
        check_restored(d.path(), &target, 4, 3);
    }
}

#[test]
fn ntfsclone_partition_imports_and_restores() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "nt", 5, false);
    // sda2 saved by ntfsclone instead: an NTFS of the ext4's size with two files
    let root_len = fs::metadata(d.path().join("nt-root.img")).unwrap().len();
    let ntfs = d.path().join("ntfs.img");
    run("truncate", &["-s", &root_len.to_string(), s(&ntfs)]);
    run("mkntfs", &["-F", "-Q", "-q", "-L", "DATA", s(&ntfs)]);
    let files = [
        ("big.bin", prng_bytes(77, 3_000_000)),
        ("note.txt", b"ntfsclone\n".to_vec()),
    ];
    for (name, body) in &files {
        let f = d.path().join(name);
        fs::write(&f, body).unwrap();
        run("ntfscp", &["-f", s(&ntfs), s(&f), name]);
    }
    run(
        "dd",
        &[
            &format!("if={}", s(&ntfs)),
            &format!("of={}", s(&fx.disk)),
            "bs=512",
            "seek=67584",
            "conv=notrunc",
            "status=none",
        ],
    );
    fs::remove_file(fx.image.join("sda2.ext4-ptcl-img.gz")).unwrap();
    let nc = fx.image.join("sda2.ntfs-img");
    run("ntfsclone", &["-q", "--save-image", "-o", s(&nc), s(&ntfs)]);
    run("gzip", &["-q", s(&nc)]);
    let repo = d.path().join("repo");
    let (ok, out) = import(&fx.root, "nt", &repo, "nt", &d.path().join("scratch"));
    assert!(ok, "{out}");
    let target = d.path().join("t.img");
    fs::File::create(&target)
        .unwrap()
        .set_len(240 * MIB)
        .unwrap();
    let o = run_status(
        BIN,
        &["restore", s(&repo), "nt", s(&target), "--yes", "--no-nvram"],
    );
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let p2 = d.path().join("p2.out");
    extract(&target, 2, &p2);
    let o = run_status("ntfsfix", &["-n", s(&p2)]);
    assert!(
        o.status.success(),
        "ntfsfix -n: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    for (name, body) in &files {
        let o = run("ntfscat", &[s(&p2), name]);
        assert!(o.stdout == *body, "{name} differs after restore");
    }
}
