//! One partition of a Clonezilla saveparts image restores onto a partition the user
//! picks (every partition of every disk listed with its disk's identity), with a plan
//! of that one filesystem, the disk's serial typed, and a request naming the partition.

use super::*;

fn to_part_targets(app: &mut App) {
    app.press(KeyCode::Char('r'));
    app.press(KeyCode::Char('/'));
    app.type_str("home/partimag");
    pick_repo(app);
    down(app, 1);
    assert!(
        matches!(app.screen(), Screen::Images { sel: 1 }),
        "{:?}",
        app.screen()
    );
}

#[test]
fn snap_saved_partition_restores_onto_a_partition() {
    let (mut app, fake) = app();
    to_part_targets(&mut app);
    snap("images_clonezilla_partition", &app);
    enter(&mut app);
    assert!(
        matches!(app.screen(), Screen::PartTargets { sel: 0, .. }),
        "{:?}",
        app.screen()
    );
    snap("saveparts_targets", &app);
    // sdc1 is on the ironclone stick: refused, with the reason on screen.
    down(&mut app, 5);
    enter(&mut app);
    assert!(
        matches!(app.screen(), Screen::PartTargets { note: Some(_), .. }),
        "{:?}",
        app.screen()
    );
    assert!(
        render(&app).contains("Cannot write there"),
        "{}",
        render(&app)
    );
    // sdb1 (931 GiB ext4 now): the saved 120 GiB NTFS grows into it.
    app.press(KeyCode::Up);
    enter(&mut app);
    app.settle(SETTLE);
    assert!(
        matches!(app.screen(), Screen::Plan { .. }),
        "{:?}",
        app.screen()
    );
    // Nothing to edit in a partition's plan: m (layout mode) changes nothing.
    app.press(KeyCode::Char('m'));
    assert_eq!(app.choices.options, Default::default());
    snap("saveparts_plan", &app);
    enter(&mut app);
    snap("saveparts_confirm", &app);
    app.type_str("sdc");
    enter(&mut app);
    assert!(
        matches!(app.screen(), Screen::Confirm { refused: true, .. }),
        "{:?}",
        app.screen()
    );
    backspace(&mut app, 3);
    app.type_str("WD-WCC6Y3KF7XZT");
    run_to_done(&mut app);
    match fake.recorded().as_slice() {
        [Recorded::Restore(r)] => {
            assert_eq!(r.image, "2026-10-02-09-img/sda3");
            assert_eq!(r.target_dev, "/dev/sdb");
            assert_eq!(r.target_part, Some(1));
        }
        other => panic!("expected one restore, got {other:?}"),
    }
}

#[test]
fn a_whole_disk_image_after_a_partition_one_targets_the_disk_again() {
    let (mut app, fake) = app();
    to_part_targets(&mut app);
    enter(&mut app);
    down(&mut app, 4);
    enter(&mut app);
    assert_eq!(app.choices.target_part, Some(1));
    // Back to the image list, the whole-disk image, a disk: no partition is left chosen.
    app.press(KeyCode::Esc);
    app.press(KeyCode::Esc);
    app.press(KeyCode::Up);
    enter(&mut app);
    assert!(
        matches!(app.screen(), Screen::Disks { .. }),
        "{:?}",
        app.screen()
    );
    down(&mut app, 2);
    enter(&mut app);
    app.settle(SETTLE);
    assert_eq!(app.choices.target_part, None);
    enter(&mut app);
    app.type_str("nvme0n1");
    run_to_done(&mut app);
    match fake.recorded().as_slice() {
        [Recorded::Restore(r)] => assert_eq!(r.target_part, None),
        other => panic!("expected one restore, got {other:?}"),
    }
}

/// The partition picker's highlight follows its partition when a disk appears above it.
#[test]
fn the_partition_highlight_stays_when_a_disk_appears() {
    let (mut app, fake) = app();
    to_part_targets(&mut app);
    enter(&mut app);
    down(&mut app, 2);
    let rows = app.part_targets();
    let (d, p) = rows[2];
    let chosen = (app.disks[d].dev.clone(), app.disks[d].partitions[p].number);
    let mut disk = app.disks[d].clone();
    disk.dev = "/dev/nvme1n1".into();
    disk.serial = "LATE".into();
    fake.plug_at(0, disk);
    app.press(KeyCode::Char('r'));
    let Screen::PartTargets { sel, .. } = app.screen() else {
        panic!("{:?}", app.screen())
    };
    let (d, p) = app.part_targets()[*sel];
    assert_eq!(
        (app.disks[d].dev.clone(), app.disks[d].partitions[p].number),
        chosen
    );
    assert!(*sel > 2, "rows were added above it");
}

/// A native image without a table (a partition backed up alone) goes into a partition
/// by default; `w` offers the whole disks instead, and its plan is the whole-disk one.
#[test]
fn a_table_less_image_goes_into_a_partition_or_with_w_onto_a_disk() {
    let mut fake = FakeServices::default();
    fake.images[0].table_less = true;
    let fake = Arc::new(fake);
    let mut app = app_with(fake.clone());
    let name = fake.images[0].name.clone();
    app.press(KeyCode::Char('r'));
    pick_repo(&mut app); // /dev/sdd1
    enter(&mut app); // the first image
    assert!(
        matches!(app.screen(), Screen::PartTargets { .. }),
        "{:?}",
        app.screen()
    );
    let text = render(&app);
    assert!(
        text.contains("holds one filesystem without a") && text.contains("w whole disk"),
        "{text}"
    );
    // w: the disk picker; Esc: back to the partitions.
    app.press(KeyCode::Char('w'));
    assert!(
        matches!(app.screen(), Screen::Disks { .. }),
        "{:?}",
        app.screen()
    );
    app.press(KeyCode::Esc);
    assert!(matches!(app.screen(), Screen::PartTargets { .. }));
    // sdb1: into the partition, its own plan.
    down(&mut app, 4);
    enter(&mut app);
    app.settle(SETTLE);
    assert!(
        matches!(app.screen(), Screen::Plan { .. }),
        "{:?}",
        app.screen()
    );
    enter(&mut app);
    app.type_str("WD-WCC6Y3KF7XZT");
    run_to_done(&mut app);
    match fake.recorded().as_slice() {
        [Recorded::Restore(r)] => {
            assert_eq!(r.image, name);
            assert_eq!(r.target_dev, "/dev/sdb");
            assert_eq!(r.target_part, Some(1));
        }
        other => panic!("expected one restore, got {other:?}"),
    }
}
