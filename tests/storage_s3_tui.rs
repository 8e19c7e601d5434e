//! On the SeaweedFS cluster of the other S3 tests (127.0.0.1 only, stopped at the end):
//! - the TUI's repository picker with the real services: an `s3://` location typed, the
//!   endpoint and keys typed on the credentials screen (none in the environment), a
//!   wrong secret refused on a screen naming the location, fixed, and the images listed;
//! - issue 20's upload cuts: backups through a proxy that cuts PUT bodies halfway, and
//!   one that fails every Nth PUT, end correct (retried PUTs are whole objects again:
//!   verify ok, restore identical); a store that cuts every upload ends with a clear
//!   error, leaves no image `images` lists, and prune + verify stay clean.

mod repo_common;
mod storage_common;

use crossterm::event::KeyCode;
use ironclone::tui::app::Screen;
use ironclone::tui::real::RealServices;
use ironclone::tui::App;
use repo_common::mixed_data;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;
use storage_common::proxy::FailingProxy;
use storage_common::{ok, s3_ironclone, Cluster, ACCESS_KEY, SECRET_KEY};

const MIB: usize = 1 << 20;

/// `ironclone ARGS` through `endpoint`, with 4 MiB packs so a backup makes several PUTs.
fn run(endpoint: &str, args: &[&str]) -> Output {
    s3_ironclone(endpoint, SECRET_KEY, args)
        .env("IRONCLONE_REMOTE_PACK_MIB", "4")
        .output()
        .expect("run ironclone")
}

fn restore(endpoint: &str, dir: &Path, repo: &str, image: &str, len: usize) -> Vec<u8> {
    let out = dir.join(format!("{image}.restored"));
    std::fs::File::create(&out)
        .and_then(|f| f.set_len(len as u64))
        .unwrap();
    let t = out.to_str().unwrap();
    ok(&run(endpoint, &["restore", repo, image, t, "--yes"]));
    let b = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    b
}

fn tui_lists_images_after_a_wrong_secret_is_fixed(endpoint: &str, repo: &str) {
    let mut app = App::new(Arc::new(RealServices::new(Some(Vec::new()))));
    app.press(KeyCode::Char('i')); // browse
    app.press(KeyCode::Char('/'));
    app.type_str(repo);
    app.press(KeyCode::Enter);
    assert!(
        matches!(app.screen(), Screen::RemoteLogin(_)),
        "{:?}",
        app.screen()
    );
    app.type_str(endpoint);
    app.press(KeyCode::Tab); // region: empty
    app.press(KeyCode::Tab);
    app.type_str(ACCESS_KEY);
    app.press(KeyCode::Tab);
    app.type_str("not-the-secret");
    app.press(KeyCode::Tab);
    app.press(KeyCode::Char(' ')); // path-style on (SeaweedFS)
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(60));
    match app.screen() {
        Screen::Error { what, .. } => {
            assert!(what.contains(repo), "{what}");
            assert!(!what.contains("not-the-secret"), "{what}");
        }
        other => panic!("a wrong secret should be refused: {other:?}"),
    }
    app.press(KeyCode::Enter); // back to the fields
    app.press(KeyCode::Up); // the secret
    for _ in 0.."not-the-secret".len() {
        app.press(KeyCode::Backspace);
    }
    app.type_str(SECRET_KEY);
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(60));
    assert!(
        matches!(app.screen(), Screen::Images { .. }),
        "{:?}",
        app.screen()
    );
    let names: Vec<_> = app.choices.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["tui"]);
}

#[test]
fn tui_s3_login_and_backups_through_cut_and_failing_uploads() {
    storage_common::require_weed();
    for v in [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(
            std::env::var_os(v).is_none(),
            "{v} must not be set for this test"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let cluster = Cluster::start(&dir.path().join("weed"));
    cluster.bucket("ictui");
    eprintln!("cluster up in {:?}", t0.elapsed());
    let ep = cluster.s3_endpoint.as_str();
    let upstream = ep.trim_start_matches("http://");

    let len = 16 * MIB;
    let data = mixed_data(len, 11);
    let src = dir.path().join("disk.img");
    std::fs::write(&src, &data).unwrap();
    let s = src.to_str().unwrap();

    let trepo = "s3://ictui/repos/tui";
    ok(&run(ep, &["backup", s, trepo, "--name", "tui"]));
    tui_lists_images_after_a_wrong_secret_is_fixed(ep, trepo);

    // Every 3rd PUT cut halfway through its body: each is sent again whole.
    let repo = "s3://ictui/repos/cut";
    let cut = FailingProxy::cutting_puts(upstream, 3);
    ok(&run(&cut.endpoint, &["backup", s, repo, "--name", "cut"]));
    let cuts = cut.failed.load(std::sync::atomic::Ordering::SeqCst);
    assert!(cuts >= 2, "the proxy cut only {cuts} uploads");
    assert!(
        restore(ep, dir.path(), repo, "cut", len) == data,
        "restore differs"
    );
    assert!(ok(&run(ep, &["verify", repo])).contains("ok"));
    eprintln!("cut {cuts} uploads; backup whole");

    // Every 2nd PUT answered 503 or dropped, in turn (new data, so its packs are uploaded).
    let data3 = mixed_data(len, 1000);
    let src3 = dir.path().join("disk3.img");
    std::fs::write(&src3, &data3).unwrap();
    let s3 = src3.to_str().unwrap();
    let flaky = FailingProxy::failing_puts(upstream, 2);
    ok(&run(
        &flaky.endpoint,
        &["backup", s3, repo, "--name", "flaky"],
    ));
    let failed = flaky.failed.load(std::sync::atomic::Ordering::SeqCst);
    assert!(failed >= 2, "the proxy failed only {failed} uploads");
    assert!(
        restore(ep, dir.path(), repo, "flaky", len) == data3,
        "restore differs"
    );
    eprintln!("failed {failed} uploads; backup whole");

    // Every upload cut: a clear error, no image, and prune + verify clean after it.
    let data2 = mixed_data(len, 2000); // new chunks, so packs must be uploaded
    let src2 = dir.path().join("disk2.img");
    std::fs::write(&src2, &data2).unwrap();
    let dead = FailingProxy::cutting_puts(upstream, 1);
    let o = run(
        &dead.endpoint,
        &["backup", src2.to_str().unwrap(), repo, "--name", "dead"],
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "a backup whose uploads all fail must fail"
    );
    assert!(
        e.contains("s3://ictui/repos/cut/") && e.contains("gave up after"),
        "{e}"
    );
    let images = ok(&run(ep, &["images", repo]));
    assert!(!images.contains("dead"), "{images}");
    assert!(
        images.contains("cut") && images.contains("flaky"),
        "{images}"
    );
    ok(&run(ep, &["prune", repo]));
    assert!(ok(&run(ep, &["verify", repo])).contains("ok"));
    assert!(
        restore(ep, dir.path(), repo, "cut", len) == data,
        "restore after prune"
    );
    eprintln!("all uploads cut: {}", e.trim());
    eprintln!("whole test {:?}", t0.elapsed());
}
