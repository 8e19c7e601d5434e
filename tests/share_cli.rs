//! `ironclone share` on the host, where no share is reachable: what must hold before any
//! network traffic — refusals with their reasons, and a password typed at the prompt that
//! is never echoed and never printed (the mount itself is proven under QEMU by
//! tests/qemu/test-live-share.sh and test-live-nfs.sh).

mod common;

use common::tmux::Tmux;
use std::process::Command;
use std::time::Duration;

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ironclone"));
    c.args(args).env_remove("IRONCLONE_SHARE_PASSWORD");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run ironclone");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

#[test]
fn refusals_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let mp = dir.path().join("mp");
    let mp = mp.to_str().unwrap();
    let (rc, out) = run(&["share", "mount", "//nas", mp], &[]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("share name is missing"), "{out}");

    let (rc, out) = run(
        &["share", "mount", "//nas/backups", mp],
        &[("IRONCLONE_SHARE_PASSWORD", "topsecret,1")],
    );
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("no --user"), "{out}");
    assert!(!out.contains("topsecret"), "{out}");

    let (rc, out) = run(&["share", "mount", "nas:/export", mp, "--user", "x"], &[]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("NFS exports take no --user"), "{out}");

    let (rc, out) = run(&["share", "mount", "nas:/export", mp, "--vers", "3"], &[]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("not an NFSv4 version"), "{out}");

    let (rc, out) = run(&["share", "umount", mp], &[]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains(mp), "{out}");
}

#[test]
fn prompted_password_is_not_echoed() {
    let bin = env!("CARGO_BIN_EXE_ironclone");
    let dir = tempfile::tempdir().unwrap();
    let mp = dir.path().join("mp");
    // 127.0.0.1 port 445: refused, or no cifs in this kernel; either way the mount fails
    // after the password was read, and the error must name the share, not the password.
    let script = format!(
        "{bin} share mount //127.0.0.1/vault {} --user bob --net-wait 1; echo EXIT=$?; sleep 30",
        mp.display()
    );
    let t = Tmux::start("ironclone-share-pw", Duration::from_millis(50), &script);
    t.wait_for("Password for bob on //127.0.0.1/vault:", 20);
    t.type_text("hunter2,x");
    t.keys(&["Enter"]);
    let screen = t.wait_for("EXIT=", 30);
    assert!(screen.contains("\\\\127.0.0.1\\vault"), "{screen}");
    assert!(!screen.contains("hunter2"), "{screen}");
    assert!(screen.contains("EXIT=1"), "{screen}");
}
