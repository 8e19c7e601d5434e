//! Behaviour tests: key sequences through the flows, refusals, cancels and
//! refreshes, with the fake services recording what was asked of them.

use super::*;

#[test]
fn ctrl_c_during_job_asks_then_cancels() {
    let fake = Arc::new(FakeServices::new(Duration::from_millis(20)));
    let mut app = app_with(fake.clone());
    to_restore_confirm(&mut app);
    app.type_str("nvme0n1");
    enter(&mut app);
    assert!(app.job_running());
    ctrl_c(&mut app);
    assert!(app.cancel_ask);
    // Freeze what the screen shows so the snapshot does not depend on timing.
    let mut shown = app_with(fake.clone());
    shown.flow = crate::tui::app::Flow::Backup;
    shown.stack.push(Screen::Progress);
    shown.job.title = "Backing up".into();
    for ev in [
        ProgressEvent::JobStart {
            job: "backup".into(),
            total_bytes: 213 << 30,
        },
        ProgressEvent::PhaseStart {
            name: "partition 3 (ntfs)".into(),
            total_bytes: 212 << 30,
        },
        ProgressEvent::Advance { bytes: 61 << 30 },
    ] {
        shown.update(Msg::Progress(ev));
    }
    shown.job.elapsed_secs = 300.0;
    shown.cancel_ask = true;
    snap("cancel_ask", &shown);

    app.press(KeyCode::Char('n'));
    assert!(
        !app.cancel_ask && app.job_running(),
        "n keeps the job going"
    );
    ctrl_c(&mut app);
    app.press(KeyCode::Char('y'));
    app.settle(SETTLE);
    assert_eq!(app.screen(), &Screen::Done);
    assert!(matches!(&app.report, Some(Err(e)) if e.is_cancelled()));
    let text = render(&app);
    assert!(text.contains("Cancelled"), "{text}");
}

#[test]
fn confirmation_refuses_until_exact_name() {
    let (mut app, fake) = app();
    to_restore_confirm(&mut app);
    for wrong in [
        "",
        "sd",
        "nvme0",
        "NVME0N1",
        "s649nf0r812345k",
        "S649NF0R812345",
        "sda",
    ] {
        clear_confirm_input(&mut app);
        app.type_str(wrong);
        enter(&mut app);
        assert!(
            matches!(app.screen(), Screen::Confirm { refused: true, .. }),
            "{wrong:?} must be refused"
        );
        assert!(!app.job_running());
    }
    assert!(
        fake.recorded().is_empty(),
        "nothing may start before the exact name"
    );
    // A typo fixed with Backspace is accepted.
    clear_confirm_input(&mut app);
    app.type_str("S649NF0R812345X");
    app.press(KeyCode::Backspace);
    app.type_str("K");
    enter(&mut app);
    app.settle(SETTLE);
    match fake.recorded().as_slice() {
        [Recorded::Restore(r)] => {
            assert_eq!(r.target_dev, "/dev/nvme0n1");
            assert_eq!(r.target_serial, "S649NF0R812345K");
            assert_eq!(r.image, "latitude-7490-2026-11-20");
            assert_eq!(r.options.mode, LayoutMode::Proportional);
        }
        other => panic!("expected one restore, got {other:?}"),
    }
}

#[test]
fn esc_goes_back_step_by_step() {
    let (mut app, fake) = app();
    to_restore_confirm(&mut app);
    let expected = ["Plan", "Disks", "Images", "Repos", "Home", "Home"];
    for want in expected {
        app.press(KeyCode::Esc);
        let got = format!("{:?}", app.screen());
        assert!(got.starts_with(want), "wanted {want}, got {got}");
    }
    assert!(fake.recorded().is_empty());
}

#[test]
fn full_backup_flow_reaches_done_and_records_request() {
    let (mut app, fake) = app();
    to_backup_summary(&mut app);
    run_to_done(&mut app);
    let rec = fake.recorded();
    match rec.as_slice() {
        [Recorded::Backup(b), Recorded::Verify(v)] => {
            assert_eq!(b.source_dev, "/dev/sda");
            assert_eq!(b.source_serial, "S3Z9NB0K512345A");
            assert_eq!(b.name, "samsung-ssd-860-evo-500gb-2026-11-23");
            assert_eq!(
                b.repo,
                std::path::PathBuf::from("/run/ironclone/sdd1/ironclone")
            );
            assert_eq!(v.image, b.name);
        }
        other => panic!("expected backup then verify, got {other:?}"),
    }
    assert!(matches!(app.report, Some(Ok(_))));
    assert!(matches!(app.verify_report, Some(Ok(_))));
    enter(&mut app);
    assert_eq!(app.screen(), &Screen::Home { sel: 0 });
}

#[test]
fn backup_name_is_editable_and_checked() {
    let (mut app, fake) = app();
    to_backup_name(&mut app);
    backspace(&mut app, 40);
    // An existing image name is refused, a bad character too.
    app.type_str("latitude-7490-2026-11-20");
    enter(&mut app);
    assert!(matches!(app.screen(), Screen::Name { note: Some(_), .. }));
    backspace(&mut app, 2);
    app.type_str("23/x");
    enter(&mut app);
    assert!(matches!(app.screen(), Screen::Name { note: Some(_), .. }));
    backspace(&mut app, 2);
    enter(&mut app);
    enter(&mut app);
    app.settle(SETTLE);
    assert!(
        matches!(fake.recorded().first(), Some(Recorded::Backup(b)) if b.name == "latitude-7490-2026-11-23")
    );
}

#[test]
fn boot_medium_is_not_a_backup_source() {
    let (mut app, fake) = app();
    app.press(KeyCode::Char('b'));
    down(&mut app, 3);
    enter(&mut app);
    assert!(matches!(app.screen(), Screen::Disks { note: Some(_), .. }));
    assert!(fake.recorded().is_empty());
}

#[test]
fn hotplugged_disk_appears_on_refresh() {
    let (mut app, fake) = app();
    app.press(KeyCode::Char('b'));
    let before = app.disks.len();
    fake.plug(DiskView {
        removable: true,
        ..kingston_stick()
    });
    app.press(KeyCode::Char('r'));
    assert_eq!(app.disks.len(), before + 1);
    assert!(render(&app).contains("Kingston DataTraveler"));
}

#[test]
fn plan_mode_toggle_and_max_size() {
    let (mut app, _) = app();
    to_restore_plan(&mut app);
    app.press(KeyCode::Char('m'));
    app.settle(SETTLE);
    assert_eq!(app.choices.options.mode, LayoutMode::Keep);
    assert!(matches!(app.choices.plan, Some(Ok(_))));
    app.press(KeyCode::Char('m'));
    app.settle(SETTLE);
    down(&mut app, 2);
    app.press(KeyCode::Char('s'));
    app.type_str("max");
    enter(&mut app);
    app.settle(SETTLE);
    assert_eq!(app.choices.options.sizes, vec![(3, SizeChoice::Max)]);
    assert!(matches!(app.choices.plan, Some(Ok(_))));
}

#[test]
fn verify_flow_and_clone_flow() {
    let (mut app, fake) = app();
    app.press(KeyCode::Char('v'));
    pick_repo(&mut app);
    run_to_done(&mut app);
    snap("verify_done", &app);
    enter(&mut app);

    app.press(KeyCode::Char('c'));
    enter(&mut app); // from sda
    enter(&mut app); // sda again as target: refused
    assert!(matches!(app.screen(), Screen::Disks { note: Some(_), .. }));
    down(&mut app, 2); // nvme0n1
    enter(&mut app);
    app.settle(SETTLE);
    enter(&mut app);
    app.type_str("nvme0n1");
    enter(&mut app);
    app.settle(SETTLE);
    let rec = fake.recorded();
    assert!(
        matches!(rec.last(), Some(Recorded::Clone(c)) if c.source_dev == "/dev/sda" && c.target_dev == "/dev/nvme0n1")
    );
}

#[test]
fn sizes_and_names_parse() {
    assert_eq!(parse_size("40G"), Some(SizeChoice::Bytes(40 << 30)));
    assert_eq!(parse_size("512MiB"), Some(SizeChoice::Bytes(512 << 20)));
    assert_eq!(parse_size("1.5t"), Some(SizeChoice::Bytes(3 << 39)));
    assert_eq!(parse_size("MAX"), Some(SizeChoice::Max));
    for bad in ["", "G", "-1G", "abc", "1e30T", "nan"] {
        assert_eq!(parse_size(bad), None, "{bad:?}");
    }
    assert_eq!(
        slug("Samsung SSD 860 EVO 500GB"),
        "samsung-ssd-860-evo-500gb"
    );
    assert_eq!(slug("  WDC/WD10 "), "wdc-wd10");
}

#[test]
fn cancelling_the_verify_after_a_backup_keeps_the_image() {
    let fake = Arc::new(FakeServices::new(Duration::from_millis(5)));
    let mut app = app_with(fake.clone());
    to_backup_summary(&mut app);
    enter(&mut app);
    let rx = app.receiver();
    while app.job.kind != Some(crate::tui::app::Flow::Verify) {
        let m = rx.recv_timeout(SETTLE).expect("backup progresses");
        app.update(m);
    }
    ctrl_c(&mut app);
    app.press(KeyCode::Char('y'));
    app.settle(SETTLE);
    assert!(
        matches!(app.report, Some(Ok(_))),
        "the backup itself succeeded"
    );
    assert!(matches!(&app.verify_report, Some(Err(e)) if e.is_cancelled()));
    let text = render(&app);
    assert!(text.contains("Backup done, not verified"), "{text}");
    assert!(text.contains("not verified"), "{text}");
}

#[test]
fn a_failing_service_shows_the_error_screen_in_plain_words() {
    let (mut app, fake) = app();
    *fake.fail_listing.lock().expect("lock") = Some("lsblk exited with status 1".into());
    app.press(KeyCode::Char('r'));
    let text = render(&app);
    assert!(text.contains("Something went wrong"), "{text}");
    assert!(text.contains("lsblk exited with status 1"), "{text}");
    assert!(text.contains("What to do next"), "{text}");
    app.press(KeyCode::Esc);
    assert_eq!(app.screen(), &Screen::Home { sel: 1 });
}

/// The 2-second refresh must not move the highlight to another disk when one appears
/// above it (an NVMe disk that shows up late sorts first), nor leave it past the end
/// when the last row goes.
#[test]
fn the_highlight_stays_on_its_disk_when_rows_come_and_go() {
    let (mut app, fake) = app();
    app.press(KeyCode::Char('b'));
    down(&mut app, 2);
    let chosen = app.disks[2].dev.clone();
    fake.plug_at(
        0,
        DiskView {
            dev: "/dev/nvme1n1".into(),
            ..kingston_stick()
        },
    );
    app.press(KeyCode::Char('r'));
    let Screen::Disks { sel, .. } = app.screen() else {
        panic!("{:?}", app.screen())
    };
    assert_eq!(*sel, 3);
    assert_eq!(app.disks[*sel].dev, chosen);
    let last = app.disks.len() - 1;
    down(&mut app, last);
    fake.unplug(&app.disks[last].dev.clone());
    app.press(KeyCode::Char('r'));
    let Screen::Disks { sel, .. } = app.screen() else {
        panic!("{:?}", app.screen())
    };
    assert_eq!(*sel, app.disks.len() - 1, "the nearest row");
}

#[test]
fn disk_list_refreshes_itself_every_two_seconds() {
    let (mut app, fake) = app();
    app.press(KeyCode::Char('b'));
    let before = app.disks.len();
    fake.plug(kingston_stick());
    app.update(Msg::Tick);
    assert_eq!(app.disks.len(), before, "not yet: refreshed < 2 s ago");
    app.last_refresh = std::time::Instant::now().checked_sub(Duration::from_secs(3));
    app.update(Msg::Tick);
    assert_eq!(app.disks.len(), before + 1);
}

#[test]
fn a_disk_without_serial_is_confirmed_by_its_name_only() {
    let (mut app, fake) = app();
    to_restore_targets(&mut app, 0);
    down(&mut app, 5); // vda, no serial
    enter(&mut app);
    app.settle(SETTLE);
    app.press(KeyCode::Char('x'));
    app.settle(SETTLE);
    // The Windows image (466 GiB) does not fit a 64 GiB disk with 212 GiB of data.
    assert!(matches!(app.choices.plan, Some(Err(_))));
    enter(&mut app);
    assert!(matches!(app.screen(), Screen::Plan { .. }));
    assert!(!app.confirm_accepts(""), "an empty serial must never match");
    assert!(app.confirm_accepts("vda"));
    assert!(fake.recorded().is_empty());
}

#[test]
fn many_disks_scroll_and_browse_leads_to_restore() {
    let (mut app, fake) = app();
    for i in 0..12 {
        fake.plug(DiskView {
            dev: format!("/dev/sd{}", (b'e' + i) as char),
            model: format!("USB stick {i}"),
            serial: format!("SER{i:04}"),
            size: 16_000_000_000,
            transport: "USB".into(),
            ..Default::default()
        });
    }
    app.press(KeyCode::Char('b'));
    down(&mut app, 15);
    let text = render(&app);
    assert!(text.contains("more above"), "{text}");
    assert!(
        text.contains("USB stick 9"),
        "the selected disk is on screen:\n{text}"
    );
    assert!(text.contains("serial SER0009"), "its details too:\n{text}");

    app.press(KeyCode::Esc);
    app.press(KeyCode::Char('i'));
    pick_repo(&mut app);
    app.press(KeyCode::Down);
    enter(&mut app);
    assert!(matches!(
        app.screen(),
        Screen::Disks {
            purpose: crate::tui::app::DiskPurpose::RestoreTarget,
            ..
        }
    ));
    assert_eq!(
        app.choices.image.as_ref().map(|i| i.name.as_str()),
        Some("latitude-7490-2026-11-20")
    );
}

#[test]
fn repository_and_source_or_target_on_the_same_disk_are_refused() {
    assert!(on_disk("/dev/sdb1", "/dev/sdb"));
    assert!(on_disk("/dev/nvme0n1p2", "/dev/nvme0n1"));
    assert!(!on_disk("/dev/sdb1", "/dev/sd"));
    assert!(!on_disk("/dev/sdba1", "/dev/sdb"));
    assert!(!on_disk("/dev/nvme0n10p1", "/dev/nvme0n1"));

    // Backing up sdb into a repository on /dev/sdb1.
    let (mut app, fake) = app();
    app.press(KeyCode::Char('b'));
    app.press(KeyCode::Down);
    enter(&mut app);
    app.press(KeyCode::Down); // /dev/sdb1
    enter(&mut app);
    assert!(
        matches!(app.screen(), Screen::Repos { note: Some(n), .. } if n.contains("another disk"))
    );

    // Restoring onto sdd, which holds the repository /dev/sdd1.
    let (mut app2, fake2) = super::app();
    to_restore_targets(&mut app2, 0);
    down(&mut app2, 4);
    enter(&mut app2);
    assert!(
        matches!(app2.screen(), Screen::Disks { note: Some(n), .. } if n.contains("holds the repository"))
    );
    // Neither refusal started anything on its own app's services.
    assert!(fake.recorded().is_empty());
    assert!(fake2.recorded().is_empty());
}

#[test]
fn a_panicking_job_ends_with_an_error_not_a_hang() {
    let h = crate::tui::services::JobHandle::spawn(|_| panic!("boom in the job"));
    let out = h.done.recv_timeout(SETTLE).expect("an outcome arrives");
    assert!(
        matches!(&out, Err(e) if e.to_string().contains("boom in the job") && e.to_string().contains("internal error"))
    );
}

/// Empties the name typed on the confirmation screen.
pub(super) fn clear_confirm_input(app: &mut App) {
    if let Some(Screen::Confirm { input, .. }) = app.stack.last_mut() {
        input.clear();
    }
}

#[test]
fn a_disk_under_a_gigabyte_shows_its_size_in_mib_on_both_lines() {
    let (mut app, fake) = app();
    for (dev, size) in [("/dev/loop0", 333u64 << 20), ("/dev/loop1", 512 << 20)] {
        fake.plug(DiskView {
            dev: dev.into(),
            model: "loop".into(),
            size,
            ..Default::default()
        });
    }
    app.press(KeyCode::Char('b'));
    let n = app.disks.len();
    for (back, mib) in [(2, "333.0 MiB"), (1, "512.0 MiB")] {
        down(&mut app, n);
        for _ in 0..back - 1 {
            app.press(KeyCode::Up);
        }
        let screen = render(&app);
        let row = screen
            .lines()
            .find(|l| l.contains("> "))
            .unwrap_or_default();
        assert!(row.contains(mib), "list row: {row}\n{screen}");
        let detail = screen
            .lines()
            .find(|l| l.contains("serial") && l.contains("loop"))
            .unwrap_or_default();
        assert!(detail.contains(mib), "detail: {detail}\n{screen}");
        assert!(
            !screen.contains(" 0 GB") && !screen.contains(" 1 GB "),
            "{screen}"
        );
    }
}

/// Home -> Backup -> sda -> the repository picker with the path field open.
fn to_backup_path_field(app: &mut App) {
    app.press(KeyCode::Char('b'));
    enter(app); // sda
    assert!(matches!(app.screen(), Screen::Repos { .. }));
    app.press(KeyCode::Char('/'));
}

#[test]
fn an_absolute_path_typed_into_the_path_field_is_a_local_folder() {
    let (mut app, _) = app();
    to_backup_path_field(&mut app);
    app.type_str("/mnt/backups");
    let screen = render(&app);
    assert!(screen.contains("Path:  /mnt/backups_"), "{screen}");
    assert!(
        screen.contains("Opens: a folder on this machine"),
        "{screen}"
    );
    enter(&mut app);
    app.settle(SETTLE);
    assert!(
        matches!(app.screen(), Screen::Name { .. }),
        "{:?}",
        app.screen()
    );
    assert_eq!(
        app.choices.repo.as_deref(),
        Some(std::path::Path::new("/mnt/backups"))
    );
}

#[test]
fn esc_while_connecting_to_a_share_stops_waiting() {
    let (mut app, _) = app();
    to_backup_path_field(&mut app);
    app.type_str("//nas/backups");
    enter(&mut app);
    assert!(render(&app).contains("Connecting to //nas/backups"));
    // Esc before the mount attempt answers: its answer must not take over the screen.
    app.press(KeyCode::Esc);
    app.settle(SETTLE);
    let screen = render(&app);
    assert!(
        matches!(app.screen(), Screen::Repos { .. }),
        "{:?}",
        app.screen()
    );
    assert!(!screen.contains("Connecting to"), "{screen}");
    assert!(
        screen.contains("Stopped waiting for //nas/backups."),
        "{screen}"
    );
    // Nothing is left pending: a second try connects again.
    enter(&mut app);
    assert!(render(&app).contains("Connecting to //nas/backups"));
    app.settle(SETTLE);
    assert!(matches!(app.screen(), Screen::ShareLogin { .. }));
}

#[test]
fn a_disk_with_one_partition_says_one_partition() {
    let (mut app, fake) = app();
    fake.plug(DiskView {
        partitions: vec![crate::tui::demo::part(
            1,
            "ext4",
            "data",
            60 << 30,
            Some(1 << 30),
        )],
        ..kingston_stick()
    });
    app.press(KeyCode::Char('b'));
    let last = app.disks.len() - 1;
    down(&mut app, last);
    enter(&mut app); // the stick
    pick_repo(&mut app); // sdd1
    enter(&mut app); // default name
    assert_eq!(app.screen(), &Screen::Summary);
    let screen = render(&app);
    assert!(screen.contains(" 1 partition, about 1.0 GiB"), "{screen}");
    run_to_done(&mut app);
    let screen = render(&app);
    assert!(
        screen.contains(" 1 partition, used blocks only."),
        "{screen}"
    );
}

/// The error a job ends with stays typed up to the result screen: a read error on the
/// source disk is known there as a media error (cables and disk), with its device and
/// byte, and a refused request does not send the user to check cables.
#[test]
fn a_media_error_on_the_source_is_recognised_on_the_result_screen() {
    use crate::device::DeviceError;
    use crate::repo::RepoError;
    use crate::tui::services::ServiceError;
    let (mut app, fake) = super::app();
    *fake.fail_backup.lock().expect("lock") =
        Some(ServiceError::from(RepoError::Device(DeviceError::Io {
            device: "/dev/sda".into(),
            offset: 73_400_320,
            len: 4096,
            source: std::io::Error::from_raw_os_error(5),
        })));
    to_backup_summary(&mut app);
    run_to_done(&mut app);
    assert!(matches!(&app.report, Some(Err(e)) if e.is_media_error()));
    let text = render(&app);
    assert!(text.contains("The job did not finish"), "{text}");
    assert!(
        text.contains("/dev/sda: I/O error at byte 73400320"),
        "{text}"
    );
    assert!(text.contains("Check the cables and the disk"), "{text}");

    let (mut app, fake) = super::app();
    *fake.fail_backup.lock().expect("lock") = Some(ServiceError::from(
        "The repository /run/ironclone/sdd1/ironclone is on the disk being backed up.",
    ));
    to_backup_summary(&mut app);
    run_to_done(&mut app);
    assert!(matches!(&app.report, Some(Err(e)) if !e.is_media_error()));
    let text = render(&app);
    assert!(text.contains("is on the disk being backed up"), "{text}");
    assert!(!text.contains("Check the cables"), "{text}");
    assert!(text.contains("Fix what is named above"), "{text}");
}
