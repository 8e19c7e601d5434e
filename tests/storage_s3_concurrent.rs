//! Many machines, one repository: concurrent `ironclone` processes writing one
//! encrypted repository on a SeaweedFS cluster (tests/storage_common, 127.0.0.1
//! only). Four backups of different fixture machines at once; a prune while a
//! fifth backup is provably in flight (IRONCLONE_TEST_HOLD_MANIFEST) and has reused
//! chunks of a pack that prune finds unused; a backup killed with SIGKILL before its
//! manifest; concurrent backups through a proxy that fails every Nth request. Each
//! image is verified and restored byte-identical to its source.

mod repo_common;
mod storage_common;

use ironclone::repo::storage::{self, Storage};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use storage_common::proxy::FailingProxy;
use storage_common::{ok, s3_ironclone, s3_store, Cluster, ACCESS_KEY, SECRET_KEY};

const PASS: &str = "many machines one repo";
const MIB: usize = 1 << 20;

fn cmd(endpoint: &str, args: &[&str]) -> Command {
    let mut c = s3_ironclone(endpoint, SECRET_KEY, args);
    c.env("IRONCLONE_PASSWORD", PASS)
        // Cheap Argon2id for the test's key slot.
        .env("IRONCLONE_KDF", "8,1,1")
        .env_remove("IRONCLONE_TEST_HOLD_MANIFEST")
        .env_remove(ironclone::repo::LOCK_STALE_ENV)
        .stdin(Stdio::null());
    c
}

fn run(endpoint: &str, args: &[&str]) -> Output {
    cmd(endpoint, args).output().expect("run ironclone")
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ironclone")
}

fn names(s: &dyn Storage, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .list(prefix)
        .expect("list")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    v.sort();
    v
}

/// A fixture machine: a 16 MiB ext4 or FAT image holding a file of its own, a text
/// file and (`shared`) a file other machines have too, made with mke2fs -d /
/// mkfs.vfat + mcopy.
fn machine(dir: &Path, name: &str, fat: bool, seed: u64, shared: bool) -> PathBuf {
    let files = dir.join(format!("{name}.d"));
    std::fs::create_dir_all(&files).unwrap();
    let mut own = vec![0u8; 2 * MIB];
    repo_common::fill_random(&mut own, seed);
    std::fs::write(files.join("own.bin"), own).unwrap();
    let mut text = vec![0u8; MIB / 2];
    repo_common::fill_text(&mut text, seed);
    std::fs::write(files.join("notes.txt"), text).unwrap();
    let mut common = vec![0u8; MIB];
    repo_common::fill_random(&mut common, if shared { 999 } else { seed + 1 });
    std::fs::write(files.join("shared.bin"), common).unwrap();
    let img = dir.join(format!("{name}.img"));
    std::fs::File::create(&img)
        .unwrap()
        .set_len(16 * MIB as u64)
        .unwrap();
    let tool = |c: &mut Command| {
        let o = c.output().expect("mkfs tool");
        assert!(
            o.status.success(),
            "{c:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    if fat {
        tool(Command::new("mkfs.vfat").args(["-F", "16"]).arg(&img));
        for f in ["own.bin", "notes.txt", "shared.bin"] {
            tool(
                Command::new("mcopy")
                    .arg("-i")
                    .arg(&img)
                    .arg(files.join(f))
                    .arg("::/"),
            );
        }
    } else {
        tool(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-d"])
                .arg(&files)
                .arg(&img),
        );
    }
    img
}

fn restore_matches(endpoint: &str, dir: &Path, repo: &str, image: &str, src: &Path) {
    let out = dir.join(format!("{image}.restored"));
    std::fs::File::create(&out)
        .unwrap()
        .set_len(16 * MIB as u64)
        .unwrap();
    ok(&run(
        endpoint,
        &["restore", repo, image, out.to_str().unwrap(), "--yes"],
    ));
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(src).unwrap(),
        "restore of {image} differs from its source"
    );
    std::fs::remove_file(&out).unwrap();
}

fn wait_file(p: &Path, secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !p.exists() {
        assert!(Instant::now() < end, "{} did not appear", p.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn prune_json(endpoint: &str, repo: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let mut c = cmd(endpoint, &["prune", repo, "--json"]);
    c.envs(env.iter().copied());
    let out = ok(&c.output().unwrap());
    let last = out.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(last).expect("prune's JSON report");
    v["report"].clone()
}

#[test]
fn concurrent_backups_prune_during_a_backup_killed_backup_and_flaky_store_on_s3() {
    storage_common::require_weed();
    // The test's own listings of the bucket use the same key as the processes.
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cluster = Cluster::start(&dir.join("weed"));
    cluster.bucket("multi");
    let ep = cluster.s3_endpoint.as_str();
    let repo = "s3://multi/fleet";
    let st = s3_store(ep, repo);
    let srcs: Vec<PathBuf> = (0..6)
        .map(|i| machine(dir, &format!("m{i}"), i % 2 == 1, 100 + i as u64, i < 4))
        .collect();
    let s = |i: usize| srcs[i].to_str().unwrap();
    eprintln!("cluster and fixtures in {:?}", t0.elapsed());

    // The repository is created (encrypted) by a first backup of machine 5 (sharing
    // nothing with the others); that image is deleted again, so its packs are
    // garbage that a later backup of machine 5 reuses.
    ok(&run(
        ep,
        &["backup", s(5), repo, "--name", "old", "--encrypt"],
    ));
    let old_packs = names(st.as_ref(), "packs/");

    // Four machines at once.
    let kids: Vec<Child> = (0..4)
        .map(|i| spawn(cmd(ep, &["backup", s(i), repo, "--name", &format!("m{i}")])))
        .collect();
    for k in kids {
        ok(&k.wait_with_output().unwrap());
    }
    let listed = ok(&run(ep, &["images", repo]));
    for i in 0..4 {
        assert!(listed.contains(&format!("m{i}")), "{listed}");
    }
    assert!(names(st.as_ref(), "locks/").is_empty(), "writer locks left");
    eprintln!("four concurrent backups done at {:?}", t0.elapsed());

    // A fifth backup (machine 5 again, reusing the old image's chunks) is held
    // before its manifest; prune runs meanwhile: it may only mark.
    st.delete("images/old.json").unwrap();
    let go = dir.join("go5");
    let mut c5 = cmd(ep, &["backup", s(5), repo, "--name", "m5"]);
    c5.env("IRONCLONE_TEST_HOLD_MANIFEST", &go);
    let k5 = spawn(c5);
    wait_file(&dir.join("go5.held"), 120);
    let writers = names(st.as_ref(), "locks/write-");
    assert_eq!(writers.len(), 1, "{writers:?}");
    let r = prune_json(ep, repo, &[]);
    assert_eq!(r["packs_deleted"], 0, "{r}");
    assert!(
        r["packs_marked"].as_u64().unwrap() >= old_packs.len() as u64,
        "{r}"
    );
    assert_eq!(
        r["waiting_for"][0].as_str(),
        Some(writers[0].as_str()),
        "{r}"
    );
    assert!(
        old_packs.iter().all(|p| names(st.as_ref(), p).len() == 1),
        "a pack a running backup reuses was deleted"
    );
    std::fs::write(&go, b"").unwrap();
    ok(&k5.wait_with_output().unwrap());
    // The backup ended having reused the marked packs: the sweep keeps them.
    let r = prune_json(ep, repo, &[]);
    assert!(r["packs_kept"].as_u64().unwrap() >= 1, "{r}");
    assert!(names(st.as_ref(), "prune/").is_empty(), "marks left: {r}");
    assert!(ok(&run(ep, &["verify", repo])).contains("ok"));
    // Partial verifies: halves 1/2 and 2/2 read every pack once between them.
    let mut read = 0;
    for half in ["1/2", "2/2"] {
        let o = ok(&run(
            ep,
            &["verify", repo, "--read-data-subset", half, "--json"],
        ));
        let v: serde_json::Value = serde_json::from_str(o.lines().last().unwrap()).unwrap();
        read += v["report"]["packs_checked"].as_u64().unwrap();
    }
    assert_eq!(read, names(st.as_ref(), "packs/").len() as u64);
    for i in [0, 1, 2, 3, 5] {
        restore_matches(ep, dir, repo, &format!("m{i}"), &srcs[i]);
    }
    eprintln!("prune during a backup checked at {:?}", t0.elapsed());

    // A backup killed before its manifest: no image, restore refuses, its packs stay
    // while its lock is fresh (as another machine's would), go once it is stale.
    let before = names(st.as_ref(), "packs/");
    let go = dir.join("go4");
    let mut c4 = cmd(ep, &["backup", s(4), repo, "--name", "killed"]);
    c4.env("IRONCLONE_TEST_HOLD_MANIFEST", &go);
    let mut k4 = spawn(c4);
    wait_file(&dir.join("go4.held"), 120);
    k4.kill().unwrap(); // SIGKILL
    k4.wait().unwrap();
    let theirs: Vec<String> = names(st.as_ref(), "packs/")
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert!(!theirs.is_empty(), "the killed backup published packs");
    assert!(!ok(&run(ep, &["images", repo])).contains("killed"));
    let target = dir.join("killed.restored");
    std::fs::File::create(&target)
        .unwrap()
        .set_len(16 * MIB as u64)
        .unwrap();
    let o = run(
        ep,
        &["restore", repo, "killed", target.to_str().unwrap(), "--yes"],
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("killed"), "{e}");
    // Its lock, as a machine elsewhere would have left it: fresh for 300 s.
    let lock = names(st.as_ref(), "locks/write-");
    assert_eq!(lock.len(), 1, "{lock:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = format!("4242 backup other-host {now}\n");
    st.put(&lock[0], body.as_bytes(), storage::PutMode::Replace)
        .unwrap();
    let r = prune_json(ep, repo, &[]);
    assert_eq!(r["packs_deleted"], 0, "{r}");
    assert!(theirs.iter().all(|p| names(st.as_ref(), p).len() == 1));
    std::thread::sleep(Duration::from_secs(3));
    let r = prune_json(ep, repo, &[(ironclone::repo::LOCK_STALE_ENV, "2")]);
    assert!(
        r["packs_deleted"].as_u64().unwrap() >= theirs.len() as u64,
        "{r}"
    );
    assert!(theirs.iter().all(|p| names(st.as_ref(), p).is_empty()));
    assert!(names(st.as_ref(), "locks/").is_empty());
    assert!(names(st.as_ref(), "prune/").is_empty());
    assert!(ok(&run(ep, &["verify", repo])).contains("ok"));
    eprintln!("killed backup checked at {:?}", t0.elapsed());

    // Every 7th request fails (503 or a dropped connection) while three backups
    // run together: each ends in a whole image or a clear error, never a half one.
    let flaky = FailingProxy::start(ep.trim_start_matches("http://"), 7);
    let frepo = "s3://multi/flaky";
    ok(&run(
        ep,
        &["backup", s(0), frepo, "--name", "seed", "--encrypt"],
    ));
    let kids: Vec<Child> = (1..4)
        .map(|i| {
            spawn(cmd(
                &flaky.endpoint,
                &["backup", s(i), frepo, "--name", &format!("f{i}")],
            ))
        })
        .collect();
    let mut good = Vec::new();
    for (i, k) in (1..4).zip(kids) {
        let o = k.wait_with_output().unwrap();
        if o.status.success() {
            good.push(i);
        } else {
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(e.contains("s3://multi/flaky/"), "unclear error: {e}");
        }
    }
    let failed = flaky.failed.load(std::sync::atomic::Ordering::SeqCst);
    assert!(failed >= 3, "the proxy failed only {failed} requests");
    // A failed backup's packs are garbage the next prune (nobody writing) sweeps.
    prune_json(ep, frepo, &[]);
    assert!(ok(&run(ep, &["verify", frepo])).contains("ok"));
    let listed = ok(&run(ep, &["images", frepo]));
    for i in 1..4 {
        assert_eq!(
            listed.contains(&format!("f{i}")),
            good.contains(&i),
            "{listed}"
        );
    }
    for &i in &good {
        restore_matches(ep, dir, frepo, &format!("f{i}"), &srcs[i]);
    }
    eprintln!(
        "flaky store: {} of 3 backups whole, {failed} requests failed; total {:?}",
        good.len(),
        t0.elapsed()
    );
}
