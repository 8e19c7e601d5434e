//! The TUI restores a Clonezilla image like an ironclone one, with the real services:
//! Restore -> the folder holding the image folder typed as the repository -> the
//! Clonezilla image -> a loop device (the only disk the session may use) -> the plan
//! -> the loop device's name typed -> the job runs (every checksum checked, then
//! written and read back) -> the result screen. The restored disk's filesystems pass
//! fsck.vfat -n and e2fsck -fn and hold the fixture's files (tests/clonezilla_fixture).

mod clonezilla_fixture;
mod fsfixture;

use clonezilla_fixture::{check_restored, MIB};
use crossterm::event::KeyCode;
use ironclone::tui::app::Screen;
use ironclone::tui::real::RealServices;
use ironclone::tui::App;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

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

#[test]
#[ignore = "needs root"]
fn tui_restores_a_clonezilla_image_onto_a_loop_device() {
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
    let services = RealServices::new(Some(vec![PathBuf::from(&lo.0)]));
    let mut app = App::new(Arc::new(services));
    app.press(KeyCode::Char('r'));
    app.press(KeyCode::Char('/'));
    app.type_str(fx.root.to_str().unwrap());
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(30));
    assert!(
        matches!(app.screen(), Screen::Images { .. }),
        "{:?}",
        app.screen()
    );
    app.press(KeyCode::Enter); // the one image: the Clonezilla folder "img"
    assert!(
        matches!(app.screen(), Screen::Disks { .. }),
        "{:?}",
        app.screen()
    );
    app.press(KeyCode::Enter); // the loop device, the only disk shown
    assert!(
        matches!(app.screen(), Screen::Plan { .. }),
        "{:?}",
        app.screen()
    );
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
