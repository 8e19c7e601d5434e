//! Rescue-grade backup end to end (issue 9): a disk image whose ext4 partition has
//! EIO injected (FaultyDevice) on a known file's blocks (found by debugfs) and on its
//! inode table (found by dumpe2fs) is backed up without aborting; the image records
//! exactly those ranges and names the file and the metadata; a restore writes zeros
//! there and reports the same list; the source is never written. Plus the CLI's
//! safety: BLKROSET on a block-device source while it is read, and refusal of a
//! restore target with a mounted partition.

use ironclone::device::{open_path, Access, BlockDevice};
use ironclone::imaging::plan_backup;
use ironclone::progress::{Collect, ProgressEvent};
use ironclone::repo::{self, AreaKind, BackupOptions, Repository, SourceInfo};
use ironclone::rescue::{Fault, FaultKind, FaultyDevice};
use ironclone::usedmap::ByteExtent;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const MIB: u64 = 1 << 20;
/// The partition starts at 1 MiB; it holds a 32 MiB ext4 with 4 KiB blocks.
const PART: u64 = MIB;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (install e2fsprogs/util-linux): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    disk: PathBuf,
    /// Partition-relative byte ranges: one on /sub/dir/deep.bin, one on the last
    /// block of group 0's inode table.
    file_bad: ByteExtent,
    itable_bad: ByteExtent,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let tree = d.join("tree");
    std::fs::create_dir_all(tree.join("sub/dir")).unwrap();
    std::fs::write(tree.join("a.txt"), b"hello").unwrap();
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8 + 1).collect();
    std::fs::write(tree.join("sub/dir/deep.bin"), &big).unwrap();
    let fs = d.join("fs.img");
    std::fs::File::create(&fs)
        .unwrap()
        .set_len(32 * MIB)
        .unwrap();
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-d"])
        .arg(&tree)
        .arg(&fs));
    // Independent tools say where things are.
    let blocks: Vec<u64> = run(Command::new("debugfs")
        .arg("-R")
        .arg("blocks /sub/dir/deep.bin")
        .arg(&fs))
    .split_whitespace()
    .map(|w| w.parse().unwrap())
    .collect();
    assert!(blocks.len() > 100, "{blocks:?}");
    let dump = run(Command::new("dumpe2fs").arg(&fs));
    let itable_last: u64 = dump
        .lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("Inode table at ")?;
            let range = rest.split_whitespace().next()?;
            range.split('-').nth(1)?.parse().ok()
        })
        .expect("dumpe2fs prints group 0's inode table");
    let disk = d.join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(48 * MIB)
        .unwrap();
    let mut sf = Command::new("sfdisk");
    sf.arg("-q").arg(&disk).stdin(std::process::Stdio::piped());
    let mut child = sf.spawn().expect("sfdisk (util-linux) is required");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\nstart=2048, size=65536, type=83\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    run(Command::new("dd")
        .arg(format!("if={}", fs.display()))
        .arg(format!("of={}", disk.display()))
        .args(["bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]));
    Fixture {
        _dir: dir,
        dir: d,
        disk,
        // 3 sectors inside block 40 of the file, then a whole inode-table block.
        file_bad: ByteExtent {
            offset: blocks[40] * 4096 + 1024,
            len: 1536,
        },
        itable_bad: ByteExtent {
            offset: itable_last * 4096,
            len: 4096,
        },
    }
}

fn sha(path: &Path) -> String {
    run(Command::new("sha256sum").arg(path))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn faults(f: &Fixture) -> Vec<Fault> {
    let mut v = vec![f.itable_bad, f.file_bad];
    v.sort();
    v.into_iter()
        .map(|e| Fault {
            offset: PART + e.offset,
            len: e.len,
            kind: FaultKind::Eio,
        })
        .collect()
}

#[test]
fn backup_of_failing_disk_records_and_names_the_damage() {
    let f = fixture();
    let before = sha(&f.disk);
    let mut fl = faults(&f);
    // The file's bad sectors are also slow (as on a dying disk): every retry of
    // them takes 150 ms, and the front end must still see life meanwhile.
    fl.push(Fault {
        offset: PART + f.file_bad.offset,
        len: f.file_bad.len,
        kind: FaultKind::Slow(Duration::from_millis(150)),
    });
    let dev = FaultyDevice::new(open_path(&f.disk, Access::ReadOnly).unwrap(), fl);
    let planned = plan_backup(&dev, SourceInfo::default()).unwrap();
    let repo_dir = f.dir.join("repo");
    let r = Repository::init(&repo_dir, 1 << 20, 8 << 20).unwrap();
    let progress = Collect::default();
    let m = repo::backup(
        &r,
        &dev,
        &planned.plan,
        &BackupOptions::new("sick"),
        &progress,
    )
    .unwrap();

    let areas: Vec<_> = m
        .areas
        .iter()
        .filter(|a| !a.unreadable.is_empty())
        .collect();
    assert_eq!(areas.len(), 1, "{:#?}", m.areas);
    let a = areas[0];
    assert_eq!(a.kind, AreaKind::Partition);
    assert_eq!(a.offset, PART);
    let mut want = vec![f.itable_bad, f.file_bad];
    want.sort();
    assert_eq!(a.unreadable, want);
    assert_eq!(m.stats.unreadable_bytes, 4096 + 1536);

    let d = a.damage.as_ref().expect("ext4 damage report");
    let files: Vec<_> = d.files.iter().filter_map(|x| x.path.clone()).collect();
    assert_eq!(files, vec!["/sub/dir/deep.bin"], "{d:#?}");
    assert_eq!(d.files[0].bad_bytes, 1536);
    assert!(
        d.metadata.iter().any(|x| x.what.contains("inode table")),
        "{d:#?}"
    );
    let lines = m.damage_lines();
    assert!(
        lines.iter().any(|l| l.contains("/sub/dir/deep.bin")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("inode table")),
        "{lines:#?}"
    );

    // Live progress: one ReadError per bad range (device offsets), and heartbeats
    // while the slow sectors were retried.
    let ev = progress.events();
    let mut errs: Vec<(u64, u64)> = ev
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::ReadError { offset, len } => Some((*offset, *len)),
            _ => None,
        })
        .collect();
    errs.sort();
    let want_dev: Vec<(u64, u64)> = want.iter().map(|e| (PART + e.offset, e.len)).collect();
    assert_eq!(errs, want_dev);
    let beats = ev
        .iter()
        .filter(|e| matches!(e, ProgressEvent::Advance { bytes: 0 }))
        .count();
    assert!(beats >= 2, "no heartbeat while retrying slow bad sectors");
    assert!(matches!(
        ev.last(),
        Some(ProgressEvent::JobEnd { ok: true })
    ));

    assert!(dev.write_attempts().is_empty());
    assert_eq!(sha(&f.disk), before, "the source changed");
}

fn ironclone(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ironclone"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read_at(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    let dev = open_path(path, Access::ReadOnly).unwrap();
    dev.read_vec(offset, len as usize).unwrap()
}

#[test]
fn cli_backup_with_faults_then_images_and_restore_report_the_same_damage() {
    let f = fixture();
    let before = sha(&f.disk);
    let spec = faults(&f)
        .iter()
        .map(|x| format!("eio:{}+{}", x.offset, x.len))
        .collect::<Vec<_>>()
        .join(",");
    let env = [("IRONCLONE_FAULTS", spec)];
    let repo_dir = f.dir.join("repo");
    let (disk, rs) = (f.disk.to_str().unwrap(), repo_dir.to_str().unwrap());
    let out = ok(&ironclone(&["backup", disk, rs, "--name", "sick"], &env));
    assert!(out.contains("DAMAGED SOURCE"), "{out}");
    let summary: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  area "))
        .map(str::trim)
        .collect();
    assert!(
        summary.iter().any(|l| l.contains("/sub/dir/deep.bin")),
        "{out}"
    );
    assert!(summary.iter().any(|l| l.contains("inode table")), "{out}");
    assert_eq!(sha(&f.disk), before, "the source changed");

    let out = ok(&ironclone(&["images", rs, "--json"], &[]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let img = &v["images"][0];
    assert_eq!(img["stats"]["unreadable_bytes"], 4096 + 1536);
    let listed: Vec<&str> = img["damage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(listed, summary, "images --json and the backup disagree");
    assert_eq!(
        img["damage_reports"][0]["report"]["files"][0]["path"],
        "/sub/dir/deep.bin"
    );
    let out = ok(&ironclone(&["images", rs], &[]));
    assert!(out.contains("damaged:"), "{out}");

    // Restore onto a same-size image file, the layout kept: the damaged ranges come
    // back as zeros, the rest of the file's block as it was, and the report lists
    // the same damage again.
    let target = f.dir.join("target.img");
    std::fs::File::create(&target)
        .unwrap()
        .set_len(48 * MIB)
        .unwrap();
    // Garbage first, so zeros at the bad ranges are the restore's doing.
    std::fs::write(&target, vec![0xA5u8; (48 * MIB) as usize]).unwrap();
    let ts = target.to_str().unwrap();
    let out = ok(&ironclone(
        &[
            "restore",
            rs,
            "sick",
            ts,
            "--yes",
            "--layout",
            "keep",
            "--no-repair",
        ],
        &[],
    ));
    let restored: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("area "))
        .collect();
    assert_eq!(restored, summary, "restore report differs:\n{out}");
    for b in [f.file_bad, f.itable_bad] {
        assert!(
            read_at(&target, PART + b.offset, b.len)
                .iter()
                .all(|&x| x == 0),
            "bad range {b:?} not zero after restore"
        );
    }
    // The rest of that file block is the source's data.
    let blk = f.file_bad.offset / 4096 * 4096;
    let good = (PART + blk, f.file_bad.offset - blk);
    assert_eq!(
        read_at(&target, good.0, good.1),
        read_at(&f.disk, good.0, good.1)
    );
}

/// Detaches the loop device this test attached (and only that one).
struct Loop(PathBuf);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("partx")
            .arg("-d")
            .arg(&self.0)
            .stderr(std::process::Stdio::null())
            .status();
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

fn attach(file: &Path, partitions: bool) -> Loop {
    let dev = run(Command::new("losetup").args(["-f", "--show"]).arg(file))
        .trim()
        .to_string();
    let lo = Loop(PathBuf::from(dev));
    if partitions {
        run(Command::new("partx").arg("-u").arg(&lo.0));
    }
    lo
}

fn getro(dev: &Path) -> String {
    run(Command::new("blockdev").arg("--getro").arg(dev))
        .trim()
        .to_string()
}

#[test]
fn cli_backup_sets_block_source_read_only_and_never_writes_it() {
    let f = fixture();
    let lo = attach(&f.disk, false);
    let before = sha(&lo.0);
    assert_eq!(getro(&lo.0), "0");
    // Slow reads (test hook) keep the backup running long enough to look at the
    // kernel flag while it reads.
    let spec = format!("slow:{}+{}:400ms", PART, 64 * 1024);
    let repo_dir = f.dir.join("repo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(["backup"])
        .arg(&lo.0)
        .arg(&repo_dir)
        .args(["--name", "ro", "--json"])
        .env("IRONCLONE_FAULTS", spec)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen_ro = false;
    for _ in 0..100 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if getro(&lo.0) == "1" {
            seen_ro = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    ok(&out);
    assert!(
        seen_ro,
        "the source was never set read-only during the backup"
    );
    assert_eq!(getro(&lo.0), "0", "read-only flag not restored");
    assert_eq!(sha(&lo.0), before, "the source changed");
}

#[test]
fn restore_onto_disk_with_mounted_partition_is_refused_and_writes_nothing() {
    let f = fixture();
    // An image to restore: the fixture itself, backed up without faults.
    let repo_dir = f.dir.join("repo");
    let (disk, rs) = (f.disk.to_str().unwrap(), repo_dir.to_str().unwrap());
    ok(&ironclone(&["backup", disk, rs, "--name", "good"], &[]));

    // The target: a copy of the disk on a loop device, its ext4 partition mounted.
    let tfile = f.dir.join("target.img");
    std::fs::copy(&f.disk, &tfile).unwrap();
    let lo = attach(&tfile, true);
    let part = PathBuf::from(format!("{}p1", lo.0.display()));
    for _ in 0..50 {
        if part.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mnt = f.dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    run(Command::new("mount")
        .args(["-o", "ro"])
        .arg(&part)
        .arg(&mnt));
    struct Mount(PathBuf);
    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _m = Mount(mnt);
    let before = sha(&lo.0);
    let out = ironclone(
        &["restore", rs, "good", lo.0.to_str().unwrap(), "--yes"],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "restore onto a mounted disk ran");
    assert!(err.contains("mounted"), "unclear refusal: {err}");
    assert_eq!(sha(&lo.0), before, "a refused restore wrote to the target");
}

/// The disk changes identity between planning and writing (here: it grows while the
/// restore waits for the typed confirmation, as when another disk takes its kernel
/// name after a hotplug). The re-check just before writing refuses, and nothing is
/// written. `script` gives the restore the terminal it asks for confirmation on.
#[test]
fn restore_refuses_a_target_whose_identity_changed_before_writing() {
    use std::io::{BufRead, Write};
    let f = fixture();
    let repo_dir = f.dir.join("repo");
    let (disk, rs) = (f.disk.to_str().unwrap(), repo_dir.to_str().unwrap());
    ok(&ironclone(&["backup", disk, rs, "--name", "good"], &[]));

    let tfile = f.dir.join("target.img");
    std::fs::write(&tfile, vec![0x5Au8; (48 * MIB) as usize]).unwrap();
    let lo = attach(&tfile, false);
    let word = lo.0.file_name().unwrap().to_string_lossy().into_owned();
    let cmd = format!(
        "{} restore {} good {}",
        env!("CARGO_BIN_EXE_ironclone"),
        rs,
        lo.0.display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) is required");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut buf = Vec::new();
    // Wait for the prompt (dialoguer prints it without a newline, so read bytes).
    while !seen.contains("to continue") {
        buf.clear();
        let n = stdout.read_until(b':', &mut buf).unwrap();
        assert!(n > 0, "restore ended before asking: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf));
    }
    // Now the disk under that name changes.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tfile)
        .unwrap()
        .set_len(56 * MIB)
        .unwrap();
    run(Command::new("losetup").arg("-c").arg(&lo.0));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{word}\r").as_bytes()).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    seen.push_str(&rest);
    assert!(!status.success(), "restore went ahead: {seen}");
    assert!(
        seen.contains("not the disk that was planned") && seen.contains("nothing was written"),
        "unclear refusal: {seen}"
    );
    let now = std::fs::read(&tfile).unwrap();
    assert_eq!(now.len() as u64, 56 * MIB);
    assert!(
        now.iter().take((48 * MIB) as usize).all(|&b| b == 0x5A),
        "a refused restore wrote to the target"
    );
}

/// NTFS partition: EIO on a file's first cluster (located with ntfsinfo) inside an
/// MBR disk image; the backup records it and names the file by its path.
#[test]
fn backup_of_failing_ntfs_partition_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fs = d.join("ntfs.img");
    std::fs::File::create(&fs)
        .unwrap()
        .set_len(32 * MIB)
        .unwrap();
    run(Command::new("mkntfs")
        .args(["-q", "-F", "-Q", "-c", "4096", "-p", "2048"])
        .arg(&fs));
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 249) as u8 + 1).collect();
    std::fs::write(d.join("report.bin"), &big).unwrap();
    run(Command::new("ntfscp")
        .arg(&fs)
        .arg(d.join("report.bin"))
        .arg("report.bin"));
    let info = run(Command::new("ntfsinfo")
        .args(["-v", "-F", "/report.bin"])
        .arg(&fs));
    let data = info.split("Dumping attribute $DATA").nth(1).unwrap();
    let row = data.split("Length").nth(1).unwrap();
    let lcn = row.split_whitespace().nth(1).unwrap();
    let lcn = u64::from_str_radix(lcn.trim_start_matches("0x"), 16).unwrap();
    let disk = d.join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(48 * MIB)
        .unwrap();
    let mut child = Command::new("sfdisk")
        .arg("-q")
        .arg(&disk)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sfdisk (util-linux) is required");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\nstart=2048, size=65536, type=7\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    run(Command::new("dd")
        .arg(format!("if={}", fs.display()))
        .arg(format!("of={}", disk.display()))
        .args(["bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]));
    let bad = ByteExtent {
        offset: lcn * 4096 + 512,
        len: 512,
    };
    let dev = FaultyDevice::new(
        open_path(&disk, Access::ReadOnly).unwrap(),
        vec![Fault {
            offset: PART + bad.offset,
            len: bad.len,
            kind: FaultKind::Eio,
        }],
    );
    let planned = plan_backup(&dev, SourceInfo::default()).unwrap();
    let r = Repository::init(&d.join("repo"), 1 << 20, 8 << 20).unwrap();
    let m = repo::backup(
        &r,
        &dev,
        &planned.plan,
        &BackupOptions::new("ntfs"),
        &Collect::default(),
    )
    .unwrap();
    let a = m
        .areas
        .iter()
        .find(|a| !a.unreadable.is_empty())
        .expect("an area with unreadable bytes");
    assert_eq!(a.unreadable, vec![bad]);
    let rep = a.damage.as_ref().expect("NTFS damage report");
    assert_eq!(rep.fs, "ntfs");
    let files: Vec<_> = rep.files.iter().filter_map(|f| f.path.clone()).collect();
    assert_eq!(files, vec!["/report.bin"], "{rep:#?}");
    assert!(m
        .damage_lines()
        .iter()
        .any(|l| l.contains("/report.bin (MFT record")));
}
