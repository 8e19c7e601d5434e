//! Snapshot tests of every screen at 80x25, and the check that docs/SCREENS.md
//! matches them.

use super::*;

#[test]
fn snap_home() {
    let (app, _) = app();
    snap("home", &app);
}

#[test]
fn snap_disk_picker_with_warnings() {
    let (mut app, _) = app();
    app.press(KeyCode::Char('b'));
    snap("disks_backup_hibernated", &app);
    app.press(KeyCode::Down);
    snap("disks_backup_journal", &app);
}

/// An "enterprise" server disk: ESP, /boot and an LVM PV whose LVs are listed under
/// it with what a backup reads from each.
#[test]
fn snap_disk_picker_with_lvm() {
    use crate::tui::demo::part;
    use crate::tui::model::VolumeView;
    const GIB: u64 = 1 << 30;
    let (mut app, fake) = app();
    let lv = |name: &str, fs: &str, size: u64, used: u64| VolumeView {
        name: name.into(),
        fs: fs.into(),
        size,
        used,
    };
    let mut pv = part(3, "lvm2", "", 444 * GIB, Some(61 * GIB));
    pv.volumes = vec![
        lv("rhel/root", "xfs", 70 * GIB, 12 * GIB),
        lv("rhel/home", "xfs", 366 * GIB, 49 * GIB),
        lv("rhel/swap", "swap", 8 * GIB, 4096),
    ];
    fake.plug(DiskView {
        dev: "/dev/sde".into(),
        model: "DELL PERC H730P Mini".into(),
        serial: "00c3a5f1b2d4e6f7".into(),
        size: 480_103_981_056,
        transport: "SCSI".into(),
        partitions: vec![
            part(1, "vfat", "EFI", 600 << 20, Some(7 << 20)),
            part(2, "xfs", "boot", GIB, Some(300 << 20)),
            pv,
        ],
        ..Default::default()
    });
    app.press(KeyCode::Char('b'));
    let n = app.disks.len();
    down(&mut app, n - 1);
    let text = render(&app);
    assert!(text.contains("LV rhel/root"), "{text}");
    snap("disks_backup_lvm", &app);
}

/// An "encrypted laptop": ESP, /boot and a LUKS2 partition, which the picker says is
/// locked (what a backup from the TUI does with it is said too), and a second disk
/// whose LUKS volume is open on this machine.
#[test]
fn snap_disk_picker_with_luks() {
    use crate::tui::demo::part;
    const GIB: u64 = 1 << 30;
    let (mut app, fake) = app();
    let mut enc = part(3, "luks", "", 475 * GIB, None);
    enc.lock = Some("locked".into());
    fake.plug(DiskView {
        dev: "/dev/nvme1n1".into(),
        model: "SAMSUNG MZVL2512HCJQ".into(),
        serial: "S675NX0T812345".into(),
        size: 512_110_190_592,
        transport: "NVMe".into(),
        partitions: vec![
            part(1, "vfat", "EFI", 600 << 20, Some(9 << 20)),
            part(2, "ext4", "boot", 2 * GIB, Some(310 << 20)),
            enc,
        ],
        ..Default::default()
    });
    app.press(KeyCode::Char('b'));
    let n = app.disks.len();
    down(&mut app, n - 1);
    let text = render(&app);
    assert!(text.contains("LUKS locked"), "{text}");
    snap("disks_backup_luks", &app);
}

#[test]
fn snap_restore_target_refused() {
    let (mut app, fake) = app();
    to_restore_targets(&mut app, 0);
    down(&mut app, 3); // sdc: the boot medium
    enter(&mut app);
    assert!(matches!(app.screen(), Screen::Disks { note: Some(_), .. }));
    snap("disks_restore_refused_boot_medium", &app);
    assert!(fake.recorded().is_empty());
}

#[test]
fn snap_repo_picker() {
    let (mut app, _) = app();
    app.press(KeyCode::Char('i'));
    snap("repos", &app);
    app.press(KeyCode::Char('/'));
    // Typed as anyone types a path: the "/" the field opened with is not doubled.
    app.type_str("/mnt/usb");
    snap("repos_typing_path", &app);
    enter(&mut app); // "/mnt/usb" holds no images in the fake
    assert!(matches!(app.screen(), Screen::Repos { note: Some(_), .. }));
}

#[test]
fn snap_share_login() {
    let (mut app, _) = app();
    app.press(KeyCode::Char('i'));
    app.press(KeyCode::Char('/'));
    app.type_str("//nas/backups");
    assert!(render(&app).contains("Opens: a Windows/SMB network share"));
    enter(&mut app);
    // Mounting happens off the UI thread; meanwhile the picker says so.
    match app.screen() {
        Screen::Repos { note: Some(n), .. } => {
            assert!(n.contains("Connecting to //nas/backups"), "{n}")
        }
        other => panic!("{other:?}"),
    }
    app.settle(SETTLE); // a guest cannot mount it: the login screen, saying why
    assert!(matches!(app.screen(), Screen::ShareLogin { .. }));
    app.type_str("CORP\\bob");
    app.press(KeyCode::Tab);
    app.type_str("hunter2");
    enter(&mut app);
    app.settle(SETTLE);
    snap("share_login_refused", &app);
    assert!(
        !render(&app).contains("hunter2"),
        "the password is never drawn"
    );
    backspace(&mut app, 7);
    app.type_str("secret");
    enter(&mut app);
    app.settle(SETTLE);
    assert!(matches!(app.screen(), Screen::Images { .. }));
    assert_eq!(
        app.choices.repo.as_deref(),
        Some(std::path::Path::new(
            "/run/ironclone/shares/nas-backups/ironclone"
        ))
    );
    app.press(KeyCode::Esc); // back past the login, to the picker
    assert!(matches!(app.screen(), Screen::Repos { .. }));
}

#[test]
fn snap_images() {
    let (mut app, _) = app();
    app.press(KeyCode::Char('i'));
    pick_repo(&mut app);
    snap("images_browse", &app);
}

#[test]
fn snap_backup_name_summary_progress_done() {
    let (mut app, fake) = app();
    to_backup_name(&mut app);
    snap("backup_name", &app);
    enter(&mut app);
    snap("backup_summary", &app);

    // A job frozen midway, with a read error and a warning, for the progress screen.
    let mut frozen = app_with(fake.clone());
    to_backup_summary(&mut frozen);
    frozen.stack.push(Screen::Progress);
    frozen.job = JobView {
        title: "Backing up".into(),
        ..Default::default()
    };
    let gib = 1u64 << 30;
    for ev in [
        ProgressEvent::JobStart {
            job: "backup".into(),
            total_bytes: 213 * gib,
        },
        ProgressEvent::PhaseStart {
            name: "partition 1 (vfat)".into(),
            total_bytes: 38 << 20,
        },
        ProgressEvent::Advance { bytes: 38 << 20 },
        ProgressEvent::PhaseEnd {
            name: "partition 1 (vfat)".into(),
        },
        ProgressEvent::PhaseStart {
            name: "partition 3 (ntfs)".into(),
            total_bytes: 212 * gib,
        },
        ProgressEvent::Advance { bytes: 95 * gib },
        ProgressEvent::ReadError {
            offset: 123 << 20,
            len: 64 << 10,
        },
        ProgressEvent::Warning {
            message: "64.0 KiB unreadable in partition 3: Users/ana/Documents/tax-2025.pdf".into(),
        },
    ] {
        frozen.update(Msg::Progress(ev));
    }
    frozen.job.elapsed_secs = 600.0;
    snap("backup_progress", &frozen);
    ctrl_c(&mut frozen);
    assert!(
        !frozen.cancel_ask,
        "no job runs in the frozen app: Ctrl-C asks to quit"
    );

    run_to_done(&mut app);
    snap("backup_done", &app);
}

#[test]
fn snap_restore_plan_and_edits() {
    let (mut app, _) = app();
    to_restore_plan(&mut app);
    snap("restore_plan", &app);
    down(&mut app, 2);
    app.press(KeyCode::Char('s'));
    app.type_str("100G");
    snap("restore_plan_typing_size", &app);
    enter(&mut app);
    app.settle(SETTLE);
    // 100 GiB is below the 212 GiB of data on partition 3: refused in plain words.
    assert!(matches!(app.choices.plan, Some(Err(_))));
    snap("restore_plan_does_not_fit", &app);
    enter(&mut app);
    assert!(
        matches!(app.screen(), Screen::Plan { .. }),
        "a plan that does not fit cannot be confirmed"
    );
    app.press(KeyCode::Char('x'));
    app.settle(SETTLE);
    assert!(matches!(app.choices.plan, Some(Ok(_))));
}

#[test]
fn snap_confirm_and_restore_done() {
    let (mut app, fake) = app();
    to_restore_confirm(&mut app);
    snap("confirm_empty", &app);
    app.type_str("S649");
    snap("confirm_partial", &app);
    enter(&mut app);
    snap("confirm_refused", &app);
    assert!(fake.recorded().is_empty());
    app.type_str("NF0R812345K");
    run_to_done(&mut app);
    snap("restore_done_boot_repairs", &app);
}

#[test]
fn snap_error_and_questions() {
    let (mut app, _) = app();
    app.stack.push(Screen::Error {
        what: "Could not mount /dev/sdd1: the ext4 filesystem needs a check (e2fsck).".into(),
        next: "Press Enter to go back and pick another partition, or run e2fsck from the Shell."
            .into(),
    });
    snap("error", &app);
    app.press(KeyCode::Esc);
    app.press(KeyCode::Char('p'));
    snap("ask_power_off", &app);
    app.press(KeyCode::Char('n'));
    ctrl_c(&mut app);
    snap("ask_quit", &app);
}

#[test]
fn screens_doc_matches_snapshots() {
    let root = env!("CARGO_MANIFEST_DIR");
    let doc = std::fs::read_to_string(format!("{root}/docs/SCREENS.md")).expect("docs/SCREENS.md");
    let mut snaps = Vec::new();
    for e in std::fs::read_dir(format!("{root}/src/tui/snapshots")).expect("snapshots dir") {
        let text = std::fs::read_to_string(e.expect("entry").path()).expect("snapshot");
        // The screen follows the second `---` line of insta's header.
        let body: Vec<&str> = text.splitn(3, "---\n").collect();
        if let Some(b) = body.get(2) {
            snaps.push(b.trim_end().to_string());
        }
    }
    let blocks: Vec<&str> = doc.split("```text\n").skip(1).collect();
    assert!(
        blocks.len() >= 15,
        "docs/SCREENS.md has {} screens",
        blocks.len()
    );
    for b in blocks {
        let screen = b.split("```").next().unwrap_or("").trim_end();
        assert!(
            snaps.iter().any(|s| s == screen),
            "docs/SCREENS.md is stale; run scripts/screens-doc.sh. Block:\n{screen}"
        );
    }
}

/// An ESP re-created for a 4Kn disk reads "recreate" in full inside the frame.
#[test]
fn plan_row_recreate_is_shown_in_full() {
    let (mut app, _) = app();
    to_restore_plan(&mut app);
    if let Some(Ok(p)) = &mut app.choices.plan {
        p.rows[0].action = crate::tui::model::PlanAction::Recreate;
    }
    let screen = render(&app);
    assert!(
        screen.lines().any(|l| l.ends_with(" recreate|")),
        "{screen}"
    );
}
