//! The backup reads a failing source ddrescue-style (issue 9): pass 1 skips over a
//! cluster of bad chunks and reads the good data behind it before any sector-sized
//! retry, pass 2 comes back for the gaps, and the image still records exactly the
//! injected ranges with every readable byte restored. A retry budget bounds the time
//! spent on a hopeless stretch.

mod repo_common;

use ironclone::device::{BlockDevice, MemDevice};
use ironclone::progress::{Collect, NoProgress, ProgressEvent};
use ironclone::repo::{self, BackupOptions, BackupPlan, Manifest, Repository, RestoreOptions};
use ironclone::repo::{AreaKind, SourceInfo};
use ironclone::rescue::{Fault, FaultKind, FaultyDevice};
use ironclone::usedmap::ByteExtent;
use repo_common::*;
use std::time::{Duration, Instant};

fn ext(offset: u64, len: u64) -> ByteExtent {
    ByteExtent { offset, len }
}

fn eio(offset: u64, len: u64) -> Fault {
    Fault {
        offset,
        len,
        kind: FaultKind::Eio,
    }
}

/// Random (so never zero, never deduplicated) source bytes.
fn source(size: u64) -> Vec<u8> {
    let mut v = vec![0u8; size as usize];
    fill_random(&mut v, 7);
    v
}

fn backup(
    dev: &dyn BlockDevice,
    plan: &BackupPlan,
    opts: &BackupOptions,
    progress: &Collect,
) -> (tempfile::TempDir, Repository, std::sync::Arc<Manifest>) {
    let dir = tempfile::tempdir().unwrap();
    let r = Repository::init(&dir.path().join("repo"), 1 << 20, 8 << 20).unwrap();
    let m = repo::backup(&r, dev, plan, opts, progress).unwrap();
    // What was written, chunk lists included (the backup returns it without them).
    let m = r.load_manifest(&m.name).unwrap();
    (dir, r, m)
}

/// Restores the image onto a zeroed device and checks every byte: the source's on the
/// planned extents, zero on the unreadable ranges and everywhere else.
fn assert_restore_exact(r: &Repository, m: &Manifest, src: &[u8], plan: &BackupPlan) {
    let target = MemDevice::new(src.len(), 512);
    repo::restore(
        r,
        &m.name,
        &target,
        &|a| Some(a.offset),
        &RestoreOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let mut want = vec![0u8; src.len()];
    for a in &plan.areas {
        for e in &a.extents {
            let s = (a.offset + e.offset) as usize;
            want[s..s + e.len as usize].copy_from_slice(&src[s..s + e.len as usize]);
        }
    }
    for a in &m.areas {
        for b in &a.unreadable {
            let s = (a.offset + b.offset) as usize;
            want[s..s + b.len as usize].fill(0);
        }
    }
    let got = target.snapshot();
    if let Some(i) = got.iter().zip(&want).position(|(g, w)| g != w) {
        panic!("restored byte {i} is {}, want {}", got[i], want[i]);
    }
}

/// Chunk refs of every area are in offset order, contiguous within each extent, cut on
/// the repository's grid for data outside files (`chunking.other`, from the area start):
/// the reader's out-of-order pieces end up where they belong.
fn assert_chunks_in_order(m: &Manifest, grid: u64) {
    for a in &m.areas {
        let mut expect = Vec::new();
        for e in &a.extents {
            let mut at = e.offset;
            while at < e.end() {
                let stop = ((at / grid + 1) * grid).min(e.end());
                expect.push((at, stop - at));
                at = stop;
            }
        }
        let got: Vec<_> = a
            .chunks
            .iter()
            .map(|c| (c.offset, u64::from(c.len)))
            .collect();
        assert_eq!(got, expect, "area {}", a.name);
    }
}

/// The plan of repo_common on 48 MiB: p1 at [1, 24) MiB with holes, p2 at [24, 47) MiB.
/// A cluster of bad ranges in p2, one in every MiB from 28 to 35, the last one across
/// the 36 MiB chunk boundary, and a lone bad sector in p1.
fn clustered() -> (Vec<Fault>, Vec<ByteExtent>, Vec<ByteExtent>) {
    let mut faults = Vec::new();
    for k in 0..8u64 {
        faults.push(eio(
            ((28 + k) << 20) + (k * 37 % 2000) * 512,
            (1 + k % 3) * 512,
        ));
    }
    faults.push(eio((36 << 20) - 1024, 2048));
    faults.push(eio((7 << 20) + 12800, 512));
    let p1 = vec![ext((6 << 20) + 12800, 512)];
    let p2 = faults[..9]
        .iter()
        .map(|f| ext(f.offset - (24 << 20), f.len))
        .collect();
    (faults, p1, p2)
}

#[test]
fn clustered_errors_are_skipped_in_pass_one_and_every_readable_byte_is_kept() {
    let size = 48 * MIB;
    let src = source(size);
    let plan = plan_for(size);
    let (faults, p1_bad, p2_bad) = clustered();
    let dev =
        FaultyDevice::new(MemDevice::from_vec(src.clone(), 512), faults.clone()).with_read_log();
    let progress = Collect::default();
    let t = Instant::now();
    let (_d, r, m) = backup(&dev, &plan, &BackupOptions::new("twopass"), &progress);
    let took = t.elapsed();

    // (a) exactly the injected ranges, per area, area-relative; the one across the
    // chunk boundary is one range although its halves came from two pieces.
    let bad: Vec<(&str, Vec<ByteExtent>)> = m
        .areas
        .iter()
        .map(|a| (a.name.as_str(), a.unreadable.clone()))
        .collect();
    assert_eq!(
        bad,
        vec![
            ("table-head", vec![]),
            ("p1", p1_bad),
            ("p2", p2_bad),
            ("gpt-backup", vec![])
        ]
    );
    let injected: u64 = faults.iter().map(|f| f.len).sum();
    assert_eq!(m.stats.unreadable_bytes, injected);
    assert_eq!(m.stats.bytes_read, plan.total_bytes());
    assert_chunks_in_order(&m, u64::from(r.config().chunking().other));
    assert_restore_exact(&r, &m, &src, &plan);

    // (b) pass 1 skips: no sector-sized read until the last piece of the plan (the
    // GPT backup at the disk's end) has been read.
    let log = dev.read_log();
    let last = plan.areas.last().unwrap();
    let last_piece = log
        .iter()
        .position(|&(o, _)| o == last.offset)
        .expect("the GPT backup was read");
    let first_sector = log
        .iter()
        .position(|&(_, l)| l == 512)
        .expect("bad sectors were isolated");
    // Pass 1 tried only some of the 9 bad chunks of the cluster (28..=36 MiB).
    let cluster_pass1 = log[..=last_piece]
        .iter()
        .filter(|&&(o, _)| (28 << 20..37 << 20).contains(&o))
        .count();
    let (reads, failed) = dev.read_counts();
    eprintln!(
        "reads: {reads} ({failed} failed); {} reads up to the last piece, {cluster_pass1} in the cluster; \
         first sector-sized read #{first_sector}; backup took {took:?}",
        last_piece + 1
    );
    assert!(
        first_sector > last_piece,
        "sector-sized read #{first_sector} came before the last good piece (read #{last_piece})"
    );
    assert!(
        cluster_pass1 <= 5,
        "pass 1 read {cluster_pass1} cluster chunks"
    );

    // Progress: live errors at device offsets, a visible pass 2 after the areas.
    let ev = progress.events();
    let mut errs: Vec<ByteExtent> = ev
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::ReadError { offset, len } => Some(ext(*offset, *len)),
            _ => None,
        })
        .collect();
    errs.sort();
    // Per piece: the range across 36 MiB is reported as its two halves.
    let mut want: Vec<ByteExtent> = faults.iter().map(|f| ext(f.offset, f.len)).collect();
    want.retain(|e| e.offset != (36 << 20) - 1024);
    want.extend([ext((36 << 20) - 1024, 1024), ext(36 << 20, 1024)]);
    want.sort();
    assert_eq!(errs, want);
    let phase = |want: &str| {
        ev.iter().position(
            |e| matches!(e, ProgressEvent::PhaseStart { name, .. } if name.starts_with(want)),
        )
    };
    let pass2 = phase("pass 2 (").expect("a pass-2 phase");
    assert!(phase("gpt-backup").unwrap() < pass2);
    let advanced: u64 = ev
        .iter()
        .map(|e| match e {
            ProgressEvent::Advance { bytes } => *bytes,
            _ => 0,
        })
        .sum();
    assert_eq!(advanced, plan.total_bytes());
    assert!(matches!(
        ev.last(),
        Some(ProgressEvent::JobEnd { ok: true })
    ));
    assert!(dev.write_attempts().is_empty());
}

#[test]
fn small_retry_budget_bounds_a_slow_hopeless_stretch() {
    // 3 MiB that fail everywhere and crawl (10 ms a read): isolating every sector
    // would take 3 × ~6000 reads, minutes. The budget is 300 ms.
    let size = 32 * MIB;
    let src = source(size);
    let plan = BackupPlan::whole_device(SourceInfo {
        path: "sick".into(),
        model: None,
        serial: None,
        size,
        sector_size: 512,
    });
    assert_eq!(plan.areas[0].kind, AreaKind::TableRaw);
    let faults = vec![
        eio(8 << 20, 3 << 20),
        Fault {
            offset: 8 << 20,
            len: 4 << 20,
            kind: FaultKind::Slow(Duration::from_millis(10)),
        },
    ];
    let dev = FaultyDevice::new(MemDevice::from_vec(src.clone(), 512), faults);
    let mut opts = BackupOptions::new("budget");
    opts.retry_budget = Duration::from_millis(300);
    let progress = Collect::default();
    let t = Instant::now();
    let (_d, r, m) = backup(&dev, &plan, &opts, &progress);
    let took = t.elapsed();
    let (reads, failed) = dev.read_counts();
    eprintln!("budget: {reads} reads ({failed} failed) in {took:?}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        reads < 200,
        "{reads} reads: the budget did not stop the retries"
    );
    // What was given up unread is recorded, and it is the whole stretch.
    assert_eq!(m.areas[0].unreadable, vec![ext(8 << 20, 3 << 20)]);
    assert!(progress
        .events()
        .iter()
        .any(|e| matches!(e, ProgressEvent::Warning { message } if message.contains("budget"))));
    // The slow but readable MiB after it, and everything else, is in the image.
    assert_restore_exact(&r, &m, &src, &plan);
}

/// The CLI shows pass 2 as a phase of its own, in JSON lines and in plain lines, with
/// every unreadable range reported live.
#[test]
fn cli_shows_pass_two_in_json_and_plain_output() {
    // The CLI reads a new repository's frames in pieces of this size (it depends on
    // the cores: 4 MiB with 2 or 3 workers, 2 MiB with 8), and pass 1 sets aside and
    // skips whole pieces: the failing sectors are laid out in pieces.
    let c = u64::from(ironclone::repo::backup_piece_bytes(
        0,
        ironclone::repo::DEFAULT_CHUNK_SIZE,
    ));
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, source(8 * c)).unwrap();
    let bad = [(2 * c, 512), (3 * c + 4096, 4096), (5 * c + 1024, 1024)];
    let spec: Vec<String> = bad.iter().map(|(o, l)| format!("eio:{o}+{l}")).collect();
    let run = |name: &str, json: bool| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ironclone"));
        c.arg("backup")
            .arg(&disk)
            .arg(dir.path().join("repo"))
            .args(["--name", name])
            .env("IRONCLONE_FAULTS", spec.join(","));
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };

    let out = run("json", true);
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let pass2: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "phase_start")
        .filter_map(|e| Some((e["name"].as_str()?, e["total_bytes"].as_u64()?)))
        .filter(|(n, _)| n.starts_with("pass 2"))
        .collect();
    assert_eq!(pass2.len(), 1, "{events:#?}");
    let (name, bytes) = pass2[0];
    // Pieces 2, 3 and 5 failed; the skips after 3 and 5 set aside 4, 6 and 7 unread.
    assert_eq!(name, "pass 2 (6 set aside)");
    assert_eq!(bytes, 6 * c);
    let mut errs: Vec<(u64, u64)> = events
        .iter()
        .filter(|e| e["event"] == "read_error")
        .map(|e| (e["offset"].as_u64().unwrap(), e["len"].as_u64().unwrap()))
        .collect();
    errs.sort();
    assert_eq!(errs, bad);

    let out = run("plain", false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines().any(|l| l
            == format!(
                "  pass 2 (6 set aside): {}",
                ironclone::units::human_bytes(6 * c)
            )),
        "{err}"
    );
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("unreadable: "))
            .count(),
        3,
        "{err}"
    );
}
