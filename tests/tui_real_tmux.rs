//! The real TUI (no demo data) in a real terminal (tmux, 80x25), driven by keystrokes
//! against loop devices: back up a small GPT disk with an ext4 partition into a
//! repository on another loop device's ext4 partition (which the TUI mounts itself),
//! then restore that image onto a blank, larger loop device, and clone the source onto
//! a fourth one through a temporary repository. The restored files are
//! checked with debugfs and the filesystem with e2fsck -fn, both independent of
//! ironclone; a fifth disk with an unreplayed ext4 journal must show its warning in the
//! picker. Runs as root; `IRONCLONE_ONLY_DISKS` fences the TUI to our loops so
//! other loop devices on the machine are neither listed nor touched.

mod common;

use common::tmux::Tmux;
use common::{path_str, require_tool, run, run_in, run_status, sparse, tempdir, Rng};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const KEY_DELAY: Duration = Duration::from_millis(200);
const HOME: &str = "What do you want to do?";

/// A loop device with a partition table; its partitions are removed and the loop
/// detached on drop.
struct Loop(String);

impl Loop {
    fn attach(file: &Path) -> Loop {
        let dev = run("losetup", &["-f", "--show", path_str(file)])
            .trim()
            .to_string();
        let l = Loop(dev);
        // Partition nodes: the table may have been written before attaching.
        let _ = Command::new("partx").args(["-a", &l.0]).output();
        l
    }
    fn part(&self, n: u32) -> String {
        format!("{}p{n}", self.0)
    }
    fn name(&self) -> &str {
        self.0.trim_start_matches("/dev/")
    }
    fn wait_part(&self, n: u32) -> String {
        let p = self.part(n);
        let end = Instant::now() + Duration::from_secs(10);
        while !Path::new(&p).exists() {
            let _ = Command::new("partx").args(["-u", &self.0]).output();
            let _ = Command::new("partx").args(["-a", &self.0]).output();
            assert!(Instant::now() < end, "{p} did not appear");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("partx").args(["-d", &self.0]).output();
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// Unmounts what the TUI mounted for the repository.
struct Unmount(PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = Command::new("umount").arg(&self.0).status();
            let _ = std::fs::remove_dir(&self.0);
        }
    }
}

fn write_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(0x7e1);
    let mut files = Vec::new();
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    for (name, len) in [
        ("big.bin", 5 * MIB as usize + 123),
        ("docs/notes.txt", 20_000),
        ("docs/photo.raw", 700_001),
    ] {
        let mut buf = vec![0u8; len];
        rng.fill(&mut buf);
        if name.ends_with(".txt") {
            buf.iter_mut().for_each(|b| *b = b'a' + *b % 26);
        }
        std::fs::write(dir.join(name), &buf).unwrap();
        files.push((name.to_string(), buf));
    }
    files
}

fn gpt_one_partition(file: &Path, size_mib: u64) {
    run_in(
        "sfdisk",
        &["-q", path_str(file)],
        Some(&format!(
            "label: gpt\nstart=2048, size={}, type=L\n",
            size_mib * 2048
        )),
    );
}

#[test]
#[ignore = "needs root"]
fn real_backup_restore_and_clone_by_keystrokes_on_loop_devices() {
    for t in [
        "tmux",
        "losetup",
        "partx",
        "sfdisk",
        "mkfs.ext4",
        "debugfs",
        "e2fsck",
        "mount",
        "umount",
    ] {
        require_tool(t);
    }
    let dir = tempdir();
    let files_dir = dir.path().join("files");
    let files = write_files(&files_dir);

    // Source: 96 MiB disk, GPT, one 64 MiB ext4 partition with our files.
    let src_img = sparse(dir.path(), "src.img", 96 * MIB);
    gpt_one_partition(&src_img, 64);
    let src = Loop::attach(&src_img);
    let src_p1 = src.wait_part(1);
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-L",
            "tuisrc",
            "-d",
            path_str(&files_dir),
            &src_p1,
        ],
    );
    // Repository disk: one ext4 partition, not mounted (the TUI mounts it).
    let repo_img = sparse(dir.path(), "repo.img", 96 * MIB);
    gpt_one_partition(&repo_img, 80);
    let repo = Loop::attach(&repo_img);
    let repo_p1 = repo.wait_part(1);
    run("mkfs.ext4", &["-q", "-F", "-L", "tuirepo", &repo_p1]);
    let unmount = Unmount(PathBuf::from("/run/ironclone/repos").join(format!("{}p1", repo.name())));
    // Target: blank and larger, so the partition grows.
    let tgt_img = sparse(dir.path(), "tgt.img", 160 * MIB);
    let tgt = Loop::attach(&tgt_img);
    // Clone target: blank, between the two in size.
    let cl_img = sparse(dir.path(), "clone.img", 128 * MIB);
    let cl = Loop::attach(&cl_img);
    let scratch = dir.path().join("scratch");
    // A disk whose ext4 journal was not replayed: the picker must say so.
    let dirty_img = sparse(dir.path(), "dirty.img", 32 * MIB);
    gpt_one_partition(&dirty_img, 24);
    let dirty = Loop::attach(&dirty_img);
    let dirty_p1 = dirty.wait_part(1);
    run("mkfs.ext4", &["-q", "-F", "-L", "tuidirty", &dirty_p1]);
    run(
        "debugfs",
        &["-w", "-R", "feature needs_recovery", &dirty_p1],
    );

    // The picker lists disks sorted by kernel name; repository candidates follow
    // the same order.
    let mut names = [src.name(), repo.name(), tgt.name(), cl.name(), dirty.name()];
    names.sort();
    let idx = |n: &str| names.iter().position(|x| *x == n).unwrap();
    let repo_cand = [src.name(), dirty.name()]
        .iter()
        .filter(|n| **n < repo.name())
        .count();

    let bin = env!("CARGO_BIN_EXE_ironclone");
    let script = format!(
        "TERM=linux IRONCLONE_SCRATCH={} IRONCLONE_ONLY_DISKS={},{},{},{},{} {bin}; echo EXIT=$?; sleep 60",
        path_str(&scratch), src.0, repo.0, tgt.0, cl.0, dirty.0
    );
    let t = Tmux::start("ironclone-tui-real", KEY_DELAY, &script);
    t.wait_for(HOME, 20);

    // The disk picker fills in each disk's filesystem state and used space from a
    // background scan: the unreplayed journal, then the source's used bytes.
    t.step(&["b"], tgt.name(), 20);
    t.down(idx(dirty.name()));
    t.wait_for("journal has not been", 20);
    t.step(&["Escape"], HOME, 20);

    // Backup: source -> repository partition (mounted by the TUI) -> default name.
    t.step(&["b"], tgt.name(), 20);
    t.down(idx(src.name()));
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let s = t.screen();
        let line = s.lines().find(|l| l.contains("tuisrc")).unwrap_or("");
        if line.contains("used") && !line.trim_end_matches([' ', '|']).ends_with('?') {
            assert!(line.contains("MiB"), "used space of the source: {line}");
            break;
        }
        assert!(Instant::now() < end, "no used space for the source:\n{s}");
        std::thread::sleep(Duration::from_millis(200));
    }
    t.step(&["Enter"], "tuirepo", 20);
    t.pick(repo_cand);
    // A new repository: encrypted, the passphrase typed twice (stars on the screen).
    t.wait_for("Backup: a new repository", 20);
    t.step(&["Enter"], "Again:", 20);
    t.type_text("tmux-pass");
    t.keys(&["Enter"]);
    t.type_text("tmux-pass");
    let s = t.wait_for("Again:      *********", 20);
    assert!(!s.contains("tmux-pass"), "{s}");
    t.keys(&["Enter"]);
    let s = t.wait_for("Backup: name the image", 20);
    assert!(s.contains("src-img"), "default name from the source:\n{s}");
    t.step(&["Enter"], "Backup: check and start", 20);
    let done = t.step(&["Enter"], "Verified:", 120);
    assert!(done.contains("every chunk"), "{done}");
    t.step(&["Enter"], HOME, 20);

    // Restore: same repository (unlocked for the session by the backup that made it:
    // no passphrase asked) -> the image -> the target -> plan -> confirm.
    t.step(&["r"], "tuirepo", 20);
    t.pick(repo_cand);
    t.wait_for("src-img", 20);
    t.step(&["Enter"], "OVERWRITE", 20);
    t.pick(idx(tgt.name()));
    let plan = t.wait_for("new start", 20);
    assert!(
        plan.contains("grow"),
        "the partition grows onto 160 MiB:\n{plan}"
    );
    let done = accept_plan_and_erase(&t, tgt.name(), "restored onto");
    assert!(done.contains(&tgt.0), "{done}");
    t.step(&["Enter"], HOME, 20);

    // Clone: source -> the fourth disk, through a temporary repository in scratch.
    t.step(&["c"], "copy FROM", 20);
    t.pick(idx(src.name()));
    t.wait_for("OVERWRITE", 20);
    t.pick(idx(cl.name()));
    t.wait_for("new start", 60);
    let done = accept_plan_and_erase(&t, cl.name(), "cloned onto");
    assert!(done.contains(&cl.0), "{done}");
    assert_eq!(
        std::fs::read_dir(&scratch).map(|d| d.count()).unwrap_or(0),
        0,
        "the clone's temporary repository is removed"
    );
    t.step(&["Enter", "q", "y"], "EXIT=0", 20);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(path_str(&unmount.0)),
        "the TUI unmounts the repository partition it mounted when it quits"
    );

    // The restored and the cloned disk, checked by tools that are not ironclone.
    for (disk, min) in [(&tgt, 64 * MIB), (&cl, 64 * MIB)] {
        check_restored(disk, min, &files, dir.path());
    }
}

/// From the plan screen: accept it, type the target's name where the TUI asks to
/// confirm the erase, and wait for the job's end (`done`); returns that screen.
fn accept_plan_and_erase(t: &Tmux, name: &str, done: &str) -> String {
    t.step(&["Enter"], "ERASE EVERYTHING", 20);
    t.type_text(name);
    t.step(&["Enter"], done, 120)
}

fn check_restored(disk: &Loop, min: u64, files: &[(String, Vec<u8>)], dir: &Path) {
    let tgt_p1 = disk.wait_part(1);
    let (ok, out) = run_status("e2fsck", &["-fn", &tgt_p1]);
    assert!(ok, "e2fsck -fn on the restored partition:\n{out}");
    let size: u64 = run("blockdev", &["--getsize64", &tgt_p1])
        .trim()
        .parse()
        .unwrap();
    assert!(size > min, "{tgt_p1} grew: {size}");
    let out_dir = dir.join(format!("out-{}", disk.name()));
    std::fs::create_dir_all(&out_dir).unwrap();
    for (name, data) in files {
        let dest = out_dir.join(name.replace('/', "_"));
        run(
            "debugfs",
            &["-R", &format!("dump /{name} {}", path_str(&dest)), &tgt_p1],
        );
        let got = std::fs::read(&dest).unwrap_or_default();
        assert!(
            got.len() == data.len() && blake3::hash(&got) == blake3::hash(data),
            "{name}: restored {} bytes differ from the source's {}",
            got.len(),
            data.len()
        );
    }
}
