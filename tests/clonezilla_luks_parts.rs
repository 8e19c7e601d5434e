//! A Clonezilla saveparts image of a LUKS partition (tests/clonezilla_fixture: sda2
//! made LUKS2 and saved opened by `shapes::make_luks`, as for savedisk; the folder
//! then made saveparts, no `disk` and no table files):
//! - `images` lists sda2 as LUKS2 with ext4 inside; `browse` reads the inner files by
//!   the partition's name and by the mapping's;
//! - `import` makes `<name>-sda2`, the native layout of a LUKS partition read with its
//!   key: `verify` passes, the header area is the header file byte for byte, the
//!   plaintext area's files are the source's;
//! - `restore --part sda2=FILE` without a key is refused naming the partition and both
//!   options, with a key the header refuses it is refused too, and the repository
//!   image without a key as well: the target byte for byte as it was each time.
//!
//! The write through the opened volume needs device-mapper:
//! tests/qemu/test-live-clonezilla-luks.sh.

mod clonezilla_fixture;
mod fsfixture;

use clonezilla_fixture::{browse, cli, run_with_scratch, shapes};
use fsfixture::prng_bytes;
use std::fs;
use std::path::Path;

const MIB: u64 = 1 << 20;
const PASS: &str = "correct horse battery staple";
const MAPPER: &str = "ocs_luks_Pq7";
const SEED: u64 = 11;
const NAME: &str = "img";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_saveparts_luks_partition_lists_browses_imports_and_refuses_without_its_key() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), NAME, SEED, false);
    let uuid = shapes::make_luks(d.path(), &fx, NAME, PASS, MAPPER);
    shapes::to_saveparts(&fx);
    let root = &fx.root;
    let scratch = d.path().join("scratch");
    let cache = d.path().join("cache");

    let (ok, out, text) = cli(&["images", s(root), "--json"]);
    assert!(ok, "{text}");
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let v = &j["images"][0]["luks"][0];
    assert_eq!(
        (&v["version"], v["uuid"].as_str(), &v["inner"]),
        (
            &serde_json::json!(2),
            Some(uuid.as_str()),
            &serde_json::json!("ext4")
        ),
        "{j}"
    );
    let (ok, _, text) = cli(&["images", s(root)]);
    assert!(ok && text.contains("sda2 (LUKS2, ext4 inside)"), "{text}");

    let want = prng_bytes(SEED * 10, 2_000_000);
    assert!(browse(root, NAME, "sda2", &["cat", "/data0"], &cache) == want);
    let ls = browse(root, NAME, MAPPER, &["ls", "/"], &cache);
    assert!(String::from_utf8_lossy(&ls).contains("data3"));

    // import: <name>-sda2 in the native layout, and the plaintext warning
    let repo = d.path().join("repo");
    let (ok, out) = run_with_scratch(
        &["import", s(root), NAME, s(&repo), "--name", "cz"],
        &scratch,
    );
    assert!(
        ok && out.contains("importing as cz-sda2") && out.contains("image cz-sda1"),
        "{out}"
    );
    assert!(
        out.contains("PLAINTEXT")
            && out.contains("backup --encrypt")
            && !out.contains("GPT is unreadable"),
        "{out}"
    );
    let (ok, _, text) = cli(&["verify", s(&repo), "cz-sda2"]);
    assert!(ok, "verify: {text}");
    {
        use ironclone::device::BlockDevice;
        let r = ironclone::repo::Repository::open(&repo).unwrap();
        let head = ironclone::repo::ImageDevice::open(&r, "cz-sda2", "disk-fs").unwrap();
        let saved = fs::read(fx.image.join("sda2-luksHeader.bin")).unwrap();
        let got = head.read_vec(0, saved.len()).unwrap();
        assert!(got == saved, "the header area differs from the header file");
    }
    let got = browse(
        &repo,
        "cz-sda2",
        "disk-fs-plaintext",
        &["cat", "/data2"],
        &cache,
    );
    assert!(got == prng_bytes(SEED * 10 + 2, 2_000_000));

    // restores without the key, with a wrong one, and of the imported image without
    // one: refused, nothing written
    let target = d.path().join("target.img");
    fs::File::create(&target)
        .unwrap()
        .set_len(240 * MIB)
        .unwrap();
    let before = blake3::hash(&fs::read(&target).unwrap());
    for part in ["sda2", MAPPER] {
        let spec = format!("{part}={}", s(&target));
        let (ok, out) = run_with_scratch(
            &["restore", s(root), NAME, "--part", &spec, "--yes"],
            &scratch,
        );
        // refused before the plan is shown, the inner image not decoded
        assert!(
            !ok && out.contains("partition sda2 is LUKS")
                && out.contains("--unlock")
                && out.contains("--key-file")
                && !out.contains("restore partitions of"),
            "{part}: {out}"
        );
    }
    let wrong = d.path().join("wrong-key");
    fs::write(&wrong, "not the passphrase").unwrap();
    let spec = format!("sda2={}", s(&target));
    let (ok, out) = run_with_scratch(
        &[
            "restore",
            s(root),
            NAME,
            "--part",
            &spec,
            "--yes",
            "--key-file",
            s(&wrong),
        ],
        &scratch,
    );
    assert!(
        !ok && out.contains("the key does not open the LUKS volume"),
        "{out}"
    );
    assert!(
        !out.contains("not the passphrase"),
        "the key was printed: {out}"
    );
    let (ok, out) = run_with_scratch(
        &["restore", s(&repo), "cz-sda2", s(&target), "--yes"],
        &scratch,
    );
    assert!(!ok && out.contains("--unlock"), "{out}");
    assert_eq!(
        blake3::hash(&fs::read(&target).unwrap()),
        before,
        "the target was written"
    );
    // --unlock names no LUKS partition here: refused
    let spec = format!("sda1={}", s(&target));
    let (ok, out) = run_with_scratch(
        &[
            "restore",
            s(root),
            NAME,
            "--part",
            &spec,
            "--yes",
            "--unlock",
        ],
        &scratch,
    );
    assert!(!ok && out.contains("are for LUKS partitions"), "{out}");
}

/// A loop device over `file` with its partitions scanned; detached on drop.
struct Loop(String);
impl Loop {
    fn attach(file: &Path) -> Loop {
        let o = std::process::Command::new("losetup")
            .args(["-f", "--show", "-P", s(file)])
            .output()
            .expect("losetup");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let p1 = format!("{dev}p1");
        for _ in 0..50 {
            if Path::new(&p1).exists() {
                break;
            }
            let _ = std::process::Command::new("partx")
                .args(["-a", &dev])
                .status();
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(Path::new(&p1).exists(), "{p1} did not appear");
        Loop(dev)
    }
}
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.0])
            .status();
    }
}

/// The TUI lists the saved LUKS partition as its own row, asks its passphrase and
/// tests it on the saved header (a wrong one refused on the screen), then offers the
/// partitions and plans the LUKS route onto the one picked. The write itself needs
/// device-mapper: test-live-clonezilla-luks.sh drives it in the live system.
#[test]
#[ignore = "needs root"]
fn the_tui_restores_a_saveparts_luks_partition_after_testing_its_passphrase() {
    use crossterm::event::KeyCode;
    use ironclone::tui::app::Screen;
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), NAME, SEED, false);
    shapes::make_luks(d.path(), &fx, NAME, PASS, MAPPER);
    shapes::to_saveparts(&fx);
    // Only this test reads IRONCLONE_SCRATCH (the services' scratch folder).
    std::env::set_var("IRONCLONE_SCRATCH", d.path().join("scratch"));
    let target = d.path().join("target.img");
    fs::File::create(&target)
        .unwrap()
        .set_len(200 * MIB)
        .unwrap();
    let o = std::process::Command::new("sgdisk")
        .args(["-Z", "-n", "1:2048:+160M", "-t", "1:8309", s(&target)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lo = Loop::attach(&target);
    let before = blake3::hash(&fs::read(&target).unwrap());

    let services = ironclone::tui::real::RealServices::new(Some(vec![lo.0.clone().into()]));
    let mut app = ironclone::tui::App::new(std::sync::Arc::new(services));
    app.press(KeyCode::Char('r'));
    app.press(KeyCode::Char('/'));
    app.type_str(s(&fx.root));
    app.press(KeyCode::Enter);
    app.settle(std::time::Duration::from_secs(30));
    let rows: Vec<_> = app
        .choices
        .images
        .iter()
        .map(|i| (i.name.clone(), i.source_model.clone(), i.needs_luks_key))
        .collect();
    let at = rows
        .iter()
        .position(|(n, _, _)| n == "img/sda2")
        .unwrap_or_else(|| panic!("no row for the LUKS partition: {rows:?}"));
    assert!(
        rows[at].1.contains("sda2 (LUKS, ext4 inside)") && rows[at].2,
        "{rows:?}"
    );
    for _ in 0..at {
        app.press(KeyCode::Down);
    }
    app.press(KeyCode::Enter);
    clonezilla_fixture::tui_wrong_then_right_key(&mut app, PASS);
    assert!(
        matches!(app.screen(), Screen::PartTargets { .. }),
        "{:?}",
        app.screen()
    );
    app.press(KeyCode::Enter); // the loop device's partition 1, the only row
    app.settle(std::time::Duration::from_secs(60)); // the plan, made on its own thread
    assert!(
        matches!(app.screen(), Screen::Plan { .. }),
        "{:?}",
        app.screen()
    );
    app.settle(std::time::Duration::from_secs(60)); // the plan, made on its own thread
    let plan = format!("{:?}", app.choices.plan);
    assert!(
        plan.starts_with("Some(Ok(") && plan.contains("sda2 is LUKS") && plan.contains("Grow"),
        "{plan}"
    );
    assert!(plan.contains("number: 1,"), "{plan}");
    drop(app);
    assert_eq!(
        blake3::hash(&fs::read(&target).unwrap()),
        before,
        "the target was written while planning"
    );
}
