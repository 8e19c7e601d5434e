//! `schedule run --rescue-boot <uuid>`: the rescue run of a machine whose root is on
//! LUKS or LVM, reading the schedule mirrored to its boot partition
//! (src/schedule/boot_mirror.rs), through the binary on a loop device (root, like
//! tests/schedule_rescue.rs). tests/qemu/test-schedule-rescue-luks.sh runs the whole
//! cycle with a real LUKS root under OVMF.

mod ext_fixture;
mod fsfixture;
mod schedule_common;

use schedule_common::{ext4_image, ic, init, s, status_json, tool};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn put(img: &Path, host: &Path, at: &str) {
    tool(
        "debugfs",
        &["-w", "-R", &format!("write {} {at}", s(host)), s(img)],
    );
}

#[test]
#[ignore = "needs root"]
fn rescue_boot_runs_the_mirrored_schedule_and_records_the_outcome_there() {
    let t = tempfile::tempdir().unwrap();
    // The "/boot" partition: the rescue kernel's folder with the mirrored schedule.
    let uuid = "6b1e0d2a-4c1f-4f6e-9a51-1d0c1a5e00fb";
    let bootimg = t.path().join("boot.img");
    ext4_image(&bootimg, 16, Some(uuid));
    let disk = t.path().join("d1.img");
    ext4_image(&disk, 16, None);
    let repo = t.path().join("repo");
    let staging = t.path().join("staging");
    let o = init(&staging, s(&repo), &[&disk], "1G", &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    tool("debugfs", &["-w", "-R", "mkdir /ironclone", s(&bootimg)]);
    std::fs::write(t.path().join("vmlinuz"), b"kernel").unwrap();
    put(&bootimg, &t.path().join("vmlinuz"), "/ironclone/vmlinuz");
    put(
        &bootimg,
        &staging.join("etc/ironclone/schedule.json"),
        "/ironclone/schedule.json",
    );
    let req = t.path().join("request.json");
    std::fs::write(&req, r#"{"version": 1, "host": "pc8", "pending": null}"#).unwrap();
    put(&bootimg, &req, "/ironclone/request.json");
    let lo = tool("losetup", &["-f", "--show", s(&bootimg)]);
    let lo = lo.trim().to_string();
    struct Detach(String);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = Command::new("losetup").args(["-d", &self.0]).status();
        }
    }
    let _d = Detach(lo.clone());

    // The old word still parses (and checks its UUID); the new one too.
    let o = ic(&["schedule", "run", "--rescue", "not a uuid"]);
    assert!(
        o.stderr.contains("is not a filesystem UUID"),
        "{}",
        o.stderr
    );
    let o = ic(&["schedule", "run", "--rescue-boot", "not a uuid"]);
    assert!(
        o.stderr.contains("is not a filesystem UUID"),
        "{}",
        o.stderr
    );
    let o = ic(&["schedule", "run", "--rescue-boot", uuid, "--rescue", uuid]);
    assert_eq!(o.code, 2, "both words: a usage error");

    let o = ic(&["schedule", "run", "--rescue-boot", uuid]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("(rescue)"), "{}", o.stdout);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("boot-partition"), "left mounted");
    let out = tool("debugfs", &["-R", "cat /ironclone/outcome.json", &lo]);
    let v: Value = serde_json::from_str(&out).expect(&out);
    assert_eq!(v["run"]["ok"], true, "{v}");
    assert_eq!(v["run"]["rescue"], true);
    let image = v["run"]["images"][0]["image"].as_str().unwrap();
    assert!(
        image.starts_with("pc8-d1.img-"),
        "{image}: the mirrored host name"
    );
    let o = ic(&["verify", s(&repo)]);
    assert_eq!(o.code, 0, "{}", o.stderr);

    // A malformed request is the run's recorded error, naming the file.
    std::fs::write(&req, b"{\"version\": 1, \"ho").unwrap();
    tool("debugfs", &["-w", "-R", "rm /ironclone/request.json", &lo]);
    put(Path::new(&lo), &req, "/ironclone/request.json");
    let o = ic(&["schedule", "run", "--rescue-boot", uuid]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("request.json: not valid JSON"),
        "{}",
        o.stderr
    );
    let out = tool("debugfs", &["-R", "cat /ironclone/outcome.json", &lo]);
    let v: Value = serde_json::from_str(&out).expect(&out);
    assert_eq!(v["run"]["ok"], false, "{v}");
    assert!(v["run"]["error"].as_str().unwrap().contains("request.json"));
}

/// An installed system under `staging` whose rescue entry keeps the mirror in `esp`'s
/// EFI/ironclone (as `rescue install` records it for a root on device-mapper).
fn mirrored_entry(staging: &Path, esp: &Path) -> std::path::PathBuf {
    let dir = esp.join("EFI/ironclone");
    std::fs::create_dir_all(&dir).unwrap();
    let rec = serde_json::json!({
        "version": 1, "firmware": "uefi", "dir": dir, "root_uuid": "6b1e",
        "boot_uuid": "1C0E-C1A5", "cmdline": "x", "boot_number": 4, "installed_unix": 1,
    });
    std::fs::write(
        staging.join("etc/ironclone/rescue-entry.json"),
        rec.to_string(),
    )
    .unwrap();
    dir
}

fn outcome(start: u64, ok: bool) -> String {
    serde_json::json!({"version": 1, "run": {
        "start_unix": start, "end_unix": start + 60, "ok": ok, "repo": "/r",
        "images": [{"disk": "/dev/sda", "image": "pc8-sda-2026-12-04-014724", "mode": "rescue",
                    "bytes_read": 1, "new_bytes": 1, "new_stored_bytes": 1}],
        "pruned": [], "repo_bytes": 1, "budget_bytes": 2, "warnings": [],
        "error": (!ok).then_some("disk /dev/sda: backup failed: boom"), "rescue": true,
    }})
    .to_string()
}

#[test]
fn status_and_run_merge_the_outcome_from_the_boot_partition() {
    let t = tempfile::tempdir().unwrap();
    let disk = t.path().join("d1.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let staging = t.path().join("staging");
    let repo = t.path().join("repo");
    let o = init(&staging, s(&repo), &[&disk], "1G", &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let dir = mirrored_entry(&staging, &t.path().join("esp"));
    // Nothing reported yet: status says never.
    let (code, st) = status_json(&staging);
    assert_eq!(code, 0, "{st}");
    assert_eq!(st["last_run"], Value::Null);
    std::fs::write(dir.join("outcome.json"), outcome(1_700_000_000, true)).unwrap();
    let (code, st) = status_json(&staging);
    assert_eq!(code, 0, "{st}");
    assert_eq!(st["last_run"]["rescue"], true, "{st}");
    assert_eq!(st["last_success_unix"], 1_700_000_060);
    assert!(!dir.join("outcome.json").exists(), "merged and removed");
    // A failed rescue run: status exits 1 with its error; the last good image stays.
    std::fs::write(dir.join("outcome.json"), outcome(1_700_001_000, false)).unwrap();
    let o = ic(&["schedule", "status", "--root", s(&staging)]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(
        o.stdout.contains("in the rescue entry): FAILED"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("backup failed: boom"), "{}", o.stdout);
    // A malformed outcome: a warning naming the file; the state is untouched.
    std::fs::write(dir.join("outcome.json"), b"{\"version\": 1, \"run").unwrap();
    let o = ic(&["schedule", "status", "--root", s(&staging)]);
    assert!(
        o.stderr.contains("outcome.json: not valid JSON"),
        "{}",
        o.stderr
    );
    assert!(dir.join("outcome.json").exists());
    // `schedule run` merges first too (then records its own run).
    std::fs::write(dir.join("outcome.json"), outcome(1_700_002_000, true)).unwrap();
    let o = ic(&["schedule", "run", "--root", s(&staging)]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(!dir.join("outcome.json").exists(), "merged by the run");
    let (_, st) = status_json(&staging);
    assert_eq!(
        st["last_run"]["rescue"], false,
        "the run's own record is the last"
    );
}
