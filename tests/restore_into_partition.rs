//! An image without a partition table (a filesystem saved alone: here a backup of a
//! filesystem image file, as `backup /dev/sdb3` of one partition makes) restores onto
//! a PARTITION of another disk: `restore REPO NAME /dev/sdX2 --yes`. Checked:
//! - ext4 into partition 2: e2fsck -fn clean, grown to the partition, the file equal;
//! - NTFS into partition 3: ntfsfix -n clean, and its hidden-sectors field set to the
//!   partition's start (with `--no-repair` it keeps the saved 0, so the check can fail);
//! - partition 1 (a byte pattern), the GPT (sgdisk -v) and everything outside the
//!   partition written are unchanged;
//! - an image WITH a table is refused onto a partition, naming both, the target
//!   byte for byte as it was;
//! - the TUI with the real services does the same for the ext4 image: its row leads to
//!   the partition picker, the plan, the typed confirmation and the job.

mod common;

use common::{path_str, run, run_status, LoopDev};
use std::path::Path;
use std::process::Command;

const MIB: u64 = 1 << 20;

fn ironclone(args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(args)
        .output()
        .expect("run ironclone");
    let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&o.stderr));
    (o.status.success(), s)
}

/// The bytes of `file` outside [from, to).
fn outside(file: &Path, from: u64, to: u64) -> blake3::Hash {
    let b = std::fs::read(file).unwrap();
    let mut h = blake3::Hasher::new();
    h.update(&b[..from as usize]);
    h.update(&b[to as usize..]);
    h.finalize()
}

/// (start, end) in bytes of partition `n` of `file`, from sfdisk.
fn span(file: &Path, n: usize) -> (u64, u64) {
    let j = common::sfdisk_json(file);
    let p = &j["partitiontable"]["partitions"][n - 1];
    let start = p["start"].as_u64().unwrap() * 512;
    (start, start + p["size"].as_u64().unwrap() * 512)
}

fn hidden_sectors(dev: &Path) -> u32 {
    let mut b = [0u8; 512];
    use std::os::unix::fs::FileExt;
    std::fs::File::open(dev)
        .unwrap()
        .read_exact_at(&mut b, 0)
        .unwrap();
    u32::from_le_bytes([b[0x1c], b[0x1d], b[0x1e], b[0x1f]])
}

#[test]
#[ignore = "needs root"]
fn a_table_less_image_restores_into_a_partition_and_a_disk_image_does_not() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let repo = dir.join("repo");
    let r = path_str(&repo);

    // The saved filesystems, each alone (no table).
    let content = dir.join("content");
    std::fs::create_dir(&content).unwrap();
    let mut data = vec![0u8; 2 << 20];
    common::Rng::new(7).fill(&mut data);
    std::fs::write(content.join("data.bin"), &data).unwrap();
    let ext = dir.join("ext.fs");
    run(
        "mkfs.ext4",
        &["-q", "-F", "-d", path_str(&content), path_str(&ext), "40M"],
    );
    let ntfs = common::sparse(dir, "ntfs.fs", 48 * MIB);
    run(
        "mkntfs",
        &["-q", "-F", "-Q", "-L", "alone", path_str(&ntfs)],
    );
    assert_eq!(
        hidden_sectors(&ntfs),
        0,
        "mkntfs on a file: hidden sectors 0"
    );
    // And a disk with a table, for the refusal.
    let disk = common::sparse(dir, "disk.img", 64 * MIB);
    run("sgdisk", &["-Z", "-n", "1:2048:+40M", path_str(&disk)]);
    for (src, name) in [(&ext, "ext"), (&ntfs, "ntfs"), (&disk, "withtable")] {
        let (ok, out) = ironclone(&["backup", path_str(src), r, "--name", name]);
        assert!(ok, "{out}");
    }

    // The target: p1 a pattern, p2 for ext4 (larger), p3 for NTFS.
    let target = common::sparse(dir, "target.img", 240 * MIB);
    run(
        "sgdisk",
        &[
            "-Z",
            "-n",
            "1:2048:+16M",
            "-n",
            "2:0:+100M",
            "-n",
            "3:0:+100M",
            path_str(&target),
        ],
    );
    let (p1s, p1e) = span(&target, 1);
    let pattern: Vec<u8> = (0..p1e - p1s).map(|i| (i % 251) as u8).collect();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&target)
            .unwrap();
        f.write_all_at(&pattern, p1s).unwrap();
    }
    let lo = LoopDev::attach_scanned(&target, 3);
    let (p2, p3) = (lo.part(2), lo.part(3));
    let (p2s, p2e) = span(&target, 2);
    let (p3s, _) = span(&target, 3);

    // An image with a table onto a partition: refused, nothing written.
    let before = blake3::hash(&std::fs::read(&target).unwrap());
    let (ok, out) = ironclone(&["restore", r, "withtable", path_str(&p2), "--yes"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("is a partition") && out.contains("holds a partition table"),
        "{out}"
    );
    assert_eq!(blake3::hash(&std::fs::read(&target).unwrap()), before);

    // ext4 into partition 2.
    let rest = outside(&target, p2s, p2e);
    let (ok, out) = ironclone(&["restore", r, "ext", path_str(&p2), "--yes"]);
    assert!(ok, "{out}");
    assert!(out.contains("onto partition 2"), "{out}");
    run("e2fsck", &["-fn", path_str(&p2)]);
    let blocks = run("dumpe2fs", &["-h", path_str(&p2)]);
    let count: u64 = blocks
        .lines()
        .find_map(|l| l.strip_prefix("Block count:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(count * 4096 > 90 * MIB, "not grown: {count} blocks");
    let dump = dir.join("data.out");
    let req = format!("dump /data.bin {}", dump.display());
    run("debugfs", &["-R", &req, path_str(&p2)]);
    assert!(std::fs::read(&dump).unwrap() == data, "data.bin differs");
    assert_eq!(
        outside(&target, p2s, p2e),
        rest,
        "bytes outside partition 2 changed"
    );
    let (ok, v) = run_status("sgdisk", &["-v", path_str(&lo.path)]);
    assert!(ok && v.contains("No problems found"), "{v}");

    // NTFS into partition 3: without repair the saved 0 stays (the check can fail)...
    let (ok, out) = ironclone(&["restore", r, "ntfs", path_str(&p3), "--yes", "--no-repair"]);
    assert!(ok, "{out}");
    assert_eq!(hidden_sectors(&p3), 0);
    // ...with it, the partition's start.
    let (ok, out) = ironclone(&["restore", r, "ntfs", path_str(&p3), "--yes"]);
    assert!(ok, "{out}");
    assert!(out.contains("NTFS hidden sectors 0 -> "), "{out}");
    assert_eq!(u64::from(hidden_sectors(&p3)), p3s / 512);
    run("ntfsfix", &["-n", path_str(&p3)]);
    let got = std::fs::read(&target).unwrap();
    assert!(
        got[p1s as usize..p1e as usize] == pattern[..],
        "partition 1 changed"
    );

    // The TUI (real services, only the loop disk): the ext4 image's row goes to the
    // partition picker; partition 2, its plan, the disk's name typed, the job.
    // Partition 2 wiped first, so what the checks find there is the TUI's writing.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&p2).unwrap();
        f.write_all_at(&vec![0u8; 8 << 20], 0).unwrap();
        f.sync_all().unwrap();
    }
    assert!(
        !run_status("e2fsck", &["-fn", path_str(&p2)]).0,
        "the wipe left a filesystem"
    );
    let rest = outside(&target, p2s, p2e);
    use crossterm::event::KeyCode;
    use ironclone::tui::app::Screen;
    let services = ironclone::tui::real::RealServices::new(Some(vec![lo.path.clone()]));
    let mut app = ironclone::tui::App::new(std::sync::Arc::new(services));
    app.press(KeyCode::Char('r'));
    app.press(KeyCode::Char('/'));
    app.type_str(r);
    app.press(KeyCode::Enter);
    app.settle(std::time::Duration::from_secs(30));
    let at = app
        .choices
        .images
        .iter()
        .position(|i| i.name == "ext" && i.table_less)
        .unwrap_or_else(|| panic!("no table-less ext row: {:?}", app.choices.images));
    for _ in 0..at {
        app.press(KeyCode::Down);
    }
    app.press(KeyCode::Enter);
    assert!(
        matches!(app.screen(), Screen::PartTargets { .. }),
        "{:?}",
        app.screen()
    );
    app.press(KeyCode::Down); // partition 2
    app.press(KeyCode::Enter);
    app.settle(std::time::Duration::from_secs(60)); // the plan, made on its own thread
    let plan = format!("{:?}", app.choices.plan);
    assert!(
        plan.starts_with("Some(Ok(") && plan.contains("Written into partition 2"),
        "{plan}"
    );
    app.press(KeyCode::Enter);
    let name = lo.path.file_name().unwrap().to_str().unwrap().to_string();
    app.type_str(&name);
    app.press(KeyCode::Enter);
    app.settle(std::time::Duration::from_secs(120));
    let report = format!("{:?}", app.report);
    assert!(
        report.starts_with("Some(Ok(") && report.contains("restored into partition 2"),
        "{report}"
    );
    run("e2fsck", &["-fn", path_str(&p2)]);
    run("debugfs", &["-R", &req, path_str(&p2)]);
    assert!(
        std::fs::read(&dump).unwrap() == data,
        "data.bin differs after the TUI"
    );
    assert_eq!(
        outside(&target, p2s, p2e),
        rest,
        "the TUI wrote outside partition 2"
    );
}
