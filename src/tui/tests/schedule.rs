//! The schedule flow: disk, repository, form, summary, install; what the user typed
//! reaches `install_schedule` exactly, and a wrong field is named on the form.

use super::*;
use crate::tui::model::ScheduleRequest;

/// Home, "Schedule backups", the first disk (sda), the USB backup disk's partition.
fn to_schedule_form(app: &mut App) {
    app.press(KeyCode::Char('a'));
    assert!(
        matches!(app.screen(), Screen::Disks { .. }),
        "{}",
        render(app)
    );
    enter(app);
    assert!(
        matches!(app.screen(), Screen::Repos { .. }),
        "{}",
        render(app)
    );
    pick_repo(app);
    assert!(
        matches!(app.screen(), Screen::ScheduleForm(_)),
        "{}",
        render(app)
    );
}

#[test]
fn snap_schedule_form_summary_done() {
    let (mut app, fake) = app();
    to_schedule_form(&mut app);
    snap("schedule_form", &app);

    // A budget that is no size: named on the form, nothing installed.
    app.press(KeyCode::Down);
    backspace(&mut app, 3);
    app.type_str("lots");
    enter(&mut app);
    assert!(matches!(app.screen(), Screen::ScheduleForm(_)));
    snap("schedule_form_bad_budget", &app);

    backspace(&mut app, 4);
    app.type_str("500G");
    // Keep newest: 7 -> 14.
    app.press(KeyCode::Down);
    backspace(&mut app, 1);
    app.type_str("14");
    enter(&mut app);
    snap("schedule_summary", &app);
    assert!(fake.recorded().is_empty(), "nothing installed before Enter");

    enter(&mut app);
    snap("schedule_done", &app);
    let want = ScheduleRequest {
        disk: app.choices.source.clone().expect("a disk was chosen"),
        repo: "uuid=2f6c0a4e-9b1d-4c3e-8f27-5a1e0c9d7b31:/ironclone".into(),
        calendar: "daily".into(),
        budget: "500G".into(),
        keep_last: 14,
        keep_weekly: 4,
        keep_monthly: 6,
    };
    assert_eq!(want.disk.dev, "/dev/sda");
    assert!(
        matches!(fake.recorded().as_slice(), [Recorded::Schedule(r)] if *r == want),
        "{:?}",
        fake.recorded()
    );
    enter(&mut app);
    assert_eq!(app.screen(), &Screen::Home { sel: 5 });
}

#[test]
fn schedule_refuses_what_a_timer_cannot_use() {
    let (mut app, fake) = app();
    to_schedule_form(&mut app);
    // A calendar systemd does not take: its error, on the form, focus on the field.
    app.type_str("x");
    app.press(KeyCode::Down);
    enter(&mut app);
    let text = render(&app);
    assert!(text.contains("calendar \"dailyx\""), "{text}");
    assert!(
        matches!(app.screen(), Screen::ScheduleForm(f) if f.focus == 1),
        "the calendar's error leaves the focus where it was"
    );
    // A count that is no number names its field.
    app.press(KeyCode::Up);
    backspace(&mut app, 1);
    down(&mut app, 4);
    backspace(&mut app, 1);
    app.type_str("six");
    enter(&mut app);
    let text = render(&app);
    assert!(
        text.contains("Keep monthly: \"six\" is not a whole number."),
        "{text}"
    );
    assert!(matches!(app.screen(), Screen::ScheduleForm(f) if f.focus == 4));
    assert!(fake.recorded().is_empty());
}

#[test]
fn schedule_refuses_the_repository_on_the_disk_it_backs_up() {
    let (mut app, _) = app();
    app.press(KeyCode::Char('a'));
    down(&mut app, 1);
    enter(&mut app); // sdb
    down(&mut app, 1);
    pick_repo(&mut app); // sdb1
    assert!(matches!(app.screen(), Screen::Repos { .. }));
    let text = render(&app);
    assert!(
        text.contains("/dev/sdb1 is on the disk being backed up"),
        "{text}"
    );
}
