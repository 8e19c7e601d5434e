//! The concurrent-writer protocol on a local directory: writer locks beside each
//! other and beside prune, marks that wait for running backups, and the race where
//! a backup would reuse chunks of a pack prune has marked.

use super::lock::{Job, Lock, WRITER_PREFIX};
use super::{backup, prune, verify, BackupOptions, BackupPlan, Repository, SourceInfo};
use crate::device::{BlockDevice, MemDevice};
use crate::progress::NoProgress;
use std::path::Path;

const MIB: usize = 1 << 20;

pub(super) fn data(seed: u64, size: usize) -> Vec<u8> {
    let mut s = seed | 1;
    (0..size)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s.to_le_bytes()[3]
        })
        .collect()
}

pub(super) fn back_up(repo: &Repository, name: &str, bytes: Vec<u8>) -> super::Manifest {
    let dev = MemDevice::from_vec(bytes, 512);
    let plan = BackupPlan::whole_device(SourceInfo {
        path: "mem".into(),
        model: None,
        serial: None,
        size: dev.size(),
        sector_size: 512,
    });
    backup(repo, &dev, &plan, &BackupOptions::new(name), &NoProgress).unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walk(dir)
        .into_iter()
        .filter_map(|p| Some(p.strip_prefix(dir).ok()?.to_string_lossy().into_owned()))
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn packs(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| f.starts_with("packs/"))
        .collect()
}

fn verify_ok(repo: &Repository) {
    let v = verify(repo, None, &NoProgress).unwrap();
    assert!(v.ok(), "{:?} {:?}", v.problems, v.damages);
}

#[test]
fn backups_take_their_own_locks_and_prune_runs_beside_them_but_not_beside_a_prune() {
    let dir = tempfile::tempdir().unwrap();
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 24).unwrap();
    let a = Lock::acquire(repo, Job::Backup).unwrap();
    let b = Lock::acquire(repo, Job::Backup).unwrap();
    assert_ne!(a.name(), b.name());
    assert!(a.name().starts_with(WRITER_PREFIX));
    let p = Lock::acquire(repo, Job::Prune).unwrap();
    let e = Lock::acquire(repo, Job::Prune).err().unwrap();
    assert!(matches!(e, super::RepoError::Locked { .. }), "{e}");
    let e = Lock::acquire(repo, Job::RepairIndex).err().unwrap();
    assert!(matches!(e, super::RepoError::Locked { .. }), "{e}");
    // A backup starts beside this build's prune.
    let c = Lock::acquire(repo, Job::Backup).unwrap();
    drop((a, b, c, p));
    assert_eq!(files(dir.path()), vec!["config".to_string()]);

    // An older build's prune (no "ms" word; this live pid) deletes at once: refused.
    let locks = dir.path().join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    std::fs::write(
        locks.join("lock"),
        format!("{} prune\n", std::process::id()),
    )
    .unwrap();
    let e = Lock::acquire(repo, Job::Backup).err().unwrap();
    assert!(
        matches!(&e, super::RepoError::InUse { job, .. } if job == "prune"),
        "{e}"
    );
    // An older build's backup holds `locks/lock`: prune stays out.
    std::fs::write(
        locks.join("lock"),
        format!("{} backup\n", std::process::id()),
    )
    .unwrap();
    assert!(Lock::acquire(repo, Job::Prune).is_err());
    assert!(Lock::acquire(repo, Job::Backup).is_ok());
}

#[test]
fn a_marked_pack_is_stored_anew_not_reused_and_swept_once_the_writer_ends() {
    let dir = tempfile::tempdir().unwrap();
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 24).unwrap();
    let bytes = data(7, 6 * MIB);
    back_up(repo, "a", bytes.clone());
    let old = packs(dir.path());
    repo.delete_image("a").unwrap();

    // A backup is running (its lock held): prune only marks a's pack.
    let running = Lock::acquire(repo, Job::Backup).unwrap();
    let r = prune(repo, &NoProgress).unwrap();
    assert_eq!((r.packs_marked, r.packs_deleted), (old.len(), 0), "{r:?}");
    assert_eq!(r.waiting_for, vec![running.name().to_string()], "{r:?}");
    assert_eq!(
        packs(dir.path()),
        old,
        "nothing deleted while a writer runs"
    );

    // The race: a backup of the same bytes would dedup against the marked pack. It
    // stores every chunk again instead.
    let m = back_up(repo, "b", bytes.clone());
    assert_eq!(m.stats.dedup_bytes, 0, "{:?}", m.stats);
    assert_eq!(m.stats.new_bytes, bytes.len() as u64, "{:?}", m.stats);
    let both = packs(dir.path());
    assert_eq!(
        both.len(),
        old.len() * 2,
        "a new pack of its own (salted name)"
    );

    // Still waiting: a second prune sweeps nothing and marks nothing new.
    let r = prune(repo, &NoProgress).unwrap();
    assert_eq!((r.packs_marked, r.packs_deleted), (0, 0), "{r:?}");
    assert_eq!(r.packs_waiting, old.len());
    verify_ok(repo);

    drop(running);
    let r = prune(repo, &NoProgress).unwrap();
    assert_eq!((r.packs_deleted, r.packs_kept), (old.len(), 0), "{r:?}");
    assert!(old.iter().all(|p| !dir.path().join(p).exists()));
    assert!(!files(dir.path()).iter().any(|f| f.starts_with("prune/")));
    verify_ok(repo);
}

#[test]
fn a_marked_pack_that_a_running_backup_came_to_need_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 24).unwrap();
    back_up(repo, "a", data(9, 4 * MIB));
    let manifest = dir.path().join("images/a.json");
    let saved = std::fs::read(&manifest).unwrap();
    let old = packs(dir.path());
    repo.delete_image("a").unwrap();

    // A backup that loaded the index before the mark reuses the pack's chunks and
    // writes its manifest after prune marked it: here, the same manifest put back.
    let running = Lock::acquire(repo, Job::Backup).unwrap();
    let r = prune(repo, &NoProgress).unwrap();
    assert_eq!(r.packs_marked, old.len(), "{r:?}");
    std::fs::write(&manifest, &saved).unwrap();
    drop(running);
    let r = prune(repo, &NoProgress).unwrap();
    assert_eq!((r.packs_deleted, r.packs_kept), (0, old.len()), "{r:?}");
    assert_eq!(packs(dir.path()), old);
    verify_ok(repo);
}

#[test]
fn a_live_writers_unindexed_pack_waits_and_a_dead_writers_is_swept() {
    let dir = tempfile::tempdir().unwrap();
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 24).unwrap();
    back_up(repo, "a", data(11, 3 * MIB));
    back_up(repo, "b", data(12, 3 * MIB));
    repo.delete_image("b").unwrap();
    // b's pack without its index file: a backup between publishing the two.
    let b_index: Vec<String> = files(dir.path())
        .into_iter()
        .filter(|f| f.starts_with("index/"))
        .collect();
    let kept_a = repo.load_manifest("a").unwrap();
    let idx = repo.load_index().unwrap();
    let a_pack = idx
        .locate(&kept_a.chunk_ids().next().unwrap())
        .unwrap()
        .pack;
    let b_idx = b_index
        .iter()
        .find(|n| !n.contains(&a_pack.to_hex()))
        .unwrap();
    std::fs::remove_file(dir.path().join(b_idx)).unwrap();
    let b_pack = packs(dir.path())
        .into_iter()
        .find(|p| !p.contains(&a_pack.to_hex()))
        .unwrap();

    let running = Lock::acquire(repo, Job::Backup).unwrap();
    let r = prune(repo, &NoProgress).unwrap();
    assert_eq!((r.packs_marked, r.packs_deleted), (1, 0), "{r:?}");
    assert!(
        dir.path().join(&b_pack).exists(),
        "a live writer's pack stays"
    );
    drop(running);

    // Its writer died instead (pid 0 is never alive): the next prune removes the
    // dead lock and sweeps.
    let locks = dir.path().join("locks");
    std::fs::write(locks.join("write-dead"), "0 backup somehost 1\n").unwrap();
    let r = prune(repo, &NoProgress).unwrap();
    assert_eq!(r.packs_deleted, 1, "{r:?}");
    assert!(!dir.path().join(&b_pack).exists());
    assert!(
        !locks.join("write-dead").exists(),
        "a dead writer's lock goes"
    );
    verify_ok(repo);
}

#[test]
fn a_mark_without_writers_waits_for_those_alive_now_and_an_unreadable_mark_goes() {
    let dir = tempfile::tempdir().unwrap();
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 24).unwrap();
    back_up(repo, "a", data(21, 2 * MIB));
    let pack = packs(dir.path()).remove(0);
    let id = pack.rsplit('/').next().unwrap().trim_end_matches(".pack");
    repo.delete_image("a").unwrap();
    // A prune killed between the mark's two writes left `writers: null`.
    let marks = dir.path().join("prune");
    std::fs::create_dir_all(&marks).unwrap();
    let body = format!(r#"{{"version":1,"created_unix":1,"packs":["{id}"],"writers":null}}"#);
    std::fs::write(marks.join("mark-x.json"), body).unwrap();
    std::fs::write(marks.join("mark-y.json"), "{ torn").unwrap();
    let running = Lock::acquire(repo, Job::Backup).unwrap();
    let r = prune(repo, &NoProgress).unwrap();
    assert_eq!(r.packs_deleted, 0, "{r:?}");
    assert_eq!(r.waiting_for, vec![running.name().to_string()], "{r:?}");
    assert_eq!(r.warnings.len(), 1, "{r:?}");
    assert!(
        !marks.join("mark-y.json").exists(),
        "the unreadable mark goes"
    );
    let m = std::fs::read_to_string(marks.join("mark-x.json")).unwrap();
    assert!(m.contains(running.name()), "writers filled in: {m}");
    drop(running);
    let r = prune(repo, &NoProgress).unwrap();
    assert_eq!(r.packs_deleted, 1, "{r:?}");
    assert!(!dir.path().join(&pack).exists());
    verify_ok(repo);
}

#[test]
fn a_backup_whose_lock_was_removed_as_stale_does_not_finish() {
    let dir = tempfile::tempdir().unwrap();
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 24).unwrap();
    let l = Lock::acquire(repo, Job::Backup).unwrap();
    assert!(l.check_held().is_ok());
    std::fs::remove_file(dir.path().join(l.name())).unwrap();
    let e = l.check_held().err().unwrap();
    assert!(
        matches!(e, super::RepoError::LockLost { .. })
            && e.to_string().contains("run the backup again"),
        "{e}"
    );
}

#[test]
fn an_unreadable_index_file_stops_prune_before_it_deletes_anything() {
    let dir = tempfile::tempdir().unwrap();
    let repo = &Repository::init(dir.path(), 1 << 20, 1 << 24).unwrap();
    back_up(repo, "a", data(1, 6 * MIB));
    let a_packs = packs(dir.path());
    repo.delete_image("a").unwrap();
    // a's packs marked while a backup runs; once it ends, the mark is ready to sweep.
    let running = Lock::acquire(repo, Job::Backup).unwrap();
    let r = prune(repo, &NoProgress).unwrap();
    assert_eq!(r.packs_marked, a_packs.len(), "{r:?}");
    drop(running);
    back_up(repo, "b", data(2, 6 * MIB));
    let before = files(dir.path());
    // One of b's index files damaged: prune cannot know what b's packs hold.
    let bad = before
        .iter()
        .find(|f| {
            let hex = f.trim_start_matches("index/").trim_end_matches(".json");
            f.starts_with("index/") && !a_packs.iter().any(|p| p.contains(hex))
        })
        .unwrap();
    let p = dir.path().join(bad);
    let mut b = std::fs::read(&p).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x55;
    std::fs::write(&p, b).unwrap();
    let e = prune(repo, &NoProgress).unwrap_err().to_string();
    assert!(e.contains(bad.as_str()), "{e}");
    assert_eq!(
        files(dir.path()),
        before,
        "the ready mark not swept, nothing written"
    );
}

/// Prune keeps what images use by the first 8 bytes of each id (id_set.rs `UsedIds`):
/// a pack mostly freed by a deleted image has every chunk still in use copied, and
/// only those, before it goes.
#[test]
fn a_mostly_unused_packs_chunks_in_use_are_copied_and_the_rest_freed() {
    let dir = tempfile::tempdir().unwrap();
    // 64 KiB frames, one chunk each: a chunk missed is a record lost (a frame is kept
    // when any of its chunks is used).
    let config = super::config::RepoConfig::with_chunks(1 << 16, 1 << 24, 1 << 16);
    let repo = &Repository::init_with(dir.path(), config).unwrap();
    let a = data(3, 8 * MIB);
    back_up(repo, "a", a.clone());
    let a_packs = packs(dir.path());
    // b shares a's first 2 MiB: a's pack is a quarter used once a is gone.
    let mut b = a[..2 * MIB].to_vec();
    b.extend(data(4, 2 * MIB));
    let m = back_up(repo, "b", b);
    assert_eq!(m.stats.dedup_bytes, 2 * MIB as u64, "{:?}", m.stats);
    repo.delete_image("a").unwrap();
    let first = prune(repo, &NoProgress).unwrap();
    verify_ok(repo);
    let second = prune(repo, &NoProgress).unwrap();
    assert!(a_packs.iter().all(|p| !dir.path().join(p).exists()));
    let freed = first.bytes_freed + second.bytes_freed;
    assert!(
        (6 * MIB as u64..7 * MIB as u64).contains(&freed),
        "{first:?} {second:?}"
    );
    verify_ok(repo);
}
