//! Ctrl-C (SIGINT) or SIGTERM during `ironclone backup` is a clean cancel: the backup
//! stops at its next read of the source, publishes no image, removes its lock and its
//! temp files, says so, and the repository stays fit for the next backup. Before the
//! handler (the signals' default action) the process died where it stood and left its
//! lock object behind, which other machines' prune then waited out.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

fn ironclone() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ironclone"))
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        },
    )
}

fn ok(out: Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed: {text}");
    text
}

/// Starts a slowed backup of `src` into `repo`, sends `sig` once its writer lock is in
/// the repository, and returns what it printed.
fn cancelled(src: &Path, repo: &Path, sig: nix::sys::signal::Signal) -> Output {
    let child = ironclone()
        .args(["backup", "--name", "victim"])
        .arg(src)
        .arg(repo)
        // Every read of the source sleeps: the backup takes tens of seconds, the
        // signal comes in its first.
        .env("IRONCLONE_FAULTS", format!("slow:0+{}:200ms", 32 * MIB))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !names(&repo.join("locks"))
        .iter()
        .any(|n| n.starts_with("write-"))
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no writer lock appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, sig).unwrap();
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "the cancel took {:?}: the backup did not stop at its next read",
        t.elapsed()
    );
    out
}

#[test]
fn a_signalled_backup_stops_cleanly_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.img");
    let mut data = vec![0u8; 32 * MIB];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&src, &data).unwrap();
    let repo = dir.path().join("repo");

    for sig in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        let out = cancelled(&src, &repo, sig);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sig}: the backup reported success");
        // Ended by the job, not by the signal's default action (no exit code then).
        assert_eq!(out.status.code(), Some(1), "{sig}: {err}");
        assert!(
            err.contains("backup cancelled") && err.contains("no image victim was published"),
            "{sig}: {err}"
        );
        let locks = names(&repo.join("locks"));
        assert!(locks.is_empty(), "{sig}: locks left behind: {locks:?}");
        let tmp = names(&repo.join("tmp"));
        assert!(tmp.is_empty(), "{sig}: temp files left behind: {tmp:?}");
        let images = ok(
            ironclone().arg("images").arg(&repo).output().unwrap(),
            "images",
        );
        assert!(!images.contains("victim"), "{sig}: {images}");
    }

    // The repository takes the next backup, which verifies.
    ok(
        ironclone()
            .args(["backup", "--name", "after"])
            .arg(&src)
            .arg(&repo)
            .output()
            .unwrap(),
        "the backup after the cancels",
    );
    ok(
        ironclone().arg("verify").arg(&repo).output().unwrap(),
        "verify",
    );
}
