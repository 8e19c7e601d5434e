//! Backup → restore round trips, dedup of a second backup, prune, and restore at
//! other offsets, on memory and file devices.

mod repo_common;

use ironclone::device::{BlockDevice, MemDevice};
use ironclone::progress::{Collect, NoProgress, Progress, ProgressEvent};
use ironclone::repo::{
    self, BackupOptions, BackupPlan, RepoError, Repository, RestoreOptions, RestoreReport,
};
use repo_common::*;

/// A 32 MiB source of mixed data backed up as image "x" into a fresh repository.
struct BackedUp {
    data: Vec<u8>,
    plan: BackupPlan,
    r: Repository,
    _dir: tempfile::TempDir,
}

fn backed_up(seed: u64) -> BackedUp {
    let size = 32 * MIB;
    let mut data = mixed_data(size as usize, seed);
    // mixed_data ends in zeros; random bytes in the gpt-backup area make a restore that
    // skips it (or wrongly writes it) visible.
    let tail = data.len() - 33 * 512;
    fill_random(&mut data[tail..], seed | 1);
    let plan = plan_for(size);
    let dir = tempfile::tempdir().unwrap();
    let r = Repository::init(&dir.path().join("repo"), 1 << 20, 8 << 20).unwrap();
    let src = MemDevice::from_vec(data.clone(), 512);
    repo::backup(&r, &src, &plan, &BackupOptions::new("x"), &NoProgress).unwrap();
    BackedUp {
        data,
        plan,
        r,
        _dir: dir,
    }
}

/// The bytes all `Advance` events report, summed.
fn advanced_bytes(ev: &[ProgressEvent]) -> u64 {
    ev.iter()
        .filter_map(|e| match e {
            ProgressEvent::Advance { bytes } => Some(*bytes),
            _ => None,
        })
        .sum()
}

/// Restores `image` onto `target` with every area at its original offset.
fn restore_in_place(
    r: &Repository,
    image: &str,
    target: &dyn BlockDevice,
    progress: &dyn Progress,
) -> Result<RestoreReport, RepoError> {
    repo::restore(
        r,
        image,
        target,
        &|a| Some(a.offset),
        &RestoreOptions::default(),
        progress,
    )
}

/// Restores `image` in place onto a zeroed disk the size of `src` and asserts it holds
/// `src`'s bytes on every planned extent and zeros elsewhere.
fn restore_and_compare(
    r: &Repository,
    image: &str,
    src: &[u8],
    plan: &BackupPlan,
) -> RestoreReport {
    let target = MemDevice::new(src.len(), 512);
    let rep = restore_in_place(r, image, &target, &NoProgress).unwrap();
    assert_restored(src, &target.snapshot(), plan);
    rep
}

#[test]
fn round_trip_on_memory_devices() {
    let size = 40 * MIB;
    let data = mixed_data(size as usize, 1);
    let src = MemDevice::from_vec(data.clone(), 512).read_only();
    let plan = plan_for(size);
    let dir = tempfile::tempdir().unwrap();
    let r = Repository::init(&dir.path().join("repo"), 1 << 20, 8 << 20).unwrap();
    let events = Collect::default();
    let m = repo::backup(&r, &src, &plan, &BackupOptions::new("first"), &events).unwrap();
    assert_eq!(m.stats.bytes_read, plan.total_bytes());
    assert!(m.stats.zero_bytes > 0, "zero regions are detected");
    assert!(
        m.stats.new_stored_bytes < m.stats.new_bytes,
        "text is compressed"
    );
    let ev = events.events();
    assert!(ev.contains(&ProgressEvent::PhaseStart {
        name: "p1".into(),
        total_bytes: plan.areas[1].extents.iter().map(|e| e.len).sum()
    }));
    assert_eq!(advanced_bytes(&ev), plan.total_bytes());

    let rep = restore_and_compare(&r, "first", &data, &plan);
    assert_eq!(rep.bytes_verified, plan.total_bytes());

    // Shifted onto a larger disk: every area moved by 3 MiB.
    let big = MemDevice::new((size + 8 * MIB) as usize, 512);
    repo::restore(
        &r,
        "first",
        &big,
        &|a| Some(a.offset + 3 * MIB),
        &RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let got = big.snapshot();
    assert_restored(
        &data,
        &got[(3 * MIB) as usize..(3 * MIB + size) as usize],
        &plan,
    );

    // A target too small is refused up front.
    let small = MemDevice::new((size - MIB) as usize, 512);
    let e = restore_in_place(&r, "first", &small, &NoProgress).unwrap_err();
    assert!(matches!(e, repo::RepoError::TargetTooSmall { .. }), "{e}");
    assert!(small.snapshot().iter().all(|&b| b == 0));

    let v = repo::verify(&r, None, &NoProgress).unwrap();
    assert!(v.ok(), "{v:?}");
    assert!(v.chunks_checked > 0);
}

#[test]
fn second_backup_dedups_and_survives_prune_of_the_first() {
    let size = 48 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let mut data = mixed_data(size as usize, 2);
    let src = write_file(&dir.path().join("src.img"), &data);
    let plan = plan_for(size);
    let r = Repository::init(&dir.path().join("repo"), 1 << 20, 8 << 20).unwrap();
    let a = repo::backup(&r, &src, &plan, &BackupOptions::new("a"), &NoProgress).unwrap();
    let b = repo::backup(&r, &src, &plan, &BackupOptions::new("b"), &NoProgress).unwrap();
    assert!(a.stats.new_bytes > 0);
    assert!(
        b.stats.new_bytes * 100 < b.stats.bytes_read,
        "second backup stored {} new of {}",
        b.stats.new_bytes,
        b.stats.bytes_read
    );
    assert_eq!(b.stats.new_bytes, 0);
    assert!(matches!(
        repo::backup(&r, &src, &plan, &BackupOptions::new("b"), &NoProgress),
        Err(repo::RepoError::ImageExists { .. })
    ));

    // Change one MiB in p2 and back up again: about one chunk is new.
    let at = (plan.areas[2].offset + 2 * MIB) as usize;
    fill_random(&mut data[at..at + MIB as usize], 99);
    let src = write_file(&dir.path().join("src.img"), &data);
    let c = repo::backup(&r, &src, &plan, &BackupOptions::new("c"), &NoProgress).unwrap();
    assert_eq!(c.stats.new_bytes, MIB);

    let names: Vec<String> = r
        .list_images()
        .unwrap()
        .into_iter()
        .map(|s| s.unwrap().name)
        .collect();
    assert_eq!(names, ["a", "b", "c"]);

    r.delete_image("a").unwrap();
    r.delete_image("b").unwrap();
    let p = repo::prune(&r, &NoProgress).unwrap();
    assert_eq!(p.images, 1);
    // The one chunk c replaced sits in a pack that is otherwise live: kept (see prune.rs).
    assert_eq!(p.packs_deleted, 0, "{p:?}");
    let v = repo::verify(&r, None, &NoProgress).unwrap();
    assert!(v.ok(), "{v:?}");

    let tgt = zero_target(&dir.path().join("target.img"), size);
    restore_in_place(&r, "c", &tgt, &NoProgress).unwrap();
    drop(tgt);
    let got = std::fs::read(dir.path().join("target.img")).unwrap();
    assert_restored(&data, &got, &plan);
}

#[test]
fn prune_deletes_packs_of_a_deleted_image() {
    let dir = tempfile::tempdir().unwrap();
    let r = Repository::init(&dir.path().join("repo"), 1 << 20, 4 << 20).unwrap();
    let d1 = MemDevice::from_vec(mixed_data((32 * MIB) as usize, 5), 512);
    let d2 = MemDevice::from_vec(mixed_data((32 * MIB) as usize, 6), 512);
    let plan = plan_for(32 * MIB);
    repo::backup(&r, &d1, &plan, &BackupOptions::new("one"), &NoProgress).unwrap();
    repo::backup(&r, &d2, &plan, &BackupOptions::new("two"), &NoProgress).unwrap();
    r.delete_image("one").unwrap();
    let p = repo::prune(&r, &NoProgress).unwrap();
    assert!(p.packs_deleted + p.packs_rewritten > 0, "{p:?}");
    assert!(p.bytes_freed > 0);
    restore_and_compare(&r, "two", &d2.snapshot(), &plan);
    assert!(repo::verify(&r, None, &NoProgress).unwrap().ok());
}

#[test]
fn skipping_areas_and_zeroed_targets() {
    let fx = backed_up(7);
    let size = fx.data.len() as u64;
    let t = MemDevice::new(size as usize, 512);
    let opts = RestoreOptions {
        target_is_zeroed: true,
        ..Default::default()
    };
    let rep = repo::restore(
        &fx.r,
        "x",
        &t,
        &|a| (a.name == "p2").then_some(a.offset),
        &opts,
        &NoProgress,
    )
    .unwrap();
    assert_eq!(rep.areas, ["p2"]);
    let got = t.snapshot();
    let p2 = &fx.plan.areas[2];
    let (s, e) = (p2.offset as usize, (p2.offset + p2.len) as usize);
    assert_eq!(&got[s..e], &fx.data[s..e]);
    assert!(got[..s].iter().all(|&b| b == 0));
    // Nor the gpt-backup area (nor anything else) after p2.
    let gb = &fx.plan.areas[3];
    assert_eq!(gb.name, "gpt-backup");
    let gb = gb.offset as usize..(gb.offset + gb.len) as usize;
    assert!(
        fx.data[gb].iter().any(|&b| b != 0),
        "precondition: source data there"
    );
    assert!(
        got[e..].iter().all(|&b| b == 0),
        "a skipped area was written"
    );
    // The zero chunks were skipped, not written: the read-back compares the rest only.
    let m = fx.r.load_manifest("x").unwrap();
    let a = m.areas.iter().find(|a| a.name == "p2").unwrap();
    let len = |c: &ironclone::repo::ChunkRef| u64::from(c.len);
    let stored: u64 = a.chunks.iter().filter(|c| c.id.is_some()).map(len).sum();
    let all: u64 = a.chunks.iter().map(len).sum();
    assert!(stored < all, "fixture: p2 should hold zero chunks");
    assert_eq!(rep.bytes_verified, stored);
}

#[test]
fn restore_progress_adds_up_to_the_job_total() {
    let fx = backed_up(8);
    let t = MemDevice::new(fx.data.len(), 512);
    let ev = Collect::default();
    restore_in_place(&fx.r, "x", &t, &ev).unwrap();
    let ev = ev.events();
    let total = match &ev[0] {
        ProgressEvent::JobStart { total_bytes, .. } => *total_bytes,
        e => panic!("first event {e:?}"),
    };
    assert_eq!(advanced_bytes(&ev), total);
    assert_eq!(ev.last(), Some(&ProgressEvent::JobEnd { ok: true }));
}

/// A restore in passes (a bounded number of chunks at a time, for memory) writes what
/// one pass writes: areas cut between passes, a second image whose chunks lie in the
/// first's records (so a record serves several passes), areas moved and left out.
#[test]
fn a_restore_in_passes_writes_what_one_pass_writes() {
    let fx = backed_up(12);
    let mut data = fx.data.clone();
    let at = (fx.plan.areas[2].offset + 3 * MIB) as usize;
    fill_random(&mut data[at..at + MIB as usize / 2], 77);
    let src = MemDevice::from_vec(data.clone(), 512);
    repo::backup(&fx.r, &src, &fx.plan, &BackupOptions::new("y"), &NoProgress).unwrap();
    let chunks: usize =
        fx.r.load_manifest("y")
            .unwrap()
            .areas
            .iter()
            .map(|a| a.chunks.len())
            .sum();
    for pass_chunks in [1, 7, 100, chunks - 1, chunks] {
        let opts = RestoreOptions {
            pass_chunks,
            ..Default::default()
        };
        let t = MemDevice::new(data.len(), 512);
        let ev = Collect::default();
        let rep = repo::restore(&fx.r, "y", &t, &|a| Some(a.offset), &opts, &ev).unwrap();
        assert_restored(&data, &t.snapshot(), &fx.plan);
        assert_eq!(
            rep.bytes_verified + rep.zero_bytes_skipped,
            fx.plan.total_bytes(),
            "{pass_chunks}"
        );
        assert_eq!(rep.areas, ["table-head", "p1", "p2", "gpt-backup"]);
        // One job, whose progress still adds up to its total.
        let ev = ev.events();
        let starts = ev
            .iter()
            .filter(|e| matches!(e, ProgressEvent::JobStart { .. }));
        assert_eq!(starts.count(), 1, "{pass_chunks}");
        let total = match &ev[0] {
            ProgressEvent::JobStart { total_bytes, .. } => *total_bytes,
            e => panic!("first event {e:?}"),
        };
        assert_eq!(advanced_bytes(&ev), total, "{pass_chunks}");
        assert_eq!(ev.last(), Some(&ProgressEvent::JobEnd { ok: true }));
    }
    // p2 alone, 1 MiB further on, in passes of 3 chunks.
    let opts = RestoreOptions {
        pass_chunks: 3,
        ..Default::default()
    };
    let t = MemDevice::new(data.len() + MIB as usize, 512);
    let p2 = &fx.plan.areas[2];
    let moved = |a: &ironclone::repo::AreaManifest| (a.name == "p2").then_some(a.offset + MIB);
    repo::restore(&fx.r, "y", &t, &moved, &opts, &NoProgress).unwrap();
    let got = t.snapshot();
    let (s, e) = (p2.offset as usize, (p2.offset + p2.len) as usize);
    assert_eq!(&got[s + MIB as usize..e + MIB as usize], &data[s..e]);
    assert!(got[..s + MIB as usize].iter().all(|&b| b == 0));
    assert!(got[e + MIB as usize..].iter().all(|&b| b == 0));
}

#[test]
fn write_errors_on_the_target_are_reported() {
    let fx = backed_up(9);
    let t = MemDevice::new(fx.data.len(), 512).read_only();
    let e = restore_in_place(&fx.r, "x", &t, &NoProgress).unwrap_err();
    assert!(
        matches!(
            e,
            RepoError::Device(ironclone::device::DeviceError::ReadOnly { .. })
        ),
        "{e}"
    );
}
