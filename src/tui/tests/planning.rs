//! Work the screen waits for runs on threads of its own: opening a repository (a
//! mount, then its image list), the restore plan (which loads the image's manifest, a
//! download from a network repository) and an image's LUKS passphrase check (the
//! header's Argon2id). Keys that would edit or accept wait for
//! the answer; Esc leaves and drops it.

use super::luks_key::luks_app;
use super::*;
use crate::tui::demo::DEMO_LUKS_PASSPHRASE;
use crate::tui::model::LayoutMode;
use std::thread::ThreadId;

/// The threads `what` was asked on, so far.
fn asked_on(fake: &FakeServices, what: &str) -> Vec<ThreadId> {
    let asked = fake.asked_on.lock().unwrap_or_else(|e| e.into_inner());
    asked
        .iter()
        .filter(|(w, _)| *w == what)
        .map(|(_, t)| *t)
        .collect()
}

/// Hands the next message the app's threads send to the app, as the main loop would;
/// returns it as printed (`Msg` is not `Clone`).
fn next_answer(app: &mut App) -> String {
    let m = app
        .receiver()
        .recv_timeout(SETTLE)
        .expect("no answer from the thread");
    let shown = format!("{m:?}");
    app.update(m);
    shown
}

#[test]
fn snap_plan_made_off_the_screens_thread() {
    let (mut app, fake) = app();
    to_restore_targets(&mut app, 1);
    down(&mut app, 2); // nvme0n1
    enter(&mut app);
    assert!(app.planning(), "the plan was made on the screen's thread");
    assert!(app.choices.plan.is_none());
    snap("restore_plan_making", &app);
    assert!(render(&app).contains("Making the plan"));
    // Nothing to edit or accept yet: these keys wait for the plan.
    app.press(KeyCode::Char('m'));
    enter(&mut app);
    assert_eq!(app.choices.options.mode, LayoutMode::default());
    assert!(matches!(app.screen(), Screen::Plan { .. }));
    app.settle(SETTLE);
    assert!(matches!(app.choices.plan, Some(Ok(_))));
    // An edit asks again, and also off the screen's thread.
    app.press(KeyCode::Char('m'));
    assert!(app.planning() && app.choices.plan.is_none());
    app.settle(SETTLE);
    assert_eq!(app.choices.options.mode, LayoutMode::Keep);
    assert!(matches!(app.choices.plan, Some(Ok(_))));
    let on = asked_on(&fake, "plan_restore");
    assert_eq!(on.len(), 2, "{on:?}");
    assert!(
        !on.contains(&std::thread::current().id()),
        "a plan was made on the screen's thread"
    );
}

#[test]
fn esc_while_planning_drops_the_plan() {
    let (mut app, _) = app();
    to_restore_targets(&mut app, 1);
    down(&mut app, 2);
    enter(&mut app);
    app.press(KeyCode::Esc);
    assert!(matches!(app.screen(), Screen::Disks { .. }));
    let got = next_answer(&mut app);
    assert!(got.starts_with("Planned"), "{got}");
    assert!(
        app.choices.plan.is_none() && !app.planning(),
        "the answer to a plan left with Esc was kept"
    );
}

#[test]
fn luks_key_checked_off_the_screens_thread() {
    let (mut app, fake) = luks_app();
    to_restore_targets(&mut app, 1);
    app.type_str(DEMO_LUKS_PASSPHRASE);
    enter(&mut app);
    let shown = render(&app);
    assert!(
        matches!(app.screen(), Screen::LuksKey { .. }) && shown.contains("Checking the passphrase"),
        "{shown}"
    );
    assert!(
        !shown.contains("*****"),
        "the field keeps the key while it is checked"
    );
    // Typing waits for the answer.
    app.type_str("more");
    assert!(!render(&app).contains("****"));
    app.settle(SETTLE);
    assert!(
        matches!(app.screen(), Screen::Disks { .. }),
        "{:?}",
        app.screen()
    );
    assert!(
        app.choices.luks_key.is_some(),
        "the key checked was not kept"
    );
    let on = asked_on(&fake, "check_luks_key");
    assert_eq!(on.len(), 1, "{on:?}");
    assert!(
        !on.contains(&std::thread::current().id()),
        "the key was checked on the screen's thread"
    );
}

#[test]
fn esc_during_the_luks_check_drops_its_answer() {
    let (mut app, _) = luks_app();
    to_restore_targets(&mut app, 1);
    app.type_str(DEMO_LUKS_PASSPHRASE);
    enter(&mut app);
    app.press(KeyCode::Esc);
    assert!(matches!(app.screen(), Screen::Images { .. }));
    let got = next_answer(&mut app);
    assert!(got.starts_with("LuksChecked"), "{got}");
    assert!(
        matches!(app.screen(), Screen::Images { .. }) && app.choices.luks_key.is_none(),
        "the answer to a check left with Esc was used: {:?}",
        app.screen()
    );
}

#[test]
fn a_local_repository_is_opened_off_the_screens_thread() {
    let (mut app, fake) = app();
    app.press(KeyCode::Char('r'));
    enter(&mut app); // /dev/sdd1
    assert!(
        app.connecting(),
        "the repository was opened on the screen's thread"
    );
    let shown = render(&app);
    assert!(shown.contains("Opening /dev/sdd1..."), "{shown}");
    // Enter again while it opens asks nothing more.
    enter(&mut app);
    assert!(matches!(app.screen(), Screen::Repos { .. }));
    app.settle(SETTLE);
    assert!(
        matches!(app.screen(), Screen::Images { .. }),
        "{:?}",
        app.screen()
    );
    let on = [asked_on(&fake, "open_repo"), asked_on(&fake, "list_images")].concat();
    assert_eq!(on.len(), 2, "{on:?}");
    assert!(
        !on.contains(&std::thread::current().id()),
        "opened or listed on the screen's thread"
    );
    // Esc while it opens: the answer is dropped, the picker stays.
    app.press(KeyCode::Esc);
    enter(&mut app);
    app.press(KeyCode::Esc);
    assert!(render(&app).contains("Stopped waiting for /dev/sdd1."));
    next_answer(&mut app);
    assert!(
        matches!(app.screen(), Screen::Repos { .. }),
        "{:?}",
        app.screen()
    );
}
