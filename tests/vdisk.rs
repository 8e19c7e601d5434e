//! Virtual machine disks through the binary (issue 21): `backup disk.qcow2|.vmdk|...`
//! reads the disk qemu presents, and `export` writes an image as a VM disk fitted to
//! another size. Judged by independent tools: the image made from each VM disk must
//! list exactly the chunks of the image made from the raw disk; an exported disk must
//! pass `qemu-img check`, and converted back to raw by `qemu-img convert`, sgdisk -v,
//! e2fsck -fn, ntfsfix -n and every file's bytes (restore_fixture's checks).

mod common;
mod restore_fixture;

use common::{path_str, require_tool, run, run_status};
use restore_fixture::*;
use std::path::Path;

/// Each area's (name, chunk list) of an image: what a restore would write.
fn chunk_lists(repo: &Path, name: &str) -> Vec<(String, serde_json::Value)> {
    let b = std::fs::read(repo.join("images").join(format!("{name}.json"))).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&common::json_file_bytes(b)).unwrap();
    m["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_string(), a["chunks"].clone()))
        .collect()
}

fn image_names(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo.join("images"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
#[ignore = "needs root"]
fn vm_disks_back_up_like_the_raw_disk() {
    require_tool("qemu-img");
    require_tool("qemu-storage-daemon");
    let s = source(true);
    let raw = chunk_lists(&s.repo, "img");
    // qcow2 compressed (clusters zlib-compressed), an overlay whose data is all in its
    // backing file, and the other container formats qemu writes.
    let qcow = s.dir.join("disk.qcow2");
    run(
        "qemu-img",
        &[
            "convert",
            "-c",
            "-O",
            "qcow2",
            path_str(&s.disk),
            path_str(&qcow),
        ],
    );
    let overlay = s.dir.join("overlay.qcow2");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            path_str(&qcow),
            path_str(&overlay),
        ],
    );
    let mut disks = vec![qcow.clone(), overlay.clone()];
    for (fmt, ext) in [
        ("vmdk", "vmdk"),
        ("vhdx", "vhdx"),
        ("vdi", "vdi"),
        ("vpc", "vhd"),
    ] {
        let p = s.dir.join(format!("disk.{ext}"));
        let mut args = vec!["convert", "-O", fmt];
        if fmt == "vpc" {
            // Without force_size qemu rounds a VHD to a CHS geometry: another disk.
            args.extend(["-o", "force_size=on"]);
        }
        args.extend([path_str(&s.disk), path_str(&p)]);
        run("qemu-img", &args);
        disks.push(p);
    }
    // The exports' mount points go under a TMPDIR of this test's own, which must be
    // empty (no mount, no file) after each backup.
    let tmp = s.dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    for d in &disks {
        let name = format!(
            "vm-{}",
            d.file_name().unwrap().to_string_lossy().replace('.', "-")
        );
        let out = std::process::Command::new(BIN)
            .args(["backup", path_str(d), path_str(&s.repo), "--name", &name])
            .env("TMPDIR", &tmp)
            .output()
            .unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "backup of {} failed:\n{log}",
            d.display()
        );
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "export left behind\n{log}"
        );
        assert!(log.contains("read through qemu"), "{log}");
        assert_eq!(
            chunk_lists(&s.repo, &name),
            raw,
            "{} gave other chunks than the raw disk\n{log}",
            d.display()
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(path_str(&tmp)), "{mounts}");

    // A damaged container is refused by name before anything is stored: a qcow2
    // whose header points its L1 table past the end of the file, and an overlay whose
    // backing file is gone.
    let before = image_names(&s.repo);
    let bad = s.dir.join("bad.qcow2");
    std::fs::copy(&qcow, &bad).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&bad).unwrap();
        // l1_table_offset, big-endian u64 at byte 40.
        f.write_all_at(&(1u64 << 50).to_be_bytes(), 40).unwrap();
    }
    std::fs::remove_file(&qcow).unwrap();
    for (d, why) in [(&bad, "bad.qcow2"), (&overlay, "disk.qcow2")] {
        let (ok, log) = ironclone(&["backup", path_str(d), path_str(&s.repo), "--name", "bad"]);
        assert!(!ok, "{} was backed up:\n{log}", d.display());
        assert!(log.contains("qemu-img check") && log.contains(why), "{log}");
    }
    assert_eq!(
        image_names(&s.repo),
        before,
        "a refused source left an image"
    );
}

#[test]
#[ignore = "needs root"]
fn export_fits_the_image_into_each_vm_format() {
    require_tool("qemu-img");
    require_tool("qemu-storage-daemon");
    let s = source(true);
    let cases = [
        ("grow.qcow2", 150),
        ("shrink.vhdx", 60),
        ("same.vmdk", 100),
        ("grow.vdi", 120),
        ("grow.vhd", 130),
        ("grow.img", 110),
    ];
    for (file, pct) in cases {
        let out = s.dir.join(file);
        let size = format!("{}", s.size * pct / 100 / MIB * MIB);
        let (ok, log) = ironclone(&[
            "export",
            path_str(&s.repo),
            "img",
            path_str(&out),
            "--size",
            &size,
        ]);
        assert!(ok, "export {file} failed:\n{log}");
        assert!(!Path::new(&format!("{}.partial", out.display())).exists());
        if !file.ends_with(".img") {
            let (ok, chk) = run_status("qemu-img", &["check", path_str(&out)]);
            assert!(
                ok || file.ends_with(".vhd"),
                "qemu-img check {file}:\n{chk}"
            );
        }
        let raw = s.dir.join(format!("{file}.raw"));
        run(
            "qemu-img",
            &["convert", "-O", "raw", path_str(&out), path_str(&raw)],
        );
        assert_eq!(
            std::fs::metadata(&raw).unwrap().len().to_string(),
            size,
            "{file} virtual size"
        );
        s.check(&raw, true, &log);
        for p in [&out, &raw] {
            std::fs::remove_file(p).unwrap();
        }
    }

    // The checks above can fail: an export with the NTFS partition's boot sector
    // zeroed no longer passes ntfsfix/the file comparison.
    let out = s.dir.join("broken.img");
    let (ok, log) = ironclone(&["export", path_str(&s.repo), "img", path_str(&out)]);
    assert!(ok, "{log}");
    let (start, _) = part(&out, 2);
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&out).unwrap();
        f.write_all_at(&[0u8; 512], start).unwrap();
    }
    let caught = std::panic::catch_unwind(|| s.check(&out, true, "broken on purpose"));
    assert!(
        caught.is_err(),
        "the checks passed a disk with a zeroed NTFS boot sector"
    );
    std::fs::remove_file(&out).unwrap();

    // Refusals: an existing file without --force, an unknown extension; neither leaves
    // anything behind.
    let existing = s.dir.join("exists.qcow2");
    std::fs::write(&existing, b"keep me").unwrap();
    let (ok, log) = ironclone(&["export", path_str(&s.repo), "img", path_str(&existing)]);
    assert!(!ok && log.contains("--force"), "{log}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    let iso = s.dir.join("disk.iso");
    let (ok, log) = ironclone(&["export", path_str(&s.repo), "img", path_str(&iso)]);
    assert!(!ok && log.contains("unknown disk format"), "{log}");
    assert!(!iso.exists());
    // Too small for the image: refused by the planner, no partial file left.
    let small = s.dir.join("small.qcow2");
    let (ok, log) = ironclone(&[
        "export",
        path_str(&s.repo),
        "img",
        path_str(&small),
        "--size",
        "8M",
    ]);
    assert!(!ok, "{log}");
    assert!(!small.exists() && !Path::new(&format!("{}.partial", small.display())).exists());
}
