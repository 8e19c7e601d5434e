//! An image that holds the plaintext of LUKS volumes (`needs_luks_key`): its passphrase
//! is asked right after the image is picked (stars), checked by the services against
//! the image's header; a wrong one is said so and asked again, Esc goes back to the
//! images, the right one is carried in the restore request. Other images never ask.

use super::flows::clear_confirm_input;
use super::*;
use crate::share::Password;
use crate::tui::demo::DEMO_LUKS_PASSPHRASE;

/// The demo machine whose newest latitude image (row 1) needs a LUKS key.
pub(super) fn luks_app() -> (App, Arc<FakeServices>) {
    let mut fake = FakeServices::default();
    fake.images[1].needs_luks_key = true;
    let fake = Arc::new(fake);
    (app_with(fake.clone()), fake)
}

fn restores(fake: &FakeServices) -> Vec<crate::tui::model::RestoreRequest> {
    fake.recorded()
        .into_iter()
        .filter_map(|r| match r {
            Recorded::Restore(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// From the target picker (nvme0n1) to the finished restore.
fn restore_onto_nvme(app: &mut App) {
    down(app, 2); // nvme0n1
    enter(app);
    app.settle(SETTLE);
    assert!(
        matches!(app.screen(), Screen::Plan { .. }),
        "{:?}",
        app.screen()
    );
    enter(app);
    clear_confirm_input(app);
    app.type_str("S649NF0R812345K");
    enter(app);
    app.settle(SETTLE);
}

#[test]
fn snap_luks_key_wrong_then_right_key_carried_in_the_request() {
    let (mut app, fake) = luks_app();
    to_restore_targets(&mut app, 1);
    assert!(
        matches!(app.screen(), Screen::LuksKey { .. }),
        "{:?}",
        app.screen()
    );
    app.type_str("guess");
    let shown = render(&app);
    assert!(
        shown.contains("*****_") && !shown.contains("guess"),
        "{shown}"
    );
    enter(&mut app);
    app.settle(SETTLE); // checked on its own thread
    snap("luks_key_wrong", &app);
    let shown = render(&app);
    assert!(
        matches!(app.screen(), Screen::LuksKey { .. }) && shown.contains("Wrong passphrase"),
        "a wrong key is said so and asked again: {shown}"
    );
    assert!(!shown.contains("*****"), "a wrong key empties the field");
    // Esc: back to the images; picking the image again asks again.
    app.press(KeyCode::Esc);
    assert!(matches!(app.screen(), Screen::Images { .. }));
    enter(&mut app);
    assert!(matches!(app.screen(), Screen::LuksKey { .. }));
    app.type_str(DEMO_LUKS_PASSPHRASE);
    enter(&mut app);
    app.settle(SETTLE);
    assert!(
        matches!(app.screen(), Screen::Disks { .. }),
        "{:?}",
        app.screen()
    );
    // Back from the targets goes to the images, not to the passphrase.
    app.press(KeyCode::Esc);
    assert!(matches!(app.screen(), Screen::Images { .. }));
    enter(&mut app);
    app.type_str(DEMO_LUKS_PASSPHRASE);
    enter(&mut app);
    app.settle(SETTLE);
    restore_onto_nvme(&mut app);
    let got = restores(&fake);
    assert_eq!(got.len(), 1, "{:?}", fake.recorded());
    assert!(
        got[0].luks_key == Some(Password::new(DEMO_LUKS_PASSPHRASE)),
        "the restore request does not carry the key"
    );
    assert!(
        !format!("{:?}", fake.recorded()).contains(DEMO_LUKS_PASSPHRASE),
        "the key shows in a Debug print"
    );
}

#[test]
fn an_image_without_luks_never_asks_and_carries_no_key() {
    let (mut app, fake) = app();
    to_restore_targets(&mut app, 1);
    assert!(
        matches!(app.screen(), Screen::Disks { .. }),
        "{:?}",
        app.screen()
    );
    restore_onto_nvme(&mut app);
    let got = restores(&fake);
    assert_eq!(got.len(), 1, "{:?}", fake.recorded());
    assert!(got[0].luks_key.is_none());
}
