//! The TUI restores a Clonezilla image like an ironclone one, with the real services:
//! Restore -> the folder holding the image folder typed as the repository -> the
//! Clonezilla image -> a loop device (the only disk the session may use) -> the plan
//! -> the loop device's name typed -> the job runs (every checksum checked, then
//! written and read back) -> the result screen. The restored disk's filesystems pass
//! fsck.vfat -n and e2fsck -fn and hold the fixture's files (tests/clonezilla_fixture).
//! A damaged image ends the job on an error naming the file, the target untouched.

mod clonezilla_fixture;
mod fsfixture;

use clonezilla_fixture::shapes;
use clonezilla_fixture::{check_restored, MIB};
use crossterm::event::KeyCode;
use ironclone::tui::app::Screen;
use ironclone::tui::real::RealServices;
use ironclone::tui::App;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The tests set IRONCLONE_SCRATCH for the services: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A loop device we attached; detached (with its partitions) on drop.
struct Loop(String);
impl Loop {
    fn attach(file: &Path) -> Loop {
        let o = Command::new("losetup")
            .args(["-f", "--show", file.to_str().unwrap()])
            .output()
            .expect("losetup");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Loop(String::from_utf8_lossy(&o.stdout).trim().to_string())
    }
}
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("partx").args(["-d", &self.0]).status();
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// Restore -> the folder `root` -> its one image -> the only disk -> the plan screen.
fn to_plan(root: &Path, lo: &Loop) -> App {
    to_plan_of(root, lo, 0)
}

/// Home -> the flow `key` -> the folder `root` typed as the repository: its images,
/// with the real services allowed the disks `disks`.
fn to_images(root: &Path, key: char, disks: Vec<PathBuf>) -> App {
    let mut app = App::new(Arc::new(RealServices::new(Some(disks))));
    app.press(KeyCode::Char(key));
    app.press(KeyCode::Char('/'));
    app.type_str(root.to_str().unwrap());
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(30));
    assert!(
        matches!(app.screen(), Screen::Images { .. }),
        "{:?}",
        app.screen()
    );
    app
}

/// As `to_plan`, choosing the picker's row `row` (0: the first).
fn to_plan_of(root: &Path, lo: &Loop, row: usize) -> App {
    let mut app = to_images(root, 'r', vec![PathBuf::from(&lo.0)]);
    for _ in 0..row {
        app.press(KeyCode::Down);
    }
    app.press(KeyCode::Enter); // the one image: the Clonezilla folder "img"
    assert!(
        matches!(app.screen(), Screen::Disks { .. }),
        "{:?}",
        app.screen()
    );
    app.press(KeyCode::Enter); // the loop device, the only disk shown
    app.settle(Duration::from_secs(60)); // the plan, made on its own thread
    assert!(
        matches!(app.screen(), Screen::Plan { .. }),
        "{:?}",
        app.screen()
    );
    app
}

#[test]
#[ignore = "needs root"]
fn tui_restores_a_clonezilla_image_onto_a_loop_device() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 6, false);
    let scratch = d.path().join("scratch");
    // The TUI's scratch folder (the table's sparse file, staged shrinks).
    std::env::set_var("IRONCLONE_SCRATCH", &scratch);
    let target = d.path().join("target.img");
    std::fs::File::create(&target)
        .unwrap()
        .set_len(240 * MIB)
        .unwrap();
    let lo = Loop::attach(&target);
    let mut app = to_plan(&fx.root, &lo);
    let plan = format!("{:?}", app.choices.plan);
    assert!(plan.contains("Grow"), "the ext4 is not grown: {plan}");
    app.press(KeyCode::Enter);
    app.type_str(lo.0.trim_start_matches("/dev/"));
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(600));
    assert_eq!(
        app.screen(),
        &Screen::Done,
        "the job did not finish: {:?} {:?}",
        app.report,
        app.job
    );
    let report = format!("{:?}", app.report);
    assert!(report.starts_with("Some(Ok("), "{report}");
    assert!(
        report.contains("Clonezilla image \\\"img\\\" restored"),
        "{report}"
    );
    assert!(report.contains("read back and compared"), "{report}");
    drop(lo);
    check_restored(d.path(), &target, 6, 2);
    // Nothing left behind in the scratch folder, nothing added to the image folder.
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .map(|r| r.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch files left behind: {left:?}");
    assert_eq!(std::fs::read_dir(&fx.root).unwrap().count(), 1);
}

/// A byte flipped in a partclone data block: the job ends on the error screen naming
/// the image file and the checksum, and the target holds what it held, byte for byte.
#[test]
#[ignore = "needs root"]
fn tui_refuses_a_damaged_clonezilla_image_before_writing() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 7, false);
    std::env::set_var("IRONCLONE_SCRATCH", d.path().join("scratch"));
    clonezilla_fixture::damage_gz(&fx.image.join("sda2.ext4-ptcl-img.gz"));
    let target = d.path().join("target.img");
    let pattern: Vec<u8> = (0..240 * MIB).map(|i| (i % 251) as u8).collect();
    std::fs::write(&target, &pattern).unwrap();
    let lo = Loop::attach(&target);
    let mut app = to_plan(&fx.root, &lo);
    app.press(KeyCode::Enter);
    app.type_str(lo.0.trim_start_matches("/dev/"));
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(600));
    let report = format!("{:?}", app.report);
    for e in ["sda2.ext4-ptcl-img.gz", "checksum mismatch"] {
        assert!(report.contains(e), "{e:?} not in {report}");
    }
    assert!(report.starts_with("Some(Err("), "{report}");
    drop(lo);
    assert!(
        std::fs::read(&target).unwrap() == pattern,
        "the target was written"
    );
}

/// An image of two disks (sda seed 11, sdb seed 12) is two rows, `img/sda` and
/// `img/sdb`, each naming its disk; the second row restores sdb's files (the CLI's
/// `restore --disk sdb`), checked by fsck.vfat -n, e2fsck -fn and sdb's seed.
#[test]
#[ignore = "needs root"]
fn tui_restores_one_disk_of_a_two_disk_clonezilla_image() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let d = tempfile::tempdir().unwrap();
    let a = clonezilla_fixture::build(&d.path().join("a"), "img", 11, false);
    let b = clonezilla_fixture::build(&d.path().join("b"), "img", 12, false);
    shapes::add_disk(&a, &b, "sdb");
    std::env::set_var("IRONCLONE_SCRATCH", d.path().join("scratch"));
    let target = d.path().join("target.img");
    std::fs::File::create(&target)
        .unwrap()
        .set_len(240 * MIB)
        .unwrap();
    let lo = Loop::attach(&target);
    let mut app = to_plan_of(&a.root, &lo, 1);
    let names: Vec<&str> = app.choices.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["img/sda", "img/sdb"]);
    let models: Vec<&str> = app
        .choices
        .images
        .iter()
        .map(|i| i.source_model.as_str())
        .collect();
    assert_eq!(
        models,
        [
            "clonezilla: sda, disk 1 of 2",
            "clonezilla: sdb, disk 2 of 2"
        ]
    );
    app.press(KeyCode::Enter);
    app.type_str(lo.0.trim_start_matches("/dev/"));
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(600));
    let report = format!("{:?}", app.report);
    assert!(report.starts_with("Some(Ok("), "{report}");
    assert!(
        report.contains("Clonezilla image \\\"img/sdb\\\" restored"),
        "{report}"
    );
    drop(lo);
    check_restored(d.path(), &target, 12, 2);
}

/// Verify -> the folder -> its image: checked whole with the real services (every
/// checksum, nothing written); the same folder with a flipped byte ends on the error
/// naming the file.
#[test]
#[ignore = "needs root"]
fn tui_verifies_a_clonezilla_image() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 8, false);
    let verify = |fx: &clonezilla_fixture::Fixture| {
        let mut app = to_images(&fx.root, 'v', Vec::new());
        app.press(KeyCode::Enter);
        app.settle(Duration::from_secs(600));
        format!("{:?}", app.report)
    };
    let report = verify(&fx);
    assert!(report.starts_with("Some(Ok("), "{report}");
    assert!(report.contains("2 images decoded whole"), "{report}");
    clonezilla_fixture::damage_gz(&fx.image.join("sda2.ext4-ptcl-img.gz"));
    let report = verify(&fx);
    assert!(report.starts_with("Some(Err("), "{report}");
    for e in ["sda2.ext4-ptcl-img.gz", "checksum mismatch", "damaged"] {
        assert!(report.contains(e), "{e:?} not in {report}");
    }
}
