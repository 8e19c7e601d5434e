//! Shared helpers for integration tests: temp dirs, sparse files, running the
//! reference tools with their stderr shown on failure, and loop devices that are
//! always detached (Drop guard) so a failing test never leaks one; `tmux` is the real
//! terminal the TUI tests drive.
#![allow(dead_code)]

pub mod tmux;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ironclone-test-")
        .tempdir()
        .expect("create tempdir")
}

/// Fails the test with a clear message when a reference tool is missing.
pub fn require_tool(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
        || ["/sbin", "/usr/sbin"]
            .iter()
            .any(|d| Path::new(d).join(name).is_file());
    assert!(
        found,
        "required tool `{name}` is not installed (run `make setup`)"
    );
}

/// Runs `cmd args...` (optionally feeding `stdin`), asserts exit status 0 and
/// returns stdout. On failure the panic shows the command, status and stderr.
pub fn run_in(cmd: &str, args: &[&str], stdin: Option<&str>) -> String {
    require_tool(cmd);
    let mut c = Command::new(cmd);
    c.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn {cmd}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "`{cmd} {}` failed with {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn run(cmd: &str, args: &[&str]) -> String {
    run_in(cmd, args, None)
}

/// Runs a command and returns (success, stdout+stderr) without asserting.
pub fn run_status(cmd: &str, args: &[&str]) -> (bool, String) {
    require_tool(cmd);
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd}: {e}"));
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), s)
}

/// A sparse file of `size` bytes in `dir`.
pub fn sparse(dir: &Path, name: &str, size: u64) -> PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).expect("create sparse file");
    f.set_len(size).expect("set_len");
    p
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `sfdisk --json` of a file or device, parsed.
pub fn sfdisk_json(p: &Path) -> serde_json::Value {
    let out = run("sfdisk", &["--json", path_str(p)]);
    serde_json::from_str(&out).expect("sfdisk --json output")
}

/// A loop device attached to a file for the life of this value.
pub struct LoopDev {
    pub path: PathBuf,
}

impl LoopDev {
    pub fn attach(file: &Path, sector_size: Option<u32>) -> Self {
        let mut args = vec!["-f".to_string(), "--show".to_string()];
        if let Some(ss) = sector_size {
            args.push("-b".into());
            args.push(ss.to_string());
        }
        args.push(path_str(file).to_string());
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let out = run("losetup", &a);
        LoopDev {
            path: PathBuf::from(out.trim()),
        }
    }
}

impl LoopDev {
    /// `attach` with the partition table scanned: waits for the nodes of partitions
    /// 1..=`parts` (losetup -P does not always scan here; partx adds what is missing).
    pub fn attach_scanned(file: &Path, parts: u32) -> Self {
        let out = run("losetup", &["-P", "-f", "--show", path_str(file)]);
        let lo = LoopDev {
            path: PathBuf::from(out.trim()),
        };
        let _ = run_status("partx", &["-a", path_str(&lo.path)]);
        for n in 1..=parts {
            let node = lo.part(n);
            for _ in 0..100 {
                if node.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            assert!(node.exists(), "{} did not appear", node.display());
        }
        lo
    }

    /// The node of partition `n`.
    pub fn part(&self, n: u32) -> PathBuf {
        PathBuf::from(format!("{}p{n}", self.path.display()))
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
    }
}

/// A small deterministic RNG (xorshift64*), so garbage tests are reproducible
/// without pulling in a crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

/// Asserts our layout says what `sfdisk --json` says: label, disk id, and per
/// partition the number, start, size, type, uuid and name.
pub fn assert_matches_sfdisk(layout: &ironclone::table::DiskLayout, sf: &serde_json::Value) {
    use ironclone::table::{PartType, TableKind};
    let t = &sf["partitiontable"];
    let label = t["label"].as_str().expect("label");
    match layout.kind {
        TableKind::Gpt => {
            assert_eq!(label, "gpt");
            assert_eq!(
                t["id"].as_str().expect("id").to_lowercase(),
                layout.disk_guid.expect("disk guid").to_string()
            );
            assert_eq!(
                t["lastlba"].as_u64(),
                layout.gpt.as_ref().map(|g| g.last_usable_lba.get())
            );
        }
        TableKind::Mbr => {
            assert_eq!(label, "dos");
            assert_eq!(
                t["id"].as_str().expect("id"),
                format!("0x{:08x}", layout.disk_signature.expect("signature"))
            );
        }
        TableKind::None => panic!("sfdisk found a table, we found none: {sf}"),
    }
    if let Some(ss) = t["sectorsize"].as_u64() {
        assert_eq!(ss, u64::from(layout.sector_size));
    }
    let empty = vec![];
    let theirs = t["partitions"].as_array().unwrap_or(&empty);
    assert_eq!(
        theirs.len(),
        layout.partitions.len(),
        "partition count: sfdisk {sf}\nours {layout:#?}"
    );
    for sp in theirs {
        let node = sp["node"].as_str().expect("node");
        let digits: String = node
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let number: u32 = digits.parse().expect("partition number in node");
        let p = layout
            .partitions
            .iter()
            .find(|p| p.number == number)
            .unwrap_or_else(|| panic!("we have no partition {number}: {layout:#?}"));
        assert_eq!(
            sp["start"].as_u64(),
            Some(p.start_lba.get()),
            "start of {number}"
        );
        let size = sp["size"].as_u64().expect("size");
        assert_eq!(size, p.sectors(), "size of {number}");
        assert_eq!(p.size_bytes, size * u64::from(layout.sector_size));
        match p.ptype {
            PartType::Gpt(u) => {
                assert_eq!(
                    sp["type"].as_str().map(|s| s.to_lowercase()),
                    Some(u.to_string())
                );
                assert_eq!(
                    sp["uuid"].as_str().map(|s| s.to_lowercase()),
                    p.uuid.map(|u| u.to_string()),
                    "uuid of {number}"
                );
                assert_eq!(
                    sp["name"].as_str().unwrap_or(""),
                    p.name.as_deref().unwrap_or(""),
                    "name of {number}"
                );
            }
            PartType::Mbr(b) => {
                assert_eq!(
                    sp["type"].as_str(),
                    Some(format!("{b:x}").as_str()),
                    "type of {number}"
                );
                assert_eq!(sp["bootable"].as_bool().unwrap_or(false), p.bootable);
            }
        }
    }
}

/// A repository's manifest or index file as JSON: zstd-compressed from repository
/// format 2, plain before.
pub fn json_file_bytes(b: Vec<u8>) -> Vec<u8> {
    match b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        true => zstd::decode_all(&b[..]).unwrap(),
        false => b,
    }
}
