//! Repositories over SFTP on the test's own sshd (tests/sftp_common): key login,
//! known_hosts checked. Needs root (sshd).

mod repo_common;
mod sftp_common;
mod storage_common;

use repo_common::mixed_data;
use sftp_common::Server;
use std::path::Path;
use std::process::Output;

const MIB: usize = 1 << 20;

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "ironclone failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn backup_restore_verify_prune_over_sftp_and_an_unknown_host_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    let len = 12 * MIB;
    let data = mixed_data(len, 11);
    let src = dir.path().join("disk.img");
    std::fs::write(&src, &data).unwrap();
    let s = src.to_str().unwrap();
    let repo = srv.url("repo");

    // Unknown host key: refused, clearly, before anything is written.
    let o = srv.ironclone(&["backup", s, &repo, "--name", "a"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("host key is not trusted"),
        "{e}"
    );
    assert!(!dir.path().join("repo").exists(), "something was written");

    srv.trust_host_key();
    ok(&srv.ironclone(&["backup", s, &repo, "--name", "a"]));
    assert!(ok(&srv.ironclone(&["images", &repo])).contains('a'));
    // The objects are today's layout: the same directory opens as a local repository.
    assert!(dir.path().join("repo/config").is_file());
    let out = dir.path().join("out.img");
    std::fs::File::create(&out)
        .unwrap()
        .set_len(len as u64)
        .unwrap();
    ok(&srv.ironclone(&["restore", &repo, "a", out.to_str().unwrap(), "--yes"]));
    assert!(std::fs::read(&out).unwrap() == data, "restore differs");
    assert!(ok(&srv.ironclone(&["verify", &repo])).contains("ok"));
    assert!(ok(&srv.ironclone(&["prune", &repo])).contains("1 image(s) kept"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("repo/tmp"))
        .unwrap()
        .chain(std::fs::read_dir(dir.path().join("repo/locks")).unwrap())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Accepting a new host key explicitly works and remembers it.
    std::fs::remove_file(dir.path().join("known_hosts")).unwrap();
    ok(&srv.ironclone(&["images", &repo, "--sftp-accept-new-host-key"]));
    let kh = std::fs::read_to_string(dir.path().join("known_hosts")).unwrap();
    // Debian's ssh hashes the host name; the key itself is there as is.
    let key = std::fs::read_to_string(dir.path().join("host_key.pub")).unwrap();
    let key = key.split_whitespace().nth(1).unwrap();
    assert!(kh.contains(key), "{kh}");
}

/// An encrypted repository on SFTP: its key slot, sealed objects and MAC'd config all
/// go through the storage, and a wrong passphrase is refused there as locally.
#[test]
fn encrypted_repository_over_sftp() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    srv.trust_host_key();
    let len = 8 * MIB;
    let data = mixed_data(len, 12);
    let src = dir.path().join("disk.img");
    std::fs::write(&src, &data).unwrap();
    let repo = srv.url("enc");
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "correct horse sftp").unwrap();
    let with_pass = |args: &[&str], file: &Path| {
        let mut a = args.to_vec();
        a.extend(["--password-file", file.to_str().unwrap()]);
        srv.ironclone(&a)
    };
    let s = src.to_str().unwrap();
    ok(&with_pass(
        &["backup", s, &repo, "--name", "e", "--encrypt"],
        &pass,
    ));
    assert!(
        std::fs::read_dir(dir.path().join("enc/keys"))
            .unwrap()
            .count()
            == 1,
        "no key slot object on the server"
    );
    let cfg = std::fs::read_to_string(dir.path().join("enc/config")).unwrap();
    assert!(cfg.contains("\"mac\""), "config not sealed: {cfg}");
    let out = dir.path().join("out.img");
    std::fs::File::create(&out)
        .unwrap()
        .set_len(len as u64)
        .unwrap();
    ok(&with_pass(
        &["restore", &repo, "e", out.to_str().unwrap(), "--yes"],
        &pass,
    ));
    assert!(std::fs::read(&out).unwrap() == data, "restore differs");
    assert!(ok(&with_pass(&["verify", &repo], &pass)).contains("ok"));
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not it").unwrap();
    let o = with_pass(&["images", &repo], &wrong);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("wrong passphrase"), "{e}");
}

/// A manifest of several parts (1 MiB parts, knob; 450 MiB of 4 KiB chunks: ~4.5 MiB
/// of manifest, 3 parts written before the last full one and the tail) is streamed to a temp file and renamed into place; a backup killed
/// before the rename (held there, parts written) leaves that temp file, no image.
#[test]
fn manifest_is_streamed_to_a_temp_file_over_sftp() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    srv.trust_host_key();
    let src = dir.path().join("disk.img");
    storage_common::numbered_blocks(&src, 450, 4096);
    let s = src.to_str().unwrap();
    let repo = srv.url("big");
    let backup = |name: &str| {
        let mut c = srv.command(&["backup", s, &repo, "--name", name]);
        c.arg("--sftp-key")
            .arg(dir.path().join("user_key"))
            .env("IRONCLONE_CHUNKING", "4096,4096")
            .env("IRONCLONE_REMOTE_PART_MIB", "1");
        c
    };
    ok(&backup("big").output().unwrap());
    let len = std::fs::metadata(dir.path().join("big/images/big.json"))
        .unwrap()
        .len();
    assert!(
        len > 2 * MIB as u64,
        "manifest of {len} bytes: under 3 parts"
    );
    assert!(ok(&srv.ironclone(&["verify", &repo])).contains("ok"));
    let tmp = dir.path().join("big/tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "temp files left"
    );

    let mut child = spawn_held(backup("killed"), &dir.path().join("go"));
    child.kill().unwrap();
    child.wait().unwrap();
    let partial: Vec<u64> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    assert!(
        partial.iter().any(|&l| l >= 2 * MIB as u64),
        "no temp file with the parts written so far: {partial:?}"
    );
    assert!(!dir.path().join("big/images/killed.json").exists());
    let images = ok(&srv.ironclone(&["images", &repo]));
    assert!(
        images.contains("big") && !images.contains("killed"),
        "{images}"
    );
}

/// The connection drops after the manifest was streamed, before it is renamed into
/// place (the backup held there; the server's sessions killed): the backup streams
/// its manifest again over a new connection, says so, and ends with an image that
/// verifies and no temp file left.
#[test]
fn manifest_is_written_again_after_the_connection_drops() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    srv.trust_host_key();
    let src = dir.path().join("disk.img");
    std::fs::write(&src, mixed_data(24 * MIB, 7)).unwrap();
    let repo = srv.url("again");
    let go = dir.path().join("go");
    let mut c = srv.command(&["backup", src.to_str().unwrap(), &repo, "--name", "again"]);
    c.arg("--sftp-key").arg(dir.path().join("user_key"));
    let child = spawn_held(c, &go);
    assert!(srv.drop_connections() > 0, "no session to drop");
    std::fs::write(&go, b"").unwrap();
    let status = child.wait_with_output().unwrap().status;
    let err = std::fs::read_to_string(go.with_extension("stderr")).unwrap();
    assert!(status.success(), "the backup failed: {err}");
    assert!(
        err.contains("writing it again"),
        "no second try of the manifest reported: {err}"
    );
    assert!(ok(&srv.ironclone(&["verify", &repo])).contains("ok"));
    let left = std::fs::read_dir(dir.path().join("again/tmp"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "temp files left");
}

/// A backup to a remote repository keeps its scratch files where `--scratch` says;
/// when its chunk list cannot fit there (a 256 KiB tmpfs: RAM, as the live system's
/// /tmp), it is refused before any pack is written, naming the folder and the sizes.
#[test]
fn a_scratch_folder_too_small_is_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    srv.trust_host_key();
    let src = dir.path().join("disk.img");
    std::fs::write(&src, mixed_data(24 * MIB, 11)).unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _u = Unmount(&small);
    let repo = srv.url("tight");
    let backup = |scratch: Option<&Path>| {
        let mut c = srv.command(&["backup", src.to_str().unwrap(), &repo, "--name", "t"]);
        c.arg("--sftp-key")
            .arg(dir.path().join("user_key"))
            .env("IRONCLONE_CHUNKING", "4096,4096");
        if let Some(s) = scratch {
            c.arg("--scratch").arg(s);
        }
        c.output().unwrap()
    };
    // 6144 chunks of 4 KiB: 276 KiB of chunk list.
    let out = backup(Some(&small));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a backup that cannot fit ran");
    assert!(
        err.contains("chunk list needs 1 MiB of scratch space"),
        "{err}"
    );
    assert!(
        err.contains(&small.display().to_string()) && err.contains("RAM here"),
        "{err}"
    );
    let packs = dir.path().join("tight/packs");
    let stored = walk_files(&packs);
    assert_eq!(stored, 0, "packs written before the refusal");
    // The same backup with its scratch elsewhere stores its image.
    assert!(backup(None).status.success());
    assert!(ok(&srv.ironclone(&["images", &repo])).contains('t'));
}

fn walk_files(d: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(d) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Starts `backup` held before its manifest is published
/// (`IRONCLONE_TEST_HOLD_MANIFEST=go`; stderr to `go.stderr`, a file, so no pipe can
/// fill while nobody reads it) and waits until it is held there; creating `go` lets it
/// go on.
fn spawn_held(mut backup: std::process::Command, go: &Path) -> std::process::Child {
    let mut held = go.as_os_str().to_owned();
    held.push(".held");
    let child = backup
        .env("IRONCLONE_TEST_HOLD_MANIFEST", go)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(go.with_extension("stderr")).unwrap())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !Path::new(&held).exists() {
        assert!(std::time::Instant::now() < end, "the backup never got held");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child
}
