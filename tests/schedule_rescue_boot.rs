//! `schedule run --rescue-boot <uuid>`: the rescue run of a machine whose root is on
//! LUKS or LVM, reading the schedule mirrored to its boot partition
//! (src/schedule/boot_mirror.rs), through the binary on a loop device (root, like
//! tests/schedule_rescue.rs). tests/qemu/test-schedule-rescue-luks.sh runs the whole
//! cycle with a real LUKS root under OVMF.

mod ext_fixture;
mod fsfixture;
mod schedule_common;

use schedule_common::{ic, s, tool};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn ext4_image(path: &Path, mib: u64, uuid: Option<&str>) {
    std::fs::File::create(path)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    let mut a = vec!["-q", "-F"];
    if let Some(u) = uuid {
        a.extend_from_slice(&["-U", u]);
    }
    a.push(s(path));
    tool("mkfs.ext4", &a);
}

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
    let o = ic(&[
        "schedule",
        "init",
        "--root",
        s(&staging),
        "--repo",
        s(&repo),
        "--disks",
        s(&disk),
        "--budget",
        "1G",
    ]);
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
