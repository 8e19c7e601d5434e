//! `ironclone disks --json` on real loop devices with real partition tables and
//! filesystems: sizes and sector sizes from the kernel, partition geometry against
//! `sfdisk --json`, filesystems against `blkid -p`, and a mounted partition that
//! shows up and makes the disk a refused target.

use ironclone::discover::{check_target_allowed, list_disks, Refusal, SysPaths};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| {
        panic!("{cmd} is required for this test (scripts/setup.sh installs it): {e}")
    });
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_stdin(cmd: &str, args: &[&str], input: &str) {
    use std::io::Write;
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd} is required: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A loop device we attached; detached (with its partitions) on drop.
struct Loop(String);
impl Loop {
    fn attach(file: &Path, sector: Option<u32>) -> Loop {
        let mut args = vec!["-f".to_string(), "--show".to_string()];
        if let Some(s) = sector {
            args.extend(["-b".to_string(), s.to_string()]);
        }
        args.push(file.display().to_string());
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        Loop(run("losetup", &a).trim().to_string())
    }
    fn part(&self, n: u32) -> String {
        format!("{}p{n}", self.0)
    }
}
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("partx").args(["-d", &self.0]).status();
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn blkid(dev: &str) -> (String, Option<String>, Option<String>) {
    let out = run("blkid", &["-p", "-o", "export", dev]);
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.replace("\\ ", " "))
    };
    let kind = match (get("TYPE").as_deref(), get("VERSION").as_deref()) {
        (Some("vfat"), Some(v)) => v.to_lowercase(),
        (Some(t), _) => t.to_string(),
        (None, _) => panic!("blkid found nothing on {dev}"),
    };
    (kind, get("LABEL"), get("UUID"))
}

fn sparse(dir: &Path, name: &str, mib: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    std::fs::canonicalize(p).unwrap()
}

fn disks_json() -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(["disks", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn entry_for<'a>(disks: &'a [Value], backing: &Path) -> &'a Value {
    disks
        .iter()
        .find(|d| d["backing_file"].as_str() == Some(backing.to_str().unwrap()))
        .unwrap_or_else(|| panic!("no disk with backing file {}", backing.display()))
}

/// Checks every partition of `disk` against sfdisk (geometry) and blkid (filesystem).
fn check_partitions(disk: &Value, lp: &Loop, expected: usize) {
    let sf: Value = serde_json::from_str(&run("sfdisk", &["--json", &lp.0])).unwrap();
    let sector = sf["partitiontable"]["sectorsize"].as_u64().unwrap_or(512);
    let sf_parts = sf["partitiontable"]["partitions"].as_array().unwrap();
    let parts = disk["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), expected);
    assert_eq!(sf_parts.len(), expected);
    for (i, (p, s)) in parts.iter().zip(sf_parts).enumerate() {
        assert_eq!(p["number"].as_u64(), Some(i as u64 + 1));
        assert_eq!(p["path"].as_str(), Some(lp.part(i as u32 + 1).as_str()));
        assert_eq!(
            p["start_bytes"].as_u64(),
            Some(s["start"].as_u64().unwrap() * sector)
        );
        assert_eq!(p["start_lba"].as_u64(), s["start"].as_u64());
        assert_eq!(
            p["size_bytes"].as_u64(),
            Some(s["size"].as_u64().unwrap() * sector)
        );
        let (kind, label, uuid) = blkid(&lp.part(i as u32 + 1));
        let fs = &p["filesystem"];
        assert_eq!(
            fs["kind"].as_str(),
            Some(kind.as_str()),
            "partition {}",
            i + 1
        );
        assert_eq!(fs["label"].as_str().map(str::to_string), label);
        assert_eq!(fs["uuid"].as_str().map(str::to_string), uuid);
        assert_eq!(p["filesystem_source"].as_str(), Some("probe"));
    }
}

#[test]
#[ignore = "needs root"]
fn disks_json_on_real_loop_devices() {
    let dir = tempfile::tempdir().unwrap();

    // Disk A: 512-byte sectors, GPT, ext4 + FAT16.
    let a = sparse(dir.path(), "a.img", 96);
    run_stdin(
        "sfdisk",
        &["-q", a.to_str().unwrap()],
        "label: gpt\n,40M,L\n,48M,L\n",
    );
    let la = Loop::attach(&a, None);
    run("partx", &["-u", &la.0]);
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-L",
            "rootfs",
            "-U",
            "6f1c7a5e-0d3b-4a5e-9b1c-2f4d6e8a0b1c",
            &la.part(1),
        ],
    );
    run(
        "mkfs.fat",
        &["-F", "16", "-n", "EFI", "-i", "12ab34cd", &la.part(2)],
    );

    // Disk B: 4096-byte sectors, MBR, swap + exFAT.
    let b = sparse(dir.path(), "b.img", 64);
    let lb = Loop::attach(&b, Some(4096));
    run_stdin("sfdisk", &["-q", &lb.0], "label: dos\n,16M,82\n,,7\n");
    run("partx", &["-u", &lb.0]);
    run(
        "mkswap",
        &[
            "-L",
            "swp",
            "-U",
            "0c8b3f8e-25a5-4a0d-8f3c-7b7d7c1e2f30",
            &lb.part(1),
        ],
    );
    run("mkfs.exfat", &["-L", "USBDATA", &lb.part(2)]);

    // Disk C: no partition table, NTFS on the whole disk.
    let c = sparse(dir.path(), "c.img", 32);
    let lc = Loop::attach(&c, None);
    run("mkntfs", &["-q", "-F", "-f", "-L", "Whole Disk", &lc.0]);

    let disks = disks_json();
    let dc = entry_for(&disks, &c);
    assert_eq!(dc["partitions"].as_array().map(Vec::len), Some(0));
    let (kind, label, uuid) = blkid(&lc.0);
    assert_eq!(dc["filesystem"]["kind"].as_str(), Some(kind.as_str()));
    assert_eq!(
        dc["filesystem"]["label"].as_str().map(str::to_string),
        label
    );
    assert_eq!(dc["filesystem"]["uuid"].as_str().map(str::to_string), uuid);
    let da = entry_for(&disks, &a);
    assert_eq!(da["path"].as_str(), Some(la.0.as_str()));
    assert_eq!(da["size_bytes"].as_u64(), Some(96 << 20));
    assert_eq!(da["logical_sector_size"].as_u64(), Some(512));
    assert_eq!(da["transport"].as_str(), Some("loop"));
    assert_eq!(da["has_mounted"].as_bool(), Some(false));
    assert!(da["probe_error"].is_null());
    check_partitions(da, &la, 2);
    let db = entry_for(&disks, &b);
    assert_eq!(db["size_bytes"].as_u64(), Some(64 << 20));
    assert_eq!(db["logical_sector_size"].as_u64(), Some(4096));
    check_partitions(db, &lb, 2);

    // Mount disk A's ext4: the mountpoint shows, and the disk is refused as a target.
    let mnt = tempfile::tempdir().unwrap();
    run(
        "mount",
        &["-o", "ro", &la.part(1), mnt.path().to_str().unwrap()],
    );
    let guard = Mounted(mnt.path().to_path_buf());
    // Disk C: no partition table, NTFS on the whole disk.
    let c = sparse(dir.path(), "c.img", 32);
    let lc = Loop::attach(&c, None);
    run("mkntfs", &["-q", "-F", "-f", "-L", "Whole Disk", &lc.0]);

    let disks = disks_json();
    let dc = entry_for(&disks, &c);
    assert_eq!(dc["partitions"].as_array().map(Vec::len), Some(0));
    let (kind, label, uuid) = blkid(&lc.0);
    assert_eq!(dc["filesystem"]["kind"].as_str(), Some(kind.as_str()));
    assert_eq!(
        dc["filesystem"]["label"].as_str().map(str::to_string),
        label
    );
    assert_eq!(dc["filesystem"]["uuid"].as_str().map(str::to_string), uuid);
    let da = entry_for(&disks, &a);
    assert_eq!(da["has_mounted"].as_bool(), Some(true));
    assert_eq!(
        da["partitions"][0]["mountpoints"][0].as_str(),
        Some(mnt.path().to_str().unwrap())
    );
    let lib = list_disks(&SysPaths::default()).unwrap();
    let disk_a = lib
        .iter()
        .find(|d| d.backing_file.as_deref() == Some(a.as_path()))
        .unwrap();
    match check_target_allowed(disk_a) {
        Err(e @ Refusal::Mounted { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&la.part(1)) && msg.contains("96.0 MiB"),
                "{msg}"
            );
        }
        other => panic!("mounted disk not refused: {other:?}"),
    }
    let disk_b = lib
        .iter()
        .find(|d| d.backing_file.as_deref() == Some(b.as_path()))
        .unwrap();
    assert_eq!(check_target_allowed(disk_b), Ok(()));
    drop(guard);
    let lib = list_disks(&SysPaths::default()).unwrap();
    let disk_a = lib
        .iter()
        .find(|d| d.backing_file.as_deref() == Some(a.as_path()))
        .unwrap();
    assert_eq!(
        check_target_allowed(disk_a),
        Ok(()),
        "allowed again once unmounted"
    );
}
