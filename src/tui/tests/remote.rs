//! `s3://` and `sftp://` repositories typed in the picker: the credentials screen
//! (secret as stars, endpoint prefilled), a refused secret on an error screen naming the
//! location and fixed in place, an unknown SFTP host key accepted by a typed "yes".

use super::*;
use crate::tui::model::RepoTarget;

/// Home -> Browse -> type `location` -> Enter: the credentials screen.
fn to_remote_login(app: &mut App, location: &str) {
    app.press(KeyCode::Char('i'));
    app.press(KeyCode::Char('/'));
    app.type_str(location);
    enter(app);
    assert!(
        matches!(app.screen(), Screen::RemoteLogin(_)),
        "{:?}",
        app.screen()
    );
}

#[test]
fn snap_s3_login_wrong_secret_then_fixed() {
    let (mut app, _) = app();
    to_remote_login(&mut app, "s3://lab-images/pcs");
    down(&mut app, 2); // access key
    app.type_str("demo");
    down(&mut app, 1);
    app.type_str("hunter2");
    snap("remote_login_s3", &app);
    assert!(
        !render(&app).contains("hunter2"),
        "the secret is never drawn"
    );
    enter(&mut app);
    app.settle(SETTLE);
    snap("remote_login_s3_refused", &app);
    let text = render(&app);
    assert!(text.contains("s3://lab-images/pcs"), "{text}");
    assert!(!text.contains("hunter2"));
    enter(&mut app); // back to the fields, as typed
    let Screen::RemoteLogin(form) = app.screen() else {
        panic!("{:?}", app.screen());
    };
    assert_eq!(form.creds.access_key, "demo");
    assert_eq!(form.field, 3);
    backspace(&mut app, 7);
    app.type_str("secret");
    enter(&mut app);
    app.settle(SETTLE);
    assert!(
        matches!(app.screen(), Screen::Images { .. }),
        "{:?}",
        app.screen()
    );
    assert_eq!(
        app.choices.repo.as_deref(),
        Some(std::path::Path::new("s3://lab-images/pcs"))
    );
    app.press(KeyCode::Esc); // past the login, to the picker
    assert!(matches!(app.screen(), Screen::Repos { .. }));
}

#[test]
fn s3_form_says_what_is_missing_and_toggles_path_style() {
    let (mut app, _) = app();
    to_remote_login(&mut app, "s3://lab-images");
    let Screen::RemoteLogin(form) = app.screen() else {
        panic!()
    };
    assert_eq!(form.creds.endpoint, crate::tui::demo::DEMO_ENDPOINT);
    assert!(form.creds.path_style, "a custom endpoint starts path-style");
    down(&mut app, 2);
    app.type_str("demo");
    enter(&mut app); // no secret, none in the environment
    match app.screen() {
        Screen::RemoteLogin(f) => assert!(
            f.note.as_deref().is_some_and(|n| n.contains("secret key")),
            "{f:?}"
        ),
        other => panic!("{other:?}"),
    }
    down(&mut app, 2);
    app.press(KeyCode::Char(' '));
    let Screen::RemoteLogin(form) = app.screen() else {
        panic!()
    };
    assert!(!form.creds.path_style);
}

#[test]
fn a_bad_remote_location_is_named_before_any_screen() {
    let (mut app, _) = app();
    app.press(KeyCode::Char('i'));
    app.press(KeyCode::Char('/'));
    app.type_str("s3://Bad_Bucket/x");
    enter(&mut app);
    match app.screen() {
        Screen::Repos { note: Some(n), .. } => assert!(n.contains("Bad_Bucket"), "{n}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn snap_sftp_host_key_accepted_by_typing_yes() {
    let (mut app, _) = app();
    to_remote_login(&mut app, "sftp://admin@backup.lan/srv/images");
    snap("remote_login_sftp", &app);
    app.press(KeyCode::Tab); // the password: drawn as stars only
    app.type_str("hunter2");
    let text = render(&app);
    assert!(
        !text.contains("hunter2") && text.contains("*******"),
        "{text}"
    );
    enter(&mut app);
    app.settle(SETTLE);
    assert!(
        matches!(app.screen(), Screen::HostKey { .. }),
        "{:?}",
        app.screen()
    );
    app.type_str("y");
    enter(&mut app); // "y" is not "yes": nothing trusted
    assert!(matches!(app.screen(), Screen::HostKey { .. }));
    backspace(&mut app, 1);
    app.type_str("yes");
    snap("remote_host_key", &app);
    enter(&mut app);
    app.settle(SETTLE);
    assert!(
        matches!(app.screen(), Screen::Images { .. }),
        "{:?}",
        app.screen()
    );
}

#[test]
fn a_location_longer_than_a_line_is_typed_and_shown_whole() {
    let long =
        "sftp://backup-operator@nas-02.lab.example.org:2222/srv/ironclone/repositories/lab-a/pcs";
    assert!(long.len() > 80);
    let (mut app, _) = app();
    app.press(KeyCode::Char('i'));
    app.press(KeyCode::Char('/'));
    app.type_str(long);
    // The picker's field shows the end being typed, cut in front.
    let text = render(&app);
    assert!(
        text.contains("Path:  ...") && text.contains("repositories/lab-a/pcs_"),
        "{text}"
    );
    enter(&mut app);
    let Screen::RemoteLogin(form) = app.screen() else {
        panic!("{:?}", app.screen());
    };
    assert_eq!(form.location, long);
    // The credentials screen shows all of it, over two lines.
    let text: String = render(&app).split_whitespace().collect();
    let parts: Vec<&str> = text.split('|').collect();
    let joined = parts.concat();
    assert!(joined.contains(long), "{text}");
}

#[test]
fn backup_to_s3_names_the_remote_repository() {
    let (mut app, fake) = app();
    app.press(KeyCode::Char('b'));
    enter(&mut app); // sda
    down(&mut app, 99); // past the partitions: type a location
    app.press(KeyCode::Char('/'));
    app.type_str("s3://lab-images/pcs");
    enter(&mut app);
    down(&mut app, 2);
    app.type_str("demo");
    down(&mut app, 1);
    app.type_str("secret");
    enter(&mut app);
    app.settle(SETTLE);
    assert!(
        matches!(app.screen(), Screen::Name { .. }),
        "{:?}",
        app.screen()
    );
    enter(&mut app);
    run_to_done(&mut app);
    let backup = fake.recorded().into_iter().find_map(|r| match r {
        Recorded::Backup(b) => Some(b),
        _ => None,
    });
    assert_eq!(
        backup.map(|b| b.repo),
        Some(std::path::PathBuf::from("s3://lab-images/pcs"))
    );
    let t = RepoTarget::Remote {
        location: "s3://x".into(),
        creds: crate::tui::remote::RemoteCreds {
            secret_key: crate::share::Password::new("topsecret"),
            ..Default::default()
        },
    };
    assert!(!format!("{t:?}").contains("topsecret"), "{t:?}");
}

/// Home -> the flow `key` -> the typed folder /home/partimag: its Clonezilla images.
fn to_partimag(app: &mut App, key: char) {
    app.press(KeyCode::Char(key));
    app.press(KeyCode::Char('/'));
    app.type_str("home/partimag");
    pick_repo(app);
    assert!(
        matches!(app.screen(), Screen::Images { .. }),
        "{:?}",
        app.screen()
    );
}

/// Verify: a Clonezilla image is checked whole like an ironclone one (every checksum,
/// nothing written), not refused.
#[test]
fn a_clonezilla_image_is_verified_like_an_ironclone_one() {
    let (mut app, fake) = app();
    to_partimag(&mut app, 'v');
    run_to_done(&mut app);
    match fake.recorded().as_slice() {
        [Recorded::Verify(v)] => {
            assert_eq!(v.repo, std::path::PathBuf::from("/home/partimag"));
            assert_eq!(v.image, "2026-11-30-12-img");
        }
        other => panic!("expected one verify, got {other:?}"),
    }
}

#[test]
fn snap_clonezilla_image_restores_like_an_ironclone_one() {
    let (mut app, fake) = app();
    to_partimag(&mut app, 'r');
    snap("images_clonezilla", &app);
    assert!(render(&app).contains("clonezilla"));
    enter(&mut app);
    assert!(
        matches!(app.screen(), Screen::Disks { .. }),
        "{:?}",
        app.screen()
    );
    snap("clonezilla_restore_targets", &app);
    down(&mut app, 2); // nvme0n1
    enter(&mut app);
    app.settle(SETTLE);
    assert!(
        matches!(app.screen(), Screen::Plan { .. }),
        "{:?}",
        app.screen()
    );
    snap("clonezilla_restore_plan", &app);
    enter(&mut app);
    snap("clonezilla_restore_confirm", &app);
    // The same typed confirmation as an ironclone image: a wrong name is refused.
    app.type_str("sda");
    enter(&mut app);
    assert!(
        matches!(app.screen(), Screen::Confirm { refused: true, .. }),
        "{:?}",
        app.screen()
    );
    assert!(fake.recorded().is_empty(), "a refused confirmation wrote");
    for _ in 0..3 {
        app.press(KeyCode::Backspace);
    }
    app.type_str("nvme0n1");
    run_to_done(&mut app);
    snap("clonezilla_restore_done", &app);
    match fake.recorded().as_slice() {
        [Recorded::Restore(r)] => {
            assert_eq!(r.repo, std::path::PathBuf::from("/home/partimag"));
            assert_eq!(r.image, "2026-11-30-12-img");
            assert_eq!(r.target_dev, "/dev/nvme0n1");
            assert_eq!(r.target_serial, "S649NF0R812345K");
        }
        other => panic!("expected one restore, got {other:?}"),
    }
}

/// The picker's questions about a repository on a network location (is it new, its
/// images) are asked on the opening thread, not the screen's: each is a request to
/// the server, which may be slow or failing. A backup into a new bucket too: the
/// question about encrypting it and the image name follow without asking again.
#[test]
fn a_remote_repository_is_asked_about_off_the_screen_thread() {
    let (mut a, fake) = app();
    let me = std::thread::current().id();
    let login = |app: &mut App| {
        down(app, 2); // access key
        app.type_str("demo");
        down(app, 1);
        app.type_str("secret");
        enter(app);
        app.settle(SETTLE);
    };
    to_remote_login(&mut a, "s3://lab-images/pcs");
    login(&mut a);
    assert!(
        matches!(a.screen(), Screen::Images { .. }),
        "{:?}",
        a.screen()
    );
    let asked = std::mem::take(&mut *fake.asked_on.lock().unwrap());
    assert!(asked.iter().any(|(w, _)| *w == "list_images"), "{asked:?}");
    assert!(asked.iter().all(|(_, t)| *t != me), "{asked:?}");

    let (mut app, fake) = app();
    app.press(KeyCode::Char('b'));
    enter(&mut app); // sda
    app.press(KeyCode::Char('/'));
    app.type_str("s3://lab-images/new");
    enter(&mut app);
    login(&mut app);
    assert!(
        matches!(app.screen(), Screen::NewRepo { .. }),
        "{:?}",
        app.screen()
    );
    down(&mut app, 1); // not encrypted
    enter(&mut app);
    assert!(
        matches!(app.screen(), Screen::Name { .. }),
        "{:?}",
        app.screen()
    );
    let asked = fake.asked_on.lock().unwrap().clone();
    assert!(asked.iter().any(|(w, _)| *w == "repo_is_new"), "{asked:?}");
    assert!(asked.iter().all(|(_, t)| *t != me), "{asked:?}");
}
