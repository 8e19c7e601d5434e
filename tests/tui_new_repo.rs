//! A person at the TUI (the real services) backs up into a location that holds no
//! repository and chooses to encrypt the new one (issue 20: "`--encrypt` on `backup`
//! to a new repository"; the TUI's way is a question when the location is new): the
//! repository made is encrypted with the passphrase typed twice, the verify that
//! follows the backup opens it in the same session, the CLI opens it with that
//! passphrase and refuses another, the passphrase is in no file of the repository,
//! and the restored filesystem holds the source's file.

mod common;

use common::{run, LoopDev};
use crossterm::event::KeyCode;
use ironclone::tui::app::Screen;
use ironclone::tui::real::RealServices;
use ironclone::tui::App;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const PASS: &str = "tui-new-repo passphrase 7";

fn cli(repo: &Path, pass: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ironclone"))
        .args(args)
        .env("IRONCLONE_PASSWORD", pass)
        .env_remove("IRONCLONE_PASSWORD_FILE")
        .current_dir(repo.parent().unwrap())
        .output()
        .expect("run ironclone")
}

/// Every file under `dir` (recursively).
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
#[ignore = "needs root"]
fn tui_backup_into_a_new_encrypted_repository() {
    let d = tempfile::tempdir().unwrap();
    let content = d.path().join("content");
    std::fs::create_dir(&content).unwrap();
    let mut data = vec![0u8; 3 << 20];
    common::Rng::new(20).fill(&mut data);
    std::fs::write(content.join("payload.bin"), &data).unwrap();
    let img = d.path().join("disk.img");
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-d",
            content.to_str().unwrap(),
            img.to_str().unwrap(),
            "64M",
        ],
    );
    let lo = LoopDev::attach(&img, None);
    let repo = d.path().join("new-repo");

    let mut app = App::new(Arc::new(RealServices::new(Some(vec![lo.path.clone()]))));
    app.press(KeyCode::Char('b'));
    app.press(KeyCode::Enter); // the loop device, the only disk shown
    app.press(KeyCode::Char('/'));
    app.type_str(repo.to_str().unwrap());
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(30)); // opened on its own thread
    assert!(
        matches!(app.screen(), Screen::NewRepo { sel: 0, .. }),
        "a new location must ask: {:?}",
        app.screen()
    );
    app.press(KeyCode::Enter); // encrypt
    app.type_str(PASS);
    app.press(KeyCode::Enter);
    app.type_str(PASS);
    app.press(KeyCode::Enter);
    assert!(
        matches!(app.screen(), Screen::Name { .. }),
        "{:?}",
        app.screen()
    );
    for _ in 0..80 {
        app.press(KeyCode::Backspace);
    }
    app.type_str("enc");
    app.press(KeyCode::Enter);
    assert_eq!(app.screen(), &Screen::Summary);
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(300));
    assert_eq!(
        app.screen(),
        &Screen::Done,
        "{:?} {:?}",
        app.report,
        app.job
    );
    let report = format!("{:?}", app.report);
    assert!(report.starts_with("Some(Ok("), "{report}");
    // The verify after the backup opened the new repository with the session's key.
    let verified = format!("{:?}", app.verify_report);
    assert!(
        verified.starts_with("Some(Ok(") && verified.contains("every chunk read back"),
        "{verified}"
    );
    drop(app);
    drop(lo);

    let config = std::fs::read_to_string(repo.join("config")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert!(parsed["encryption"].is_object(), "not encrypted: {config}");
    for f in files(&repo) {
        let b = std::fs::read(&f).unwrap();
        assert!(
            !b.windows(PASS.len()).any(|w| w == PASS.as_bytes()),
            "the passphrase is in {}",
            f.display()
        );
    }
    let r = repo.to_str().unwrap();
    let wrong = cli(&repo, "not the passphrase", &["images", r]);
    assert!(!wrong.status.success(), "a wrong passphrase opened it");
    let listed = cli(&repo, PASS, &["images", r]);
    let out = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success() && out.contains("enc"), "{out}");

    let back = d.path().join("restored.img");
    std::fs::File::create(&back)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let o = cli(
        &repo,
        PASS,
        &["restore", r, "enc", back.to_str().unwrap(), "--yes"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    run("e2fsck", &["-fn", back.to_str().unwrap()]);
    let dump = d.path().join("payload.out");
    let req = format!("dump /payload.bin {}", dump.display());
    run("debugfs", &["-R", &req, back.to_str().unwrap()]);
    assert!(std::fs::read(&dump).unwrap() == data, "payload differs");
}
