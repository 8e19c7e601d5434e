//! `ironclone restore DIR IMAGE TARGET` straight from a Clonezilla folder
//! (tests/clonezilla_fixture: 160 MiB GPT disk, FAT ESP + ext4): onto a 0.6x disk (the
//! ext4 is shrunk off the target first) and a 1.5x disk (grown) the filesystems pass
//! fsck.vfat -n and e2fsck -fn and hold every file, no scratch file is left, and no
//! repository is made; a byte flipped in a partclone data block is refused naming the
//! file, the partition and the byte offset, with the target untouched byte for byte.
//! The copy reads the blocks the precheck decoded and kept in memory (no second
//! decode), and with a memory budget smaller than the image (`IRONCLONE_KEEP_DECODED`)
//! decodes the rest again: both give the same checked filesystems.

mod clonezilla_fixture;
mod fsfixture;

use clonezilla_fixture::{check_restored, run_with_scratch, run_with_scratch_env, MIB};
use fsfixture::run;
use std::fs;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs the folder restore onto `target`; (success, stdout + stderr).
fn restore(root: &Path, target: &Path, scratch: &Path) -> (bool, String) {
    run_with_scratch(
        &["restore", s(root), "img", s(target), "--yes", "--no-nvram"],
        scratch,
    )
}

#[test]
#[ignore = "needs root"]
fn folder_restore_shrinks_and_grows_without_a_repository() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 4, false);
    let scratch = d.path().join("scratch");
    for (size, what) in [(96 * MIB, "shrunk from"), (240 * MIB, "grown from")] {
        let target = d.path().join(format!("t{size}.img"));
        fs::File::create(&target).unwrap().set_len(size).unwrap();
        let (ok, out) = restore(&fx.root, &target, &scratch);
        assert!(ok, "{out}");
        assert!(out.contains(what), "{what:?} not in:\n{out}");
        assert!(
            !out.contains("temporary repository"),
            "went through a repository:\n{out}"
        );
        check_restored(d.path(), &target, 4, 2);
        fs::remove_file(&target).unwrap();
    }
    assert!(
        fs::read_dir(&fx.root).unwrap().count() == 1,
        "the Clonezilla folder got new entries"
    );
}

#[test]
#[ignore = "needs root"]
fn copy_from_the_kept_decode_and_with_a_budget_smaller_than_the_image() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 6, false);
    let scratch = d.path().join("scratch");
    let target = d.path().join("t.img");
    // Default budget (a quarter of MemAvailable): everything kept, no decode restarts;
    // 64 KiB: keeping stops after one slab, the copy decodes the rest again; 0: nothing
    // kept (the path before the kept decode).
    for (budget, says) in [
        (None, "the copy decodes nothing again"),
        (Some("65536"), "the memory budget ran out"),
        (Some("0"), "the memory budget ran out"),
    ] {
        fs::File::create(&target)
            .unwrap()
            .set_len(240 * MIB)
            .unwrap();
        let env: Vec<(&str, &str)> = budget
            .map(|b| ("IRONCLONE_KEEP_DECODED", b))
            .into_iter()
            .collect();
        let (ok, out) = run_with_scratch_env(
            &[
                "restore",
                s(&fx.root),
                "img",
                s(&target),
                "--yes",
                "--no-nvram",
            ],
            &scratch,
            &env,
        );
        assert!(ok, "{out}");
        assert!(out.contains(says), "{says:?} not in:\n{out}");
        if budget.is_none() {
            assert!(
                out.contains("decode started over 0 time(s)"),
                "the copy decoded again:\n{out}"
            );
        } else {
            assert!(
                !out.contains("decode started over 0 time(s)"),
                "the copy did not decode the rest again:\n{out}"
            );
        }
        check_restored(d.path(), &target, 6, 2);
        fs::remove_file(&target).unwrap();
    }
}

#[test]
#[ignore = "needs root"]
fn flipped_data_byte_is_refused_before_the_target_is_written() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 5, false);
    let gz = fx.image.join("sda2.ext4-ptcl-img.gz");
    // a data block: header 110 + bitmap + CRC, then the blocks
    let mut raw = run("gzip", &["-dc", s(&gz)]).stdout;
    let total = u64::from_le_bytes(raw[60..68].try_into().unwrap());
    let data = 110 + total.div_ceil(8) as usize + 4;
    raw[data + 7 * 4096 + 99] ^= 0x10;
    let plain = fx.image.join("sda2.ext4-ptcl-img");
    fs::write(&plain, &raw).unwrap();
    fs::remove_file(&gz).unwrap();
    run("gzip", &["-q", s(&plain)]);
    // a target that holds something: every byte must stay
    let target = d.path().join("t.img");
    let pattern: Vec<u8> = (0..160 * MIB).map(|i| (i % 251) as u8).collect();
    fs::write(&target, &pattern).unwrap();
    let (ok, out) = restore(&fx.root, &target, &d.path().join("scratch"));
    assert!(!ok, "a damaged image was restored:\n{out}");
    for e in [
        "partition sda2",
        "sda2.ext4-ptcl-img.gz",
        "CRC32 checksum mismatch",
        "image byte",
    ] {
        assert!(out.contains(e), "{e:?} not in:\n{out}");
    }
    assert!(
        fs::read(&target).unwrap() == pattern,
        "the target was written"
    );
}

/// `--no-precheck` streams in one pass: a byte flipped late in the data stops the
/// restore with an error naming the file and the partition and saying that the target
/// is partly written, and a non-zero exit.
#[test]
#[ignore = "needs root"]
fn no_precheck_stops_on_a_flipped_byte_and_says_the_target_is_partly_written() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 5, false);
    let gz = fx.image.join("sda2.ext4-ptcl-img.gz");
    let mut raw = run("gzip", &["-dc", s(&gz)]).stdout;
    // inside the last used blocks, past the metadata the planner reads
    let at = raw.len() - 5000;
    raw[at] ^= 0x10;
    let plain = fx.image.join("sda2.ext4-ptcl-img");
    fs::write(&plain, &raw).unwrap();
    fs::remove_file(&gz).unwrap();
    run("gzip", &["-q", s(&plain)]);
    let target = d.path().join("t.img");
    fs::File::create(&target)
        .unwrap()
        .set_len(160 * MIB)
        .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args([
            "restore",
            s(&fx.root),
            "img",
            s(&target),
            "--yes",
            "--no-nvram",
        ])
        .args(["--no-precheck", "--scratch", s(d.path())])
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "a damaged image was restored:\n{out}");
    for e in [
        "partition sda2",
        "sda2.ext4-ptcl-img.gz",
        "checksum mismatch",
        "partly written",
    ] {
        assert!(out.contains(e), "{e:?} not in:\n{out}");
    }
}
