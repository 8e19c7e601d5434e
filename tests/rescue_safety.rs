//! The CLI's safety around rescue (issue 9): BLKROSET on a block-device source while
//! it is read, and refusal of restore targets that have a mounted partition or whose
//! identity changed between planning and writing; nothing is written in either case.

mod rescue_common;

use rescue_common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[test]
#[ignore = "needs root"]
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
#[ignore = "needs root"]
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
#[ignore = "needs root"]
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
