//! A backup's manifest goes to S3 streamed (issue 20): one multipart upload in parts
//! of `IRONCLONE_REMOTE_PART_MIB` (5 MiB here, S3's smallest; the last up to twice
//! that), never one PUT of the whole; the store shows it only once the upload completes, so a backup killed
//! while it uploads leaves no image, and one that fails aborts its upload. On a
//! SeaweedFS cluster of its own (storage_common), through the `ironclone` binary. A
//! part whose upload fails is sent again. A prune run beside a backup held mid-upload
//! aborts the killed backup's upload and keeps the live one's (prune_uploads.rs).

mod storage_common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use storage_common::proxy::FailingProxy;
use storage_common::{ok, s3_ironclone, s3_store, Cluster, ACCESS_KEY, SECRET_KEY};

const MIB: usize = 1 << 20;
const PART: usize = 5 * MIB;
/// The smallest chunk a repository takes: the most chunks, so the largest manifest
/// (~41 bytes per chunk), per byte of source.
const CHUNK: usize = 4096;
const BUCKET: &str = "icmanifest";

/// Unfinished multipart uploads in the bucket (SeaweedFS keeps them under
/// `.uploads/`, which no S3 listing shows): their entries, sorted.
fn upload_entries(cluster: &Cluster) -> Vec<String> {
    let mut e: Vec<String> = cluster
        .shell(&format!("fs.ls /buckets/{BUCKET}/.uploads"))
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    e.sort();
    e
}

fn uploads(cluster: &Cluster) -> usize {
    upload_entries(cluster).len()
}

/// The `uploads` part of `ironclone prune --json`'s report.
fn prune_json(ep: &str, repo: &str) -> serde_json::Value {
    let out = ok(&s3_ironclone(ep, SECRET_KEY, &["prune", "--json", repo])
        .output()
        .unwrap());
    let last = out.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).expect(last);
    v["report"].clone()
}

fn wait_for_file(p: &Path, secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !p.exists() {
        assert!(Instant::now() < end, "{} did not appear", p.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn manifest_is_streamed_in_parts_and_shows_only_when_complete() {
    storage_common::require_weed();
    // For the stores this test opens itself (s3_store).
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let cluster = Cluster::start(&dir.path().join("weed"));
    cluster.bucket(BUCKET);
    let ep = cluster.s3_endpoint.as_str();
    // 1700 MiB of 4 KiB chunks: 435 200 chunks, a manifest of ~17 MiB: 4 parts, the
    // last 5 MiB and the tail. The upload starts when the writer has its second part,
    // which it gets when the third fills (remote_stream.rs holds the last full part
    // back): a kill before the completion then leaves a real unfinished upload.
    let src = dir.path().join("disk.img");
    storage_common::numbered_blocks(&src, 1700, CHUNK);
    let s = src.to_str().unwrap();
    let repo = format!("s3://{BUCKET}/repo");
    let store = s3_store(ep, &repo);
    let backup = |endpoint: &str, name: &str| {
        let mut c = s3_ironclone(endpoint, SECRET_KEY, &["backup", s, &repo, "--name", name]);
        c.env("IRONCLONE_CHUNKING", format!("{CHUNK},{CHUNK}"))
            .env("IRONCLONE_REMOTE_PART_MIB", "5");
        c
    };
    eprintln!("cluster and source ready in {:?}", t0.elapsed());

    // 1. Through a proxy that logs every request: the manifest went up as a multipart
    // upload, no request carrying more than a part, and it reads back whole.
    let upstream = ep.trim_start_matches("http://");
    let proxy = FailingProxy::start(upstream, 0);
    ok(&backup(&proxy.endpoint, "big").output().unwrap());
    let len = store
        .stat("images/big.json")
        .unwrap()
        .expect("the manifest")
        .len;
    assert!(len > 2 * PART as u64, "manifest of {len} bytes: too small");
    let log = proxy.log.lock().unwrap().clone();
    let manifest: Vec<&(String, usize)> = log
        .iter()
        .filter(|(l, _)| l.contains("/images/big.json"))
        .collect();
    let parts = manifest
        .iter()
        .filter(|(l, _)| l.starts_with("PUT ") && l.contains("partNumber="))
        .count();
    let largest = manifest.iter().map(|(_, n)| *n).max().unwrap_or(0);
    eprintln!(
        "manifest {len} bytes in {parts} parts, largest request body {largest}; {} requests",
        manifest.len()
    );
    assert!(
        parts >= 3 && largest <= 2 * PART,
        "{parts} parts, largest request {largest} bytes: {manifest:?}"
    );
    assert!(
        manifest
            .iter()
            .any(|(l, _)| l.starts_with("POST ") && l.contains("uploadId=")),
        "no completion: {manifest:?}"
    );
    drop(proxy);
    let verified = ok(&s3_ironclone(ep, SECRET_KEY, &["verify", &repo])
        .output()
        .unwrap());
    assert!(verified.contains("ok"), "{verified}");

    // Every 2nd PUT fails (503 or a dropped connection): of the manifest's parts,
    // at least one fails and is sent again, and the image still verifies.
    let flaky = FailingProxy::failing_puts(upstream, 2);
    ok(&backup(&flaky.endpoint, "flaky").output().unwrap());
    let sent: Vec<String> = flaky
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|(l, _)| l.contains("/images/flaky.json"))
        .filter_map(|(l, _)| l.split("partNumber=").nth(1))
        .map(|n| n.split('&').next().unwrap_or("").to_string())
        .collect();
    let mut distinct = sent.clone();
    distinct.sort();
    distinct.dedup();
    eprintln!(
        "flaky: {} part uploads for {} parts",
        sent.len(),
        distinct.len()
    );
    assert!(
        distinct.len() >= 3 && sent.len() > distinct.len(),
        "no part of the manifest was retried: {sent:?}"
    );
    drop(flaky);
    let verified = ok(&s3_ironclone(ep, SECRET_KEY, &["verify", &repo])
        .output()
        .unwrap());
    assert!(verified.contains("ok"), "{verified}");

    // 2. Killed while its manifest uploads (held before the completion, with parts
    // sent): no image, nothing listed, and the unfinished upload is really there.
    let before = uploads(&cluster);
    let go = dir.path().join("go");
    let held = dir.path().join("go.held");
    // A backup held before its manifest's completion (its parts sent) until `go`.
    let start_held = |name: &str| {
        for f in [&held, &go] {
            let _ = std::fs::remove_file(f);
        }
        let child = backup(ep, name)
            .env("IRONCLONE_TEST_HOLD_MANIFEST", &go)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_file(&held, 600);
        child
    };
    let mut child = start_held("killed");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        uploads(&cluster),
        before + 1,
        "the killed backup had no upload in flight: the test did not test"
    );
    let with_killed = upload_entries(&cluster);
    assert!(store.stat("images/killed.json").unwrap().is_none());
    let everything = s3_store(ep, &format!("s3://{BUCKET}"));
    let listed: Vec<String> = everything
        .list("")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        !listed
            .iter()
            .any(|n| n.contains("killed") || n.contains(".uploads")),
        "{listed:?}"
    );
    let images = ok(&s3_ironclone(ep, SECRET_KEY, &["images", &repo])
        .output()
        .unwrap());
    assert!(
        images.contains("big") && images.contains("flaky") && !images.contains("killed"),
        "{images}"
    );

    // 3. Failing after its parts were sent (its lock removed while it is held): the
    // backup fails and aborts the upload.
    let child = start_held("failed");
    assert_eq!(uploads(&cluster), before + 2, "no upload in flight");
    for (lock, _) in store.list("locks/").unwrap() {
        store.delete(&lock).unwrap();
    }
    std::fs::write(&go, b"").unwrap();
    let out = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("lock"), "{e}");
    assert!(store.stat("images/failed.json").unwrap().is_none());
    assert_eq!(
        uploads(&cluster),
        before + 1,
        "the failed backup left its upload"
    );

    // 4. Prune beside a live backup held mid-upload: it aborts the killed backup's
    // upload (its `.uploads/` entry goes) and keeps the live one's, which then
    // completes and verifies; a second prune finds nothing to abort.
    let step4 = Instant::now();
    let live = start_held("live");
    let both = upload_entries(&cluster);
    assert_eq!(
        both.len(),
        before + 2,
        "the live backup has no upload in flight"
    );
    let t = Instant::now();
    let rep = prune_json(ep, &repo);
    eprintln!("prune beside the live backup in {:?}: {rep}", t.elapsed());
    let u = &rep["uploads"];
    assert_eq!(
        (u["aborted"].as_u64(), u["kept"].as_u64()),
        (Some(1), Some(1)),
        "{rep}"
    );
    // The killed backup sent at least one part (see 2.), each 5 MiB.
    let freed = u["bytes_freed"].as_u64().unwrap_or(0);
    assert!(freed >= PART as u64 && freed % PART as u64 == 0, "{rep}");
    let after = upload_entries(&cluster);
    let live_entry: Vec<&String> = both.iter().filter(|e| !with_killed.contains(e)).collect();
    let killed_entry: Vec<&String> = with_killed.iter().filter(|e| !after.contains(e)).collect();
    assert_eq!(after.len(), before + 1, "{both:?} -> {after:?}");
    assert!(
        live_entry.iter().all(|e| after.contains(e)) && killed_entry.len() == 1,
        "not the killed backup's upload went: {with_killed:?} / {both:?} -> {after:?}"
    );
    std::fs::write(&go, b"").unwrap();
    let out = live.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the live backup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verified = ok(&s3_ironclone(ep, SECRET_KEY, &["verify", &repo, "live"])
        .output()
        .unwrap());
    assert!(verified.contains("ok"), "{verified}");
    assert!(store.stat("images/live.json").unwrap().is_some());
    assert_eq!(uploads(&cluster), before, "{:?}", upload_entries(&cluster));
    let text = ok(&s3_ironclone(ep, SECRET_KEY, &["prune", &repo])
        .output()
        .unwrap());
    assert!(
        text.contains("0 unfinished upload(s) aborted (0 B freed), 0 kept"),
        "{text}"
    );
    eprintln!(
        "step 4 in {:?}, whole test in {:?}",
        step4.elapsed(),
        t0.elapsed()
    );
}
