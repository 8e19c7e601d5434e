//! `ironclone schedule init|run|status` through the binary, on ext4 disk-image files
//! (made with mkfs.ext4 and filled with debugfs, no mount needed) into local
//! repositories; the full-target, by-UUID and mounted-disk cases use loop devices
//! (root, like tests/disks_loop.rs).

mod ext_fixture;
mod fsfixture;
mod schedule_common;

use schedule_common::{ic, init, s, status_json, tool, Mounted, Out};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `len` pseudo-random bytes (incompressible, distinct per seed) in a host file.
fn random_file(path: &Path, len: usize, seed: u64) {
    // random_bytes ORs its seed with 1: spread ours so seeds 2 and 3 differ.
    let seed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    std::fs::write(path, ext_fixture::random_bytes(seed, len)).unwrap();
}

/// An ext4 disk-image file of `size_mib` holding one random file of `data_mib`.
fn ext4_disk(dir: &Path, name: &str, size_mib: u64, data_mib: usize, seed: u64) -> PathBuf {
    let img = dir.join(name);
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(size_mib << 20).unwrap();
    tool("mkfs.ext4", &["-q", "-F", s(&img)]);
    add_file(&img, &format!("f{seed}"), data_mib, seed);
    img
}

/// Writes a new random file into the ext4 image with debugfs.
fn add_file(img: &Path, name: &str, mib: usize, seed: u64) {
    let src = img.with_extension(format!("src{seed}"));
    random_file(&src, mib << 20, seed);
    tool(
        "debugfs",
        &["-w", "-R", &format!("write {} {name}", s(&src)), s(img)],
    );
    std::fs::remove_file(&src).unwrap();
}

fn run(root: &Path) -> Out {
    ic(&["schedule", "run", "--root", s(root)])
}

/// Image names in a repository, per `ironclone images --json`.
fn images(repo: &Path) -> Vec<String> {
    let o = ic(&["images", s(repo), "--json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

/// Image names hold the time to the second; runs in one second would collide.
fn next_second() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

/// A temp dir holding an ext4 disk image `d1.img` (`size_mib`, `data_mib` of data) and
/// its schedule under `root/`, into the repository `repo/` (not made yet).
struct Setup {
    t: tempfile::TempDir,
    disk: PathBuf,
    root: PathBuf,
    repo: PathBuf,
}

fn setup(size_mib: u64, data_mib: usize, budget: &str, extra: &[&str]) -> Setup {
    let t = tempfile::tempdir().unwrap();
    let disk = ext4_disk(t.path(), "d1.img", size_mib, data_mib, 1);
    let root = t.path().join("root");
    let repo = t.path().join("repo");
    let o = init(&root, s(&repo), &[&disk], budget, extra);
    assert_eq!(o.code, 0, "{}", o.stderr);
    Setup {
        t,
        disk,
        root,
        repo,
    }
}

#[test]
fn init_writes_units_systemd_accepts_and_nothing_outside_root() {
    let t = tempfile::tempdir().unwrap();
    let disk = ext4_disk(t.path(), "d1.img", 16, 1, 1);
    let root = t.path().join("root");
    let repo = t.path().join("repo");
    let o = init(
        &root,
        s(&repo),
        &[&disk],
        "20%",
        &["--calendar", "*-*-* 03:30"],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let unit_dir = root.join("etc/systemd/system");
    let svc = std::fs::read_to_string(unit_dir.join("ironclone-backup.service")).unwrap();
    let tmr = std::fs::read_to_string(unit_dir.join("ironclone-backup.timer")).unwrap();
    for line in [
        "Type=oneshot",
        "Nice=19",
        "IOSchedulingClass=idle",
        "CPUSchedulingPolicy=batch",
        "ConditionACPower=true",
        &format!("ExecStart={} schedule run", env!("CARGO_BIN_EXE_ironclone")),
    ] {
        assert!(svc.lines().any(|l| l == line), "{line} missing:\n{svc}");
    }
    for line in [
        "OnCalendar=*-*-* 03:30",
        "Persistent=true",
        "RandomizedDelaySec=10min",
    ] {
        assert!(tmr.lines().any(|l| l == line), "{line} missing:\n{tmr}");
    }
    // systemctl --root enabled it: the symlink under the root, nothing else.
    let wants = unit_dir.join("timers.target.wants/ironclone-backup.timer");
    assert_eq!(
        std::fs::read_link(&wants).unwrap(),
        Path::new("/etc/systemd/system/ironclone-backup.timer")
    );
    assert!(!repo.exists(), "init must not create the repository");
    // systemd's own parser: it checks the calendar and that ExecStart exists.
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .args([
            unit_dir.join("ironclone-backup.service"),
            unit_dir.join("ironclone-backup.timer"),
        ])
        .output()
        .expect("systemd-analyze");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(root.join("etc/ironclone/schedule.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["version"], 1);
    assert_eq!(cfg["budget"], "20%");
    assert_eq!(cfg["disks"][0], s(&disk));

    let o = init(&root, s(&repo), &[&disk], "1G", &["--allow-battery"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let svc = std::fs::read_to_string(unit_dir.join("ironclone-backup.service")).unwrap();
    assert!(!svc.contains("ConditionACPower"), "{svc}");
}

#[test]
fn init_refuses_bad_input_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let disk = ext4_disk(t.path(), "d1.img", 8, 1, 1);
    let root = t.path().join("root");
    let missing = t.path().join("nope.img");
    // (repo, disks, budget, more arguments, the error's words)
    type Case<'a> = (&'a str, &'a [&'a Path], &'a str, &'a [&'a str], &'a str);
    let cases: &[Case] = &[
        ("/r", &[&missing], "1G", &[], "nope.img: not found"),
        (
            "/r",
            &[&disk],
            "1G",
            &["--calendar", "someday"],
            "Failed to parse calendar",
        ),
        ("/r", &[&disk], "150%", &[], "--budget"),
        ("/r", &[&disk], "lots", &[], "not a size"),
        ("uuid=xyz:/r", &[&disk], "1G", &[], "not a filesystem UUID"),
        ("/r", &[&disk], "1G", &["--keep-last", "0"], "keep_last"),
    ];
    for (repo, disks, budget, extra, want) in cases {
        let o = init(&root, repo, disks, budget, extra);
        assert_eq!(o.code, 1, "{want}: {}", o.stdout);
        assert!(o.stderr.contains(want), "want {want}: {}", o.stderr);
        assert!(!root.exists(), "{want}: files written");
    }
}

#[test]
fn malformed_schedule_names_the_field_in_run_and_status() {
    // `_t` keeps the temp dir alive (`..` would drop it at the end of this line).
    let Setup {
        t: _t, root, repo, ..
    } = setup(8, 1, "1G", &[]);
    let path = root.join("etc/ironclone/schedule.json");
    let good: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let cases: &[(&str, Value, &str)] = &[
        ("budget", Value::from("12 parsecs"), "\"budget\""),
        ("keep_weekly", Value::from(-1), "\"keep_weekly\""),
        ("keep_last", Value::from(0), "\"keep_last\""),
        ("repo", Value::from("relative/repo"), "\"repo\""),
        ("disks", Value::from("/dev/sda"), "\"disks\""),
        ("disks", serde_json::json!([]), "\"disks\""),
        ("calendar", Value::from(""), "\"calendar\""),
        ("allow_battery", Value::from("yes"), "\"allow_battery\""),
        ("version", Value::from(9), "\"version\""),
        ("keep_montly", Value::from(3), "\"keep_montly\""),
    ];
    for (field, value, want) in cases {
        let mut v = good.clone();
        v[*field] = value.clone();
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        let o = run(&root);
        assert_eq!(o.code, 1, "{field}: {}", o.stdout);
        assert!(o.stderr.contains(want), "{field}: {}", o.stderr);
        let (code, st) = status_json(&root);
        assert_eq!(code, 1);
        let e = st["config_error"].as_str().unwrap_or("");
        assert!(e.contains(want), "{field}: {st}");
        assert!(st["last_run"]["error"].as_str().unwrap().contains(want));
    }
    // A missing field is named too; bad JSON says so.
    let mut v = good.clone();
    v.as_object_mut().unwrap().remove("budget");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    assert!(run(&root).stderr.contains("\"budget\""));
    std::fs::write(&path, b"{\"version\": 1,").unwrap();
    assert!(run(&root).stderr.contains("not valid JSON"));
    assert!(
        !repo.exists(),
        "a broken schedule must not touch the repository"
    );
}

#[test]
fn second_run_stores_only_what_changed_and_verifies() {
    let t = tempfile::tempdir().unwrap();
    let d1 = ext4_disk(t.path(), "d1.img", 48, 12, 1);
    let d2 = ext4_disk(t.path(), "d2.img", 16, 2, 2);
    let root = t.path().join("root");
    let repo = t.path().join("repo");
    assert_eq!(init(&root, s(&repo), &[&d1, &d2], "1G", &[]).code, 0);
    let o = run(&root);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let (code, st) = status_json(&root);
    assert_eq!(code, 0);
    let first = &st["last_run"];
    assert_eq!(first["ok"], true);
    assert_eq!(first["images"].as_array().unwrap().len(), 2);
    assert!(first["images"][0]["new_bytes"].as_u64().unwrap() >= 12 << 20);
    assert_eq!(first["images"][0]["mode"], "direct");

    next_second();
    add_file(&d1, "new", 1, 9);
    let o = run(&root);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let (_, st) = status_json(&root);
    let img = &st["last_run"]["images"];
    let new1 = img[0]["new_bytes"].as_u64().unwrap();
    let new2 = img[1]["new_bytes"].as_u64().unwrap();
    // 1 MiB of new data plus the metadata blocks debugfs touched, in whole chunks.
    assert!(
        (1 << 20..6 << 20).contains(&new1),
        "d1 stored {new1} new bytes"
    );
    assert!(new2 < 1 << 20, "unchanged d2 stored {new2} new bytes");
    let names = images(&repo);
    assert_eq!(names.len(), 4, "{names:?}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(
        names[0].starts_with(&format!("{}-d1.img-20", host.trim())),
        "{names:?}"
    );
    let v = ic(&["verify", s(&repo)]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(st["last_success_unix"].as_u64().is_some());
}

#[test]
fn tiny_budget_prunes_older_images_keeps_the_newest() {
    let Setup {
        t: _t,
        disk: d1,
        root,
        repo,
    } = setup(32, 4, "6M", &["--keep-last", "5"]);
    let mut made = Vec::new();
    for i in 0..3u64 {
        if i > 0 {
            next_second();
            // Each run's data replaces the last one's: old chunks only the old image has.
            tool("debugfs", &["-w", "-R", &format!("rm f{}", i), s(&d1)]);
            add_file(&d1, &format!("f{}", i + 1), 4, i + 1);
        }
        let o = run(&root);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let (_, st) = status_json(&root);
        made.push(
            st["last_run"]["images"][0]["image"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        assert!(st["last_run"]["repo_bytes"].as_u64().unwrap() <= 6 << 20 || i == 0);
    }
    // 4 MiB per image under a 6 MiB budget: only the newest fits.
    assert_eq!(images(&repo), vec![made[2].clone()]);
    let (_, st) = status_json(&root);
    assert_eq!(st["last_run"]["pruned"], serde_json::json!([made[1]]));
    let v = ic(&["verify", s(&repo)]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    // Under a budget the newest alone exceeds, it is still kept, with a warning.
    assert_eq!(init(&root, s(&repo), &[&d1], "1M", &[]).code, 0);
    next_second();
    let o = run(&root);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("over its budget"), "{}", o.stderr);
    assert_eq!(images(&repo).len(), 1);
}

#[test]
fn unreachable_repository_fails_clearly() {
    let t = tempfile::tempdir().unwrap();
    let d1 = ext4_disk(t.path(), "d1.img", 8, 1, 1);
    let root = t.path().join("root");
    let cases = [
        (
            format!("{}/unplugged/repo", s(t.path())),
            "is the backup disk attached",
        ),
        (
            "uuid=0badc0de-0000-4000-8000-000000000000:/repo".to_string(),
            "no filesystem with UUID 0badc0de-0000-4000-8000-000000000000 is attached",
        ),
    ];
    for (repo, want) in &cases {
        assert_eq!(init(&root, repo, &[&d1], "1G", &[]).code, 0);
        let o = run(&root);
        assert_eq!(o.code, 1, "{}", o.stdout);
        assert!(o.stderr.contains(want), "{}", o.stderr);
        let (code, st) = status_json(&root);
        assert_eq!(code, 1);
        assert!(st["last_run"]["error"].as_str().unwrap().contains(want));
        assert_eq!(st["last_run"]["ok"], false);
        let text = ic(&["schedule", "status", "--root", s(&root)]);
        assert!(text.stdout.contains("FAILED") && text.stdout.contains(want));
    }
}

/// A loop device over a file; detached on drop.
struct Loop(String);
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

fn mount_count(text: &str) -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(text))
        .count()
}

#[test]
fn the_disk_holding_the_repository_is_refused() {
    // The repository's filesystem (found by UUID and mounted by the run) is on the
    // very disk configured: imaging it would read a filesystem the run is writing.
    let t = tempfile::tempdir().unwrap();
    let disk = t.path().join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    tool("mkfs.ext4", &["-q", "-F", s(&disk)]);
    let uuid = tool(
        "blkid",
        &["-c", "/dev/null", "-s", "UUID", "-o", "value", s(&disk)],
    );
    let uuid = uuid.trim();
    let lo = Loop(
        tool("losetup", &["-f", "--show", s(&disk)])
            .trim()
            .to_string(),
    );
    let root = t.path().join("root");
    let loc = format!("uuid={uuid}:/repo");
    assert_eq!(init(&root, &loc, &[Path::new(&lo.0)], "100%", &[]).code, 0);
    let o = run(&root);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("holds the repository") && o.stderr.contains(&lo.0),
        "{}",
        o.stderr
    );
    assert!(!o.stdout.contains("image "), "{}", o.stdout);
    assert_eq!(mount_count(&format!("repo-{uuid}")), 0);
}

#[test]
fn full_target_by_uuid_fails_clearly_and_leaves_no_image() {
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target.img");
    std::fs::File::create(&target)
        .unwrap()
        .set_len(24 << 20)
        .unwrap();
    tool("mkfs.ext4", &["-q", "-F", "-m", "0", s(&target)]);
    let uuid = tool(
        "blkid",
        &["-c", "/dev/null", "-s", "UUID", "-o", "value", s(&target)],
    );
    let uuid = uuid.trim();
    let lo = Loop(
        tool("losetup", &["-f", "--show", s(&target)])
            .trim()
            .to_string(),
    );
    let d1 = ext4_disk(t.path(), "d1.img", 64, 2, 1);
    let root = t.path().join("root");
    let loc = format!("uuid={uuid}:/backups/repo");
    assert_eq!(init(&root, &loc, &[&d1], "100%", &[]).code, 0);
    let o = run(&root);
    assert_eq!(o.code, 0, "{}", o.stderr);
    // The run mounted the filesystem only for itself.
    assert_eq!(mount_count(&format!("repo-{uuid}")), 0);

    next_second();
    add_file(&d1, "big", 30, 7);
    let o = run(&root);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(o.stderr.contains("No space left"), "{}", o.stderr);
    let (code, st) = status_json(&root);
    assert_eq!(code, 1);
    assert!(st["last_run"]["error"]
        .as_str()
        .unwrap()
        .contains("No space left"));
    assert!(st["last_success_unix"].as_u64().is_some());
    assert_eq!(mount_count(&format!("repo-{uuid}")), 0);

    let mp = t.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    tool("mount", &["-o", "ro", &lo.0, s(&mp)]);
    let m = Mounted(mp.clone());
    let repo = mp.join("backups/repo");
    // Only the first image; the failed one left neither a manifest nor packs (pruned).
    let names = images(&repo);
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(
        st["last_run"]["images"].as_array().map(Vec::len),
        Some(0),
        "{st}"
    );
    let v = ic(&["verify", s(&repo)]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    // Of the 20 MiB the failed backup wrote, nothing is left (tmp/ nor packs/).
    let left = tool("du", &["-sb", s(&repo)]);
    let left: u64 = left.split_whitespace().next().unwrap().parse().unwrap();
    assert!(left < 6 << 20, "{left} bytes left in the repository");
    drop(m);
}

#[test]
fn disk_mounted_read_write_is_refused_read_only_is_imaged() {
    let Setup {
        t,
        disk: d1,
        root,
        repo,
    } = setup(16, 1, "1G", &[]);
    let mp = t.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    tool("mount", &["-o", "loop", s(&d1), s(&mp)]);
    let m = Mounted(mp.clone());
    let o = run(&root);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(
        o.stderr.contains("mounted read-write") && o.stderr.contains("rescue-entry"),
        "{}",
        o.stderr
    );
    assert!(!repo.exists(), "refused before the repository was touched");
    drop(m);
    tool("mount", &["-o", "loop,ro", s(&d1), s(&mp)]);
    let m = Mounted(mp.clone());
    let o = run(&root);
    assert_eq!(o.code, 0, "{}", o.stderr);
    drop(m);
}
