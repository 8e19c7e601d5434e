//! What tests/schedule.rs and tests/schedule_rescue.rs both need: the binary run with
//! its exit code and output, a tool that must succeed, `schedule status --json`, and
//! a mount undone on drop.
#![allow(dead_code)]

use crate::ext_fixture;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn ic(args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(args)
        .output()
        .expect("run ironclone");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

pub fn tool(cmd: &str, args: &[&str]) -> String {
    ext_fixture::run(Command::new(cmd).args(args))
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn status_json(root: &Path) -> (i32, Value) {
    let o = ic(&["schedule", "status", "--root", s(root), "--json"]);
    (o.code, serde_json::from_str(&o.stdout).expect(&o.stdout))
}

/// A mount made by the test; unmounted on drop.
pub struct Mounted(pub PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A `mib` MiB file holding a fresh ext4 (with filesystem UUID `uuid` if given).
pub fn ext4_image(path: &Path, mib: u64, uuid: Option<&str>) {
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

/// `schedule init --root ROOT --repo REPO --disks D1,D2 --budget BUDGET EXTRA...`.
pub fn init(root: &Path, repo: &str, disks: &[&Path], budget: &str, extra: &[&str]) -> Out {
    let d: Vec<&str> = disks.iter().map(|p| s(p)).collect();
    let joined = d.join(",");
    let mut a = vec![
        "schedule",
        "init",
        "--root",
        s(root),
        "--repo",
        repo,
        "--disks",
        &joined,
        "--budget",
        budget,
    ];
    a.extend_from_slice(extra);
    ic(&a)
}
