use super::*;
use crate::device::MemDevice;
use crate::progress::NoProgress;

/// Sets the cancel flag after the first chunk is read, as Ctrl-C + y does.
struct CancelAfterFirst<'a>(&'a AtomicBool);
impl Progress for CancelAfterFirst<'_> {
    fn report(&self, ev: ProgressEvent) {
        if matches!(ev, ProgressEvent::Advance { .. }) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_cancelled_backup_leaves_no_image_and_a_later_one_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::open_or_init(dir.path()).expect("repo");
    let mut data = vec![0u8; 32 << 20];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes()[7];
    }
    let dev = MemDevice::from_vec(data, 512);
    let plan = repo::BackupPlan::whole_device(SourceInfo {
        path: "mem".into(),
        model: None,
        serial: None,
        size: dev.size(),
        sector_size: 512,
    });
    let cancel = AtomicBool::new(false);
    let guarded = Cancellable {
        inner: &dev,
        cancel: &cancel,
    };
    let r = repo::backup(
        &repo,
        &guarded,
        &plan,
        &BackupOptions::new("img"),
        &CancelAfterFirst(&cancel),
    );
    let err = r.expect_err("the cancel must stop the backup");
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(
        repo.image_names().expect("names").is_empty(),
        "no image kept"
    );
    let outcome = finish(&NoProgress, &cancel, Err(err.into()), "x");
    let e = outcome.expect_err("cancelled");
    assert!(
        e.is_cancelled() && e.to_string().starts_with("Cancelled."),
        "{e}"
    );

    cancel.store(false, Ordering::SeqCst);
    let m = repo::backup(
        &repo,
        &guarded,
        &plan,
        &BackupOptions::new("img"),
        &NoProgress,
    )
    .expect("a backup after the cancel");
    assert_eq!(m.stats.bytes_read, 32 << 20);
    assert_eq!(repo.image_names().expect("names"), vec!["img".to_string()]);
}

#[test]
fn restore_options_map_onto_the_planner() {
    let mut o = RestoreOptions {
        mode: LayoutMode::Keep,
        sizes: Vec::new(),
    };
    o.set_size(3, SizeChoice::Bytes(40 << 30));
    o.set_size(2, SizeChoice::Max);
    let p = plan_options(&o);
    assert_eq!(p.mode, plan::LayoutMode::Keep);
    assert_eq!(p.sizes.get(&3), Some(&SizeRequest::Bytes(40 << 30)));
    assert_eq!(p.sizes.get(&2), Some(&SizeRequest::Max));
}
