//! Snapshot tests of every screen at 80x25 (the Linux console) and behaviour tests that
//! drive `App::event` with the keys a user would press, against `FakeServices`.

mod deploy;
mod flows;
mod luks_key;
mod new_repo;
mod planning;
mod remote;
mod saveparts;
mod schedule;
mod screens;
mod unlock;

use super::app::{on_disk, parse_size, slug, App, JobView, Msg, Screen};
use super::demo::{FakeServices, Recorded};
use super::model::{DiskView, LayoutMode, SizeChoice};
use crate::progress::ProgressEvent;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::sync::Arc;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(20);

fn app_with(fake: Arc<FakeServices>) -> App {
    App::new(fake)
}

fn app() -> (App, Arc<FakeServices>) {
    let fake = Arc::new(FakeServices::default());
    (app_with(fake.clone()), fake)
}

/// The screen as plain text, one line per row, trailing spaces cut.
pub fn render(app: &App) -> String {
    let mut term = Terminal::new(TestBackend::new(80, 25)).expect("test backend");
    term.draw(|f| app.draw(f)).expect("draw");
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    assert!(
        out.is_ascii(),
        "screen must be ASCII-only for the Linux console:\n{out}"
    );
    out
}

fn snap(name: &str, app: &App) {
    insta::assert_snapshot!(name, render(app));
}

/// A screen drawn without an `App` (a deploy client's console), beside the others.
fn snap_text(name: &str, text: String) {
    insta::assert_snapshot!(name, text);
}

fn ctrl_c(app: &mut App) {
    app.event(Event::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
}

fn enter(app: &mut App) {
    app.press(KeyCode::Enter);
}

/// Moves the selection down `n` rows.
fn down(app: &mut App, n: usize) {
    for _ in 0..n {
        app.press(KeyCode::Down);
    }
}

fn backspace(app: &mut App, n: usize) {
    for _ in 0..n {
        app.press(KeyCode::Backspace);
    }
}

/// Enter on the repository picker: the repository is opened (and its images listed)
/// on its own thread; waits for it.
fn pick_repo(app: &mut App) {
    enter(app);
    app.settle(SETTLE);
}

/// Enter starts the job on screen; waits for it to end on the Done screen.
fn run_to_done(app: &mut App) {
    enter(app);
    app.settle(SETTLE);
    assert_eq!(app.screen(), &Screen::Done);
}

/// Home -> Restore -> repository sdd1 -> the image `image_row` rows down: the picker
/// of restore targets.
fn to_restore_targets(app: &mut App, image_row: usize) {
    app.press(KeyCode::Char('r'));
    pick_repo(app); // /dev/sdd1
    down(app, image_row);
    enter(app);
}

/// Home -> Restore -> repository sdd1 -> the newest latitude image -> target nvme0n1
/// (3rd disk).
fn to_restore_plan(app: &mut App) {
    to_restore_targets(app, 1);
    down(app, 2); // nvme0n1
    enter(app);
    app.settle(SETTLE); // the plan is made on its own thread
    assert!(
        matches!(app.screen(), Screen::Plan { .. }),
        "{:?}",
        app.screen()
    );
}

/// The restore plan accepted: the screen asking for the target's name.
fn to_restore_confirm(app: &mut App) {
    to_restore_plan(app);
    enter(app);
}

/// Home -> Backup -> sda -> sdd1: the name screen.
fn to_backup_name(app: &mut App) {
    app.press(KeyCode::Char('b'));
    enter(app); // sda
    pick_repo(app); // sdd1
}

fn to_backup_summary(app: &mut App) {
    to_backup_name(app);
    enter(app); // default name
    assert_eq!(app.screen(), &Screen::Summary);
}

/// The USB stick the hot-plug tests plug in.
fn kingston_stick() -> DiskView {
    DiskView {
        dev: "/dev/sde".into(),
        model: "Kingston DataTraveler 3.0".into(),
        serial: "E0D55EA573F4F130".into(),
        size: 64_000_000_000,
        transport: "USB".into(),
        ..Default::default()
    }
}
