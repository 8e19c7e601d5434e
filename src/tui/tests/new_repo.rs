//! A backup into a location without a repository asks whether to encrypt the new one,
//! takes its passphrase twice as stars, and hands it to the job; an existing
//! repository is never asked about.

use super::*;
use crate::share::Password;

/// Home -> Backup -> sda -> the typed path `path`.
fn to_typed_repo(app: &mut App, path: &str) {
    app.press(KeyCode::Char('b'));
    enter(app); // sda
    app.press(KeyCode::Char('/'));
    app.type_str(path);
    pick_repo(app);
}

fn recorded_encrypt(fake: &FakeServices) -> Option<Password> {
    match fake.recorded().first() {
        Some(Recorded::Backup(b)) => b.encrypt.clone(),
        other => panic!("no backup recorded: {other:?}"),
    }
}

#[test]
fn snap_new_repository_encrypted_with_a_passphrase_typed_twice() {
    let (mut app, fake) = app();
    to_typed_repo(&mut app, "/mnt/usb/new");
    assert!(
        matches!(app.screen(), Screen::NewRepo { sel: 0, .. }),
        "{:?}",
        app.screen()
    );
    snap("new_repo_choice", &app);
    enter(&mut app);
    enter(&mut app); // nothing typed
    assert!(render(&app).contains("Type a passphrase"));
    app.type_str("hunter2-first");
    enter(&mut app);
    app.type_str("hunter2-other");
    enter(&mut app);
    let text = render(&app);
    assert!(text.contains("The two passphrases differ"), "{text}");
    snap("new_repo_passphrase_differ", &app);
    app.type_str("correct horse");
    app.press(KeyCode::Tab);
    app.type_str("correct horse");
    let text = render(&app);
    assert!(
        !text.contains("horse") && !text.contains("hunter2"),
        "{text}"
    );
    enter(&mut app);
    assert!(
        matches!(app.screen(), Screen::Name { .. }),
        "{:?}",
        app.screen()
    );
    enter(&mut app);
    let text = render(&app);
    assert!(text.contains("a new repository, ENCRYPTED"), "{text}");
    run_to_done(&mut app);
    assert_eq!(
        recorded_encrypt(&fake),
        Some(Password::new("correct horse"))
    );
}

#[test]
fn new_repository_left_unencrypted_and_esc_walks_back() {
    let (mut app, fake) = app();
    to_typed_repo(&mut app, "/mnt/usb/new");
    enter(&mut app);
    assert!(matches!(app.screen(), Screen::NewPassphrase { .. }));
    app.press(KeyCode::Esc);
    assert!(matches!(app.screen(), Screen::NewRepo { .. }));
    app.press(KeyCode::Esc);
    assert!(
        matches!(app.screen(), Screen::Repos { .. }),
        "{:?}",
        app.screen()
    );
    // Picked again: asked again.
    pick_repo(&mut app);
    assert!(
        matches!(app.screen(), Screen::NewRepo { .. }),
        "{:?}",
        app.screen()
    );
    down(&mut app, 1);
    enter(&mut app);
    assert!(
        matches!(app.screen(), Screen::Name { .. }),
        "{:?}",
        app.screen()
    );
    enter(&mut app);
    assert!(render(&app).contains("a new repository, not encrypted"));
    run_to_done(&mut app);
    assert_eq!(recorded_encrypt(&fake), None);
}

#[test]
fn an_existing_repository_is_not_asked_about() {
    let (mut app, fake) = app();
    to_backup_summary(&mut app);
    assert!(!render(&app).contains("a new repository"));
    run_to_done(&mut app);
    assert_eq!(recorded_encrypt(&fake), None);
}
