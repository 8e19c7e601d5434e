//! Unit tests of the schedule's mirror on the boot partition.

use super::*;
use crate::discover::DiskIdentity;
use crate::schedule::config::{Budget, CONFIG_VERSION};
use crate::schedule::state::PendingDisk;

fn cfg() -> ScheduleConfig {
    ScheduleConfig {
        version: CONFIG_VERSION,
        repo: "uuid=abcd-1234:/repo".parse().unwrap(),
        disks: vec!["/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001".into()],
        calendar: "hourly".into(),
        budget: Budget::Percent(90),
        keep_last: 3,
        keep_weekly: 0,
        keep_monthly: 0,
        allow_battery: false,
    }
}

fn pending() -> PendingRescue {
    PendingRescue {
        requested_unix: 1_700_000_000,
        how: String::new(),
        why: vec!["disk /dev/sda: sda2 is mounted read-write at /boot".into()],
        disks: vec![PendingDisk {
            configured: "/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001".into(),
            identity: DiskIdentity {
                serial: Some("QM00001".into()),
                wwn: None,
                model: Some("QEMU HARDDISK".into()),
                size: 1 << 30,
            },
        }],
    }
}

fn record(ok: bool) -> RunRecord {
    RunRecord {
        start_unix: 1_700_000_100,
        end_unix: 1_700_000_200,
        ok,
        repo: "uuid=abcd-1234:/repo".into(),
        error: (!ok).then(|| "disk /dev/sda: backup failed: boom".to_string()),
        rescue: true,
        ..RunRecord::default()
    }
}

/// An installed system under a temporary root with a rescue entry whose folder is
/// `<tmp>/esp/EFI/ironclone`; `boot_uuid` as given.
fn installed(boot_uuid: Option<&str>) -> (tempfile::TempDir, Roots, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let roots = Roots::new(Some(&t.path().join("root")));
    let dir = t.path().join("esp/EFI/ironclone");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vmlinuz"), b"kernel").unwrap();
    let rec = serde_json::json!({
        "version": 1, "firmware": "uefi", "dir": dir, "root_uuid": "6b1e",
        "boot_uuid": boot_uuid, "cmdline": "x", "boot_number": 3, "installed_unix": 1,
    });
    let p = crate::schedule::rescue_entry::record_path(&roots);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, rec.to_string()).unwrap();
    std::fs::create_dir_all(roots.root().join("etc")).unwrap();
    std::fs::write(roots.root().join("etc/hostname"), "laptop 1\n").unwrap();
    (t, roots, dir)
}

#[test]
fn mirror_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let p = pending();
    write_mirror(d.path(), Some(&cfg()), "laptop", Some(&p)).unwrap();
    assert_eq!(read_config(d.path()).unwrap(), cfg());
    let r = read_request(d.path()).unwrap();
    assert_eq!(r.host, "laptop");
    assert_eq!(r.pending, Some(p));
    // No temporary file is left behind.
    assert!(!d.path().join("schedule.tmp").exists() && !d.path().join("request.tmp").exists());
    // Without a schedule: the request only, and the run says what is missing.
    let e = tempfile::tempdir().unwrap();
    write_mirror(e.path(), None, "laptop", None).unwrap();
    assert!(matches!(
        read_config(e.path()),
        Err(ScheduleError::NotConfigured { .. })
    ));
    let none = tempfile::tempdir().unwrap();
    let err = read_request(none.path()).unwrap_err().to_string();
    assert!(err.contains("request.json is missing"), "{err}");
}

#[test]
fn sync_writes_only_for_a_mirrored_entry() {
    let (_t, roots, dir) = installed(None);
    std::fs::create_dir_all(roots.config_path().parent().unwrap()).unwrap();
    std::fs::write(roots.config_path(), cfg().to_json()).unwrap();
    // An entry naming the root (the root here is a plain directory): nothing mirrored.
    assert!(!sync(&roots, None).unwrap());
    assert!(!dir.join(CONFIG).exists());
    let (_t, roots, dir) = installed(Some("1C0E-C1A5"));
    std::fs::create_dir_all(roots.config_path().parent().unwrap()).unwrap();
    std::fs::write(roots.config_path(), cfg().to_json()).unwrap();
    // The ESP not mounted (no rescue kernel in the folder): refused, nothing written.
    std::fs::remove_file(dir.join("vmlinuz")).unwrap();
    let e = sync(&roots, None).unwrap_err().to_string();
    assert!(e.contains("is the ESP or /boot mounted"), "{e}");
    assert!(!dir.join(CONFIG).exists() && !dir.join(REQUEST).exists());
    std::fs::write(dir.join("vmlinuz"), b"kernel").unwrap();
    assert!(sync(&roots, Some(&pending())).unwrap());
    assert_eq!(read_config(&dir).unwrap(), cfg());
    let r = read_request(&dir).unwrap();
    assert_eq!(r.host, "laptop-1");
    assert_eq!(r.pending, Some(pending()));
    // No entry at all: nothing to do.
    let t = tempfile::tempdir().unwrap();
    assert!(!sync(&Roots::new(Some(t.path())), None).unwrap());
}

#[test]
fn outcome_merges_into_the_state_once() {
    let (_t, roots, dir) = installed(Some("1C0E-C1A5"));
    ScheduleState::set_pending(&roots, Some(pending())).unwrap();
    // No outcome yet: nothing merged, the request stays pending.
    assert_eq!(merge(&roots).unwrap(), None);
    assert!(ScheduleState::load(&roots)
        .unwrap()
        .pending_rescue
        .is_some());
    write_outcome(&dir, &record(true)).unwrap();
    assert_eq!(read_outcome(&dir).unwrap(), Some(record(true)));
    assert_eq!(merge(&roots).unwrap(), Some(record(true)));
    let st = ScheduleState::load(&roots).unwrap();
    assert_eq!(st.last_run, Some(record(true)));
    assert_eq!(st.last_success_unix, Some(1_700_000_200));
    assert_eq!(st.pending_rescue, None);
    assert!(!dir.join(OUTCOME).exists());
    assert_eq!(merge(&roots).unwrap(), None);
    // A failed rescue run: the state says what failed; the last good image stays.
    write_outcome(&dir, &record(false)).unwrap();
    merge(&roots).unwrap();
    let st = ScheduleState::load(&roots).unwrap();
    assert_eq!(
        st.last_run.unwrap().error.as_deref(),
        Some("disk /dev/sda: backup failed: boom")
    );
    assert_eq!(st.last_success_unix, Some(1_700_000_200));
    // The same outcome found again (its removal failed) is not a second run: it does
    // not answer the request made since.
    ScheduleState::set_pending(&roots, Some(pending())).unwrap();
    let before = std::fs::read(roots.state_path()).unwrap();
    write_outcome(&dir, &record(false)).unwrap();
    merge(&roots).unwrap();
    assert_eq!(std::fs::read(roots.state_path()).unwrap(), before);
    assert!(!dir.join(OUTCOME).exists());
}

#[test]
fn a_complete_tmp_wins_a_cut_one_does_not() {
    let d = tempfile::tempdir().unwrap();
    write_outcome(d.path(), &record(false)).unwrap();
    // A crash between the fsync of outcome.tmp and the rename: the .tmp is the newer.
    let newer = serde_json::to_vec(&Outcome {
        version: MIRROR_VERSION,
        run: record(true),
    })
    .unwrap();
    std::fs::write(d.path().join("outcome.tmp"), &newer).unwrap();
    assert_eq!(read_outcome(d.path()).unwrap(), Some(record(true)));
    // A crash while writing it: cut short, it does not parse, and the .json stands.
    std::fs::write(d.path().join("outcome.tmp"), &newer[..newer.len() / 2]).unwrap();
    assert_eq!(read_outcome(d.path()).unwrap(), Some(record(false)));
}

#[test]
fn malformed_files_are_named() {
    let d = tempfile::tempdir().unwrap();
    for (name, read) in [
        (
            OUTCOME,
            (|p: &Path| read_outcome(p).map(drop)) as fn(&Path) -> Result<(), ScheduleError>,
        ),
        (REQUEST, |p: &Path| read_request(p).map(drop)),
        (CONFIG, |p: &Path| read_config(p).map(drop)),
    ] {
        std::fs::write(d.path().join(name), b"{\"version\": 1, \"ru").unwrap();
        let e = read(d.path()).unwrap_err().to_string();
        assert!(
            e.contains(&d.path().join(name).display().to_string()),
            "{e}"
        );
        assert!(e.contains("not valid JSON"), "{e}");
    }
    // Another version is named with its field.
    std::fs::write(
        d.path().join(REQUEST),
        br#"{"version": 9, "host": "h", "pending": null}"#,
    )
    .unwrap();
    let e = read_request(d.path()).unwrap_err().to_string();
    assert!(e.contains("request.json: field \"version\""), "{e}");
    // merge says which outcome file is broken and leaves the state alone.
    let (_t, roots, dir) = installed(Some("1C0E-C1A5"));
    std::fs::write(dir.join(OUTCOME), b"[]").unwrap();
    let e = merge(&roots).unwrap_err().to_string();
    assert!(e.contains("outcome.json"), "{e}");
    assert_eq!(ScheduleState::load(&roots).unwrap().last_run, None);
    // The folder gone (the ESP not mounted) is said, not skipped.
    std::fs::remove_dir_all(&dir).unwrap();
    let e = merge(&roots).unwrap_err().to_string();
    assert!(e.contains("is the ESP or /boot mounted"), "{e}");
}

#[test]
fn no_secret_goes_to_the_boot_partition() {
    assert!(check_no_secret(&cfg()).is_ok());
    for ok in ["//nas/backups", "nas:/export/backups", "/mnt/backup"] {
        let mut c = cfg();
        c.repo = ok.parse().unwrap();
        assert!(check_no_secret(&c).is_ok(), "{ok}");
    }
    for bad in [
        "//user:pw@nas/share",
        "//nas/share,password=x",
        "//nas/s,credentials=/f",
    ] {
        let mut c = cfg();
        c.repo = RepoLocation::Share(bad.into());
        let e = check_no_secret(&c).unwrap_err().to_string();
        assert!(e.contains("holds a login"), "{bad}: {e}");
        let d = tempfile::tempdir().unwrap();
        assert!(write_mirror(d.path(), Some(&c), "h", None).is_err());
        assert!(!d.path().join(CONFIG).exists());
    }
}
