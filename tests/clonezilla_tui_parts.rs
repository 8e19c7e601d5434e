//! The TUI restores one partition of a Clonezilla saveparts image onto a partition,
//! with the real services: Restore -> the folder -> the row `img/sda2` -> partition 2 of
//! a loop disk (the only disk the session may use) -> the plan (grow) -> the loop
//! device's name typed -> the job (decoded and checked, grown, written, read back). The
//! restored partition passes e2fsck -fn and holds the fixture's files; partition 1, a
//! pattern, is untouched; no table is written. A damaged image ends on an error naming
//! the file, partition 2 untouched too.

mod clonezilla_fixture;
mod fsfixture;

use clonezilla_fixture::{part, shapes, MIB};
use crossterm::event::KeyCode;
use fsfixture::{prng_bytes, run, run_status};
use ironclone::tui::app::Screen;
use ironclone::tui::real::RealServices;
use ironclone::tui::App;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The tests set IRONCLONE_SCRATCH (process-wide) for the services: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A loop device with its partitions scanned; detached on drop.
struct Loop(String);
impl Loop {
    fn attach(file: &Path) -> Loop {
        let o = Command::new("losetup")
            .args(["-f", "-P", "--show", file.to_str().unwrap()])
            .output()
            .expect("losetup");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
        // losetup -P does not always scan here; partx adds what is missing.
        let _ = run_status("partx", &["-a", &dev]);
        for _ in 0..100 {
            if Path::new(&format!("{dev}p2")).exists() {
                return Loop(dev);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{dev}p2 did not appear");
    }
}
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("partx").args(["-d", &self.0]).status();
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

fn bytes_at(file: &Path, (start, len): (u64, u64)) -> Vec<u8> {
    let mut f = std::fs::File::open(file).unwrap();
    f.seek(SeekFrom::Start(start)).unwrap();
    let mut v = vec![0u8; len as usize];
    f.read_exact(&mut v).unwrap();
    v
}

/// A 240 MiB GPT disk: partition 1 (16 MiB) and 2 (200 MiB) hold a byte pattern.
fn target_disk(dir: &Path) -> PathBuf {
    let t = dir.join("target.img");
    let pattern: Vec<u8> = (0..240 * MIB).map(|i| (i % 249) as u8).collect();
    std::fs::write(&t, &pattern).unwrap();
    let mut c = Command::new("sfdisk")
        .args(["-q", t.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(b"label: gpt\nstart=2048, size=32768\nstart=34816, size=409600\n")
        .unwrap();
    assert!(c.wait().unwrap().success());
    t
}

/// Restore -> `root` -> the row `img/sda2` -> partition 2 of the loop disk -> the plan.
fn to_plan(root: &Path, lo: &Loop) -> App {
    let services = RealServices::new(Some(vec![PathBuf::from(&lo.0)]));
    let mut app = App::new(Arc::new(services));
    app.press(KeyCode::Char('r'));
    app.press(KeyCode::Char('/'));
    app.type_str(root.to_str().unwrap());
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(30));
    let names: Vec<&str> = app.choices.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["img/sda1", "img/sda2"], "{:?}", app.screen());
    app.press(KeyCode::Down);
    app.press(KeyCode::Enter);
    assert!(
        matches!(app.screen(), Screen::PartTargets { .. }),
        "{:?}",
        app.screen()
    );
    assert_eq!(app.part_targets().len(), 2, "{:?}", app.disks);
    app.press(KeyCode::Down);
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(60)); // the plan, made on its own thread
    assert!(
        matches!(app.screen(), Screen::Plan { .. }),
        "{:?}",
        app.screen()
    );
    app
}

fn confirm_and_run(app: &mut App, lo: &Loop) -> String {
    app.press(KeyCode::Enter);
    app.type_str(lo.0.trim_start_matches("/dev/"));
    app.press(KeyCode::Enter);
    app.settle(Duration::from_secs(600));
    format!("{:?}", app.report)
}

#[test]
#[ignore = "needs root"]
fn tui_restores_a_saved_partition_onto_a_partition() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 21, false);
    shapes::to_saveparts(&fx);
    let scratch = d.path().join("scratch");
    std::env::set_var("IRONCLONE_SCRATCH", &scratch);
    let target = target_disk(d.path());
    let before = std::fs::read(&target).unwrap();
    let lo = Loop::attach(&target);
    let mut app = to_plan(&fx.root, &lo);
    let plan = format!("{:?}", app.choices.plan);
    assert!(plan.contains("Grow") && plan.contains("ext4"), "{plan}");
    let report = confirm_and_run(&mut app, &lo);
    assert_eq!(app.screen(), &Screen::Done, "{report}");
    assert!(report.starts_with("Some(Ok("), "{report}");
    assert!(report.contains("onto partition 2"), "{report}");
    assert!(report.contains("grown to"), "{report}");
    drop(lo);
    // Partition 1 and the table: byte for byte what they were.
    let p2 = part(&target, 2);
    let after = std::fs::read(&target).unwrap();
    assert!(
        after[..p2.0 as usize] == before[..p2.0 as usize],
        "outside partition 2 was written"
    );
    let root = d.path().join("root.out");
    std::fs::write(&root, bytes_at(&target, p2)).unwrap();
    let o = run_status("e2fsck", &["-fn", root.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "e2fsck -fn: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = run("dumpe2fs", &["-h", root.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    let blocks: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Block count:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(
        blocks * 1024 > 150 * MIB || blocks * 4096 > 150 * MIB,
        "not grown: {blocks} blocks"
    );
    for i in 0..4u64 {
        let o = run(
            "debugfs",
            &["-R", &format!("cat /data{i}"), root.to_str().unwrap()],
        );
        assert!(
            o.stdout == prng_bytes(21 * 10 + i, 2_000_000),
            "/data{i} differs"
        );
    }
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .map(|r| r.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch files left behind: {left:?}");
}

#[test]
#[ignore = "needs root"]
fn tui_refuses_a_damaged_saved_partition_before_writing() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 22, false);
    shapes::to_saveparts(&fx);
    std::env::set_var("IRONCLONE_SCRATCH", d.path().join("scratch"));
    clonezilla_fixture::damage_gz(&fx.image.join("sda2.ext4-ptcl-img.gz"));
    let target = target_disk(d.path());
    let before = std::fs::read(&target).unwrap();
    let lo = Loop::attach(&target);
    let mut app = to_plan(&fx.root, &lo);
    let report = confirm_and_run(&mut app, &lo);
    assert!(report.starts_with("Some(Err("), "{report}");
    for e in [
        "sda2.ext4-ptcl-img.gz",
        "checksum mismatch",
        "Nothing was written",
    ] {
        assert!(report.contains(e), "{e:?} not in {report}");
    }
    drop(lo);
    assert!(
        std::fs::read(&target).unwrap() == before,
        "the target was written"
    );
}
