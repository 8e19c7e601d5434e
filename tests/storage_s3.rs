//! Repositories on S3: a SeaweedFS cluster started by the test (one master, two volume
//! servers, a filer, the S3 gateway with an access key) on 127.0.0.1, shared by every
//! case of this one test and stopped at the end even on failure. Everything goes
//! through the `ironclone` binary, as a user would run it.

mod repo_common;
mod storage_common;

use ironclone::repo::storage::{self, RemoteOptions};
use repo_common::mixed_data;
use std::path::Path;
use std::process::Output;
use storage_common::proxy::FailingProxy;
use storage_common::{ok, s3_ironclone, s3_store, Cluster, ACCESS_KEY, SECRET_KEY};

const MIB: usize = 1 << 20;

fn ironclone(endpoint: &str, secret: &str, args: &[&str]) -> Output {
    s3_ironclone(endpoint, secret, args)
        .output()
        .expect("run ironclone")
}

fn err(o: &Output) -> String {
    assert!(!o.status.success(), "ironclone should have failed");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Objects under `url` (listed with the right key, straight from the cluster).
fn objects(endpoint: &str, url: &str) -> Vec<String> {
    let s = s3_store(endpoint, url);
    let mut all = Vec::new();
    for p in ["", "packs/", "index/", "images/", "locks/", "tmp/"] {
        all.extend(s.list(p).expect("list").into_iter().map(|(n, _)| n));
    }
    all.sort();
    all.dedup();
    all
}

/// Restores `image` from `repo` into a new sparse file and returns its bytes.
fn restore(endpoint: &str, dir: &Path, repo: &str, image: &str, len: usize) -> Vec<u8> {
    restore_keeping(endpoint, dir, repo, image, len, None)
}

/// `restore`, the check keeping at most `kept_mib` of the records it read for the
/// write phase (src/repo/restore_cache.rs; 0: the write phase downloads every record
/// again, neighbours a run at a time, src/repo/restore_read.rs).
fn restore_keeping(
    endpoint: &str,
    dir: &Path,
    repo: &str,
    image: &str,
    len: usize,
    kept_mib: Option<&str>,
) -> Vec<u8> {
    let out = dir.join(format!("{image}.restored"));
    let f = std::fs::File::create(&out).unwrap();
    f.set_len(len as u64).unwrap();
    drop(f);
    let t = out.to_str().unwrap();
    let mut c = s3_ironclone(endpoint, SECRET_KEY, &["restore", repo, image, t, "--yes"]);
    if let Some(m) = kept_mib {
        c.env("IRONCLONE_RESTORE_CACHE_MIB", m);
    }
    ok(&c.output().expect("run ironclone"));
    let b = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    b
}

#[test]
fn backup_restore_verify_prune_on_s3_with_bad_keys_dead_endpoints_and_a_flaky_proxy() {
    storage_common::require_weed();
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let t0 = std::time::Instant::now();
    let cluster = Cluster::start(&dir.path().join("weed"));
    cluster.bucket("ictest");
    eprintln!("cluster up in {:?}", t0.elapsed());
    let ep = cluster.s3_endpoint.as_str();

    let len = 24 * MIB;
    let data = mixed_data(len, 7);
    let src = dir.path().join("disk.img");
    std::fs::write(&src, &data).unwrap();
    let s = src.to_str().unwrap();
    let repo = "s3://ictest/repos/main";

    // Backup, images, restore byte-identical, verify.
    ok(&ironclone(
        ep,
        SECRET_KEY,
        &["backup", s, repo, "--name", "one"],
    ));
    assert!(ok(&ironclone(ep, SECRET_KEY, &["images", repo])).contains("one"));
    assert!(
        restore(ep, dir.path(), repo, "one", len) == data,
        "restore differs"
    );
    assert!(ok(&ironclone(ep, SECRET_KEY, &["verify", repo])).contains("ok"));
    let listed = objects(ep, repo);
    assert!(
        listed
            .iter()
            .any(|n| n.starts_with("packs/") && n.ends_with(".pack")),
        "{listed:?}"
    );
    assert!(
        !listed.iter().any(|n| n.starts_with("locks/")),
        "locks left: {listed:?}"
    );

    // A second image of changed data, the first deleted, prune; the second still
    // restores and verifies.
    let mut data2 = data.clone();
    data2[..4 * MIB].fill(0x5a);
    std::fs::write(&src, &data2).unwrap();
    ok(&ironclone(
        ep,
        SECRET_KEY,
        &["backup", s, repo, "--name", "two"],
    ));
    {
        RemoteOptions::set_global(RemoteOptions {
            s3_path_style: true,
            ..Default::default()
        });
        std::env::set_var("AWS_ENDPOINT_URL", ep);
        let r = ironclone::repo::Repository::open(Path::new(repo)).unwrap();
        r.delete_image("one").unwrap();
    }
    let pruned = ok(&ironclone(ep, SECRET_KEY, &["prune", repo]));
    assert!(pruned.contains("1 image(s) kept"), "{pruned}");
    assert!(
        restore(ep, dir.path(), repo, "two", len) == data2,
        "restore after prune differs"
    );
    assert!(ok(&ironclone(ep, SECRET_KEY, &["verify", repo])).contains("ok"));

    // Locks are objects with host and time: another machine's fresh prune lock of
    // an older build (which deletes at once) keeps a backup out, its stale one (not
    // refreshed for 300 s) is ignored.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let lock = |age: u64| {
        let body = format!("4242 prune other-host {}\n", now - age);
        s3_store(ep, repo)
            .put("locks/lock", body.as_bytes(), storage::PutMode::Replace)
            .unwrap();
    };
    lock(10);
    let e = err(&ironclone(
        ep,
        SECRET_KEY,
        &["backup", s, repo, "--name", "three"],
    ));
    assert!(e.contains("in use by a prune (process 4242)"), "{e}");
    lock(1000);
    ok(&ironclone(
        ep,
        SECRET_KEY,
        &["backup", s, repo, "--name", "three"],
    ));
    // The stale prune lock stays until the next prune takes it over.
    ok(&ironclone(ep, SECRET_KEY, &["prune", repo]));
    assert!(!objects(ep, repo).iter().any(|n| n.starts_with("locks/")));

    // A wrong secret: a clear error, and nothing written.
    let e = err(&ironclone(
        ep,
        "wrong-secret",
        &["backup", s, "s3://ictest/repos/denied", "--name", "x"],
    ));
    assert!(e.contains("access denied"), "{e}");
    assert!(objects(ep, "s3://ictest/repos/denied").is_empty());

    // An endpoint nobody listens on: retried, then named.
    let dead = format!("http://127.0.0.1:{}", storage_common::free_port());
    let t = std::time::Instant::now();
    let e = err(&ironclone(
        &dead,
        SECRET_KEY,
        &["backup", s, "s3://ictest/repos/dead", "--name", "x"],
    ));
    assert!(
        e.contains("Connection refused") && e.contains("gave up after 6 attempts"),
        "{e}"
    );
    eprintln!("dead endpoint refused in {:?}", t.elapsed());

    // Every 4th request fails (503 or a dropped connection): retries still give a
    // whole backup and an identical restore.
    let upstream = ep.trim_start_matches("http://");
    let flaky = FailingProxy::start(upstream, 4);
    let frepo = "s3://ictest/repos/flaky";
    ok(&ironclone(
        &flaky.endpoint,
        SECRET_KEY,
        &["backup", s, frepo, "--name", "f"],
    ));
    assert!(
        restore(&flaky.endpoint, dir.path(), frepo, "f", len) == data2,
        "flaky restore differs"
    );
    assert!(
        restore_keeping(&flaky.endpoint, dir.path(), frepo, "f", len, Some("0")) == data2,
        "flaky restore downloading every record twice differs"
    );
    assert!(ok(&ironclone(&flaky.endpoint, SECRET_KEY, &["verify", frepo])).contains("ok"));
    let failed = flaky.failed.load(std::sync::atomic::Ordering::SeqCst);
    assert!(failed >= 5, "the proxy failed only {failed} requests");
    eprintln!("flaky proxy failed {failed} requests");

    // Small packs (4 MiB, knob) put 3 at a time, then reads through a proxy that cuts
    // every 3rd GET answer halfway (a download failing mid-body): each cut range is
    // fetched again, and the restore and verify still see every byte right.
    let srepo = "s3://ictest/repos/small";
    let mut packed = s3_ironclone(ep, SECRET_KEY, &["backup", s, srepo, "--name", "small"]);
    ok(&packed
        .env("IRONCLONE_REMOTE_PACK_MIB", "4")
        .output()
        .unwrap());
    let packs = objects(ep, srepo)
        .iter()
        .filter(|n| n.starts_with("packs/"))
        .count();
    assert!(packs >= 2, "{packs} pack(s) with 4 MiB packs");
    let cut = FailingProxy::cutting(upstream, 3);
    assert!(
        restore(&cut.endpoint, dir.path(), srepo, "small", len) == data2,
        "restore through the cutting proxy differs"
    );
    assert!(
        restore_keeping(&cut.endpoint, dir.path(), srepo, "small", len, Some("0")) == data2,
        "restore through the cutting proxy downloading every record twice differs"
    );
    assert!(ok(&ironclone(&cut.endpoint, SECRET_KEY, &["verify", srepo])).contains("ok"));
    let cuts = cut.failed.load(std::sync::atomic::Ordering::SeqCst);
    assert!(cuts >= 3, "the proxy cut only {cuts} answers");
    eprintln!("{packs} packs; the cutting proxy cut {cuts} answers");

    // A store that fails every request: a clear error naming the object.
    let broken = FailingProxy::start(upstream, 1);
    let e = err(&ironclone(&broken.endpoint, SECRET_KEY, &["images", frepo]));
    assert!(
        e.contains("s3://ictest/repos/flaky/") && e.contains("gave up after"),
        "{e}"
    );
}
