//! Rescue reading against injected faults: exact bad lists, intact good bytes,
//! progress on slow disks, and a budget that stops a hopeless disk.

use super::reader::{pieces, MAX_PIECE};
use super::*;
use crate::device::{DeviceError, MemDevice};
use crate::progress::{Collect, ProgressEvent};
use crate::usedmap::merged;
use crate::usedmap::ByteExtent;
use std::time::Duration;

fn pattern(len: usize) -> Vec<u8> {
    // Never zero, so a zero-filled byte is always visible.
    (0..len)
        .map(|i| ((i * 7 + i / 4096) % 251 + 1) as u8)
        .collect()
}

fn ext(offset: u64, len: u64) -> ByteExtent {
    ByteExtent { offset, len }
}

fn faulty(size: usize, spec: &str) -> (FaultyDevice<MemDevice>, Vec<u8>) {
    let data = pattern(size);
    (
        FaultyDevice::from_spec(MemDevice::from_vec(data.clone(), 512), spec).unwrap(),
        data,
    )
}

/// Every byte outside `bad` equals the source, every byte inside is zero.
fn check_bytes(got: &[u8], at: u64, src: &[u8], bad: &[BadRange]) {
    let mut want = src[at as usize..at as usize + got.len()].to_vec();
    for r in bad {
        let s = (r.offset.max(at) - at) as usize;
        let e = (r.end().min(at + got.len() as u64) - at) as usize;
        want[s..e].fill(0);
    }
    if got != want.as_slice() {
        let i = got.iter().zip(&want).position(|(a, b)| a != b).unwrap();
        panic!(
            "byte {} differs: got {}, want {}",
            at + i as u64,
            got[i],
            want[i]
        );
    }
}

/// Both passes over `extents`: checks every delivered byte against `src` and returns
/// the bad ranges in delivery order.
fn read_all(r: &mut RescueReader, extents: &[ByteExtent], src: &[u8]) -> Vec<BadRange> {
    let mut bad = Vec::new();
    r.run(extents, |p| {
        check_bytes(&p.data, p.offset, src, &p.bad);
        bad.extend(p.bad);
        Ok::<(), std::io::Error>(())
    })
    .unwrap();
    bad
}

#[test]
fn bad_list_is_exactly_the_injected_sectors() {
    // One fault inside a chunk, one across a chunk boundary, one unaligned byte range
    // (which makes its whole sector unreadable, as on a disk).
    let (dev, src) = faulty(4 << 20, "eio:1048576+4096,eio:3145216+1024,eio:2000000+10");
    let progress = Collect::default();
    let mut r = RescueReader::new(&dev, RescueOptions::default(), &progress);
    let all_bad = read_all(&mut r, &[ext(0, 4 << 20)], &src);
    assert_eq!(
        all_bad,
        vec![
            ext(1048576, 4096),
            ext(1999872, 512), // sector holding 2000000..2000010
            ext(3145216, 512), // ends at the chunk boundary 3 MiB
            ext(3145728, 512),
        ]
    );
    let s = r.stats();
    assert_eq!(s.unreadable_bytes, 4096 + 512 * 3);
    assert_eq!(s.bad_ranges, 4);
    assert!(!s.budget_exhausted);
    let reported: Vec<_> = progress
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ProgressEvent::ReadError { offset, len } => Some(ext(offset, len)),
            _ => None,
        })
        .collect();
    assert_eq!(reported, all_bad);
    assert!(dev.write_attempts().is_empty());
}

#[test]
fn a_good_piece_the_reverse_step_jumps_over_is_still_read_whole() {
    // 64 KiB pieces: 1-2 and 4-8 bad, 3 good between them. Pass 1 fails on 1, 2, 4
    // and 7 and jumps over 3, 5, 6 and 8-11; the reverse step reads 11-9, fails on 8
    // and 5 and jumps back over 3. Piece 3 must still come out intact.
    let (dev, src) = faulty(1 << 20, "eio:65536+131072,eio:262144+327680");
    let opts = RescueOptions {
        piece_size: 64 << 10,
        ..Default::default()
    };
    let mut r = RescueReader::new(&dev, opts, &crate::progress::NoProgress);
    let (mut bad, mut seen) = (Vec::new(), Vec::new());
    r.run(&[ext(0, 1 << 20)], |p| {
        check_bytes(&p.data, p.offset, &src, &p.bad);
        seen.push(p.offset);
        bad.extend(p.bad);
        Ok::<(), std::io::Error>(())
    })
    .unwrap();
    seen.sort();
    assert_eq!(seen, (0..16).map(|i| i << 16).collect::<Vec<u64>>());
    assert_eq!(
        merged(bad),
        vec![ext(65536, 131072), ext(262144, 327680)],
        "exactly the damage lost"
    );
    assert!(r.stats().deferred_pieces >= 10);
}

#[test]
fn flaky_sector_is_recovered_by_retries() {
    let (dev, src) = faulty(1 << 20, "flaky:8192+512:2");
    let mut r = RescueReader::new(&dev, RescueOptions::default(), &crate::progress::NoProgress);
    assert!(read_all(&mut r, &[ext(0, 1 << 20)], &src).is_empty());
    assert!(r.stats().failed_reads >= 2);

    // A sector that fails more often than the bisection and the retries try it stays bad.
    let (dev, src) = faulty(1 << 20, "flaky:8192+512:100");
    let opts = RescueOptions {
        max_retries: 3,
        ..Default::default()
    };
    let mut r = RescueReader::new(&dev, opts, &crate::progress::NoProgress);
    assert_eq!(
        read_all(&mut r, &[ext(0, 1 << 20)], &src),
        vec![ext(8192, 512)]
    );
}

#[test]
fn non_media_errors_propagate() {
    let (dev, _) = faulty(1 << 20, "eio:0+512");
    let mut r = RescueReader::new(&dev, RescueOptions::default(), &crate::progress::NoProgress);
    let res = r.run(&[ext(0, 4096), ext(1 << 20, 4096)], |_| {
        Ok::<(), std::io::Error>(())
    });
    assert!(matches!(
        res,
        Err(RunError::Device(DeviceError::OutOfRange { .. }))
    ));
    // A piece beyond the read limit is refused before anything is allocated or read.
    let res = r.pass1([(0, MAX_PIECE + 1)], &mut |_| Ok::<(), std::io::Error>(()));
    assert!(matches!(res, Err(RunError::PieceTooBig { offset: 0, .. })));
}

#[test]
fn two_pass_run_delivers_every_piece_once_with_exact_bad_list() {
    // A cluster of bad pieces (to trigger growing skips) plus scattered bad sectors,
    // read through extents with holes in between.
    let spec = "eio:2097152+512,eio:2621440+512,eio:3145728+512,eio:3670016+512,eio:4194304+512,\
                eio:9437184+4096,eio:12583424+512";
    let (dev, src) = faulty(16 << 20, spec);
    let extents = [
        ext(0, 6 << 20),
        ext(8 << 20, 5 << 20),
        ext(14 << 20, 1 << 20),
    ];
    let progress = Collect::default();
    let opts = RescueOptions {
        piece_size: 512 << 10,
        ..Default::default()
    };
    let mut r = RescueReader::new(&dev, opts, &progress);
    let mut seen = Vec::new();
    let mut bad_all = Vec::new();
    let stats = r
        .run(&extents, |p| {
            check_bytes(&p.data, p.offset, &src, &p.bad);
            seen.push((p.index, ext(p.offset, p.data.len() as u64)));
            bad_all.extend(p.bad);
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    seen.sort();
    let want: Vec<_> = extents
        .iter()
        .flat_map(|e| {
            (0..e.len / (512 << 10)).map(move |i| ext(e.offset + i * (512 << 10), 512 << 10))
        })
        .enumerate()
        .collect();
    assert_eq!(
        seen, want,
        "each piece exactly once, cut from its extent start, with its index"
    );
    bad_all.sort();
    let injected: Vec<_> = [
        (2097152, 512),
        (2621440, 512),
        (3145728, 512),
        (3670016, 512),
        (4194304, 512),
        (9437184, 4096),
        (12583424, 512),
    ]
    .iter()
    .map(|&(o, l)| ext(o, l))
    .collect();
    assert_eq!(bad_all, injected);
    assert!(
        stats.deferred_pieces > 7,
        "clustered errors skip ahead: {stats:?}"
    );
    let advanced: u64 = progress
        .events()
        .iter()
        .map(|e| match e {
            ProgressEvent::Advance { bytes } => *bytes,
            _ => 0,
        })
        .sum();
    assert_eq!(advanced, 12 << 20);
    assert!(dev.write_attempts().is_empty());
}

#[test]
fn skip_grows_with_clustered_errors_and_pass_one_reads_far_less_of_them() {
    // 8 MiB all bad: pass 1 must not try every piece.
    let dev =
        FaultyDevice::from_spec(MemDevice::new(32 << 20, 512), "eio:4194304+8388608").unwrap();
    let opts = RescueOptions {
        piece_size: 256 << 10,
        max_skip: 4 << 20,
        retry_budget: Duration::ZERO,
        ..Default::default()
    };
    let mut r = RescueReader::new(&dev, opts, &crate::progress::NoProgress);
    let mut bad = Vec::new();
    let mut sink = |p: Piece| {
        bad.extend(p.bad);
        Ok::<(), std::io::Error>(())
    };
    let set_aside = r
        .pass1(pieces(&[ext(0, 32 << 20)], 256 << 10), &mut sink)
        .unwrap();
    let (reads, failed) = dev.read_counts();
    // 32 pieces in the bad area; growing skips try only a handful of them.
    assert!(failed <= 8, "pass 1 failed reads: {failed}");
    // Every piece was either read once or skipped (failed ones are set aside too).
    assert_eq!(reads + set_aside.len() as u64 - failed, 128);
    let (skipped_good, skipped) = (
        set_aside
            .items_for_tests()
            .filter(|(o, _)| *o >= 12 << 20)
            .count() as u64,
        set_aside.items_for_tests().count() as u64 - failed,
    );
    assert!(skipped_good > 0, "pass 1 jumped past the damage's end");
    r.pass2(set_aside, &mut sink).unwrap();
    // No budget: the reverse step reads the skipped pieces past the damage, meets the
    // damage from behind and skips backwards over most of it; what it skipped and what
    // failed are given up unbisected. Exactly the damage is lost.
    let (reads2, failed2) = (dev.read_counts().0 - reads, dev.read_counts().1 - failed);
    assert_eq!(
        reads2 - failed2,
        skipped_good,
        "every good skipped piece read"
    );
    // Reading forwards, each of the 26 skipped bad pieces failed once (31 reads).
    assert!(
        failed2 <= 4 && reads2 < skipped,
        "pass 2: {reads2} reads, {failed2} failed, of {skipped} skipped pieces"
    );
    assert_eq!(merged(bad), vec![ext(4 << 20, 8 << 20)]);
}

#[test]
fn slow_failing_reads_still_report_progress() {
    // Every read of the first 64 KiB crawls, and 8 sectors in it fail.
    let (dev, src) = faulty(1 << 20, "slow:0+65536:30ms,eio:4096+4096");
    let progress = Collect::default();
    let mut r = RescueReader::new(&dev, RescueOptions::default(), &progress);
    let bad = read_all(&mut r, &[ext(0, 1 << 20)], &src);
    assert_eq!(bad, vec![ext(4096, 4096)]);
    let beats = progress
        .events()
        .iter()
        .filter(|e| matches!(e, ProgressEvent::Advance { bytes: 0 }))
        .count();
    assert!(beats >= 1, "no heartbeat during slow retries");
}

#[test]
fn budget_exhaustion_gives_up_without_hanging() {
    // 2048 failing sectors at 20 ms a try would take minutes; the budget is 300 ms.
    let (dev, src) = faulty(2 << 20, "slow:0+1048576:20ms,eio:0+1048576");
    let progress = Collect::default();
    let opts = RescueOptions {
        retry_budget: Duration::from_millis(300),
        ..Default::default()
    };
    let mut r = RescueReader::new(&dev, opts, &progress);
    // The good second MiB needs no retry: pass 1 reads it (read_all checks its bytes).
    let bad = read_all(&mut r, &[ext(0, 2 << 20)], &src);
    // Counted, not timed: isolating each of the 2048 bad sectors would take thousands of
    // reads; within the budget only 300 ms / 20 ms = 15 slow failing reads fit (16 seen,
    // plus one for the good MiB). A loaded machine only makes reads slower, so fewer.
    let (reads, failed) = dev.read_counts();
    assert!(
        reads < 40 && failed <= 20,
        "{reads} reads ({failed} failed): the budget did not stop the retries"
    );
    assert_eq!(bad, vec![ext(0, 1 << 20)]);
    assert!(r.stats().budget_exhausted);
    assert!(progress
        .events()
        .iter()
        .any(|e| matches!(e, ProgressEvent::Warning { message } if message.contains("budget"))));
}

#[test]
fn sink_error_stops_the_run_and_names_the_offset() {
    let (dev, _) = faulty(4 << 20, "eio:0+512");
    let mut r = RescueReader::new(&dev, RescueOptions::default(), &crate::progress::NoProgress);
    let mut calls = 0;
    let res = r.run(&[ext(0, 4 << 20)], |p| {
        calls += 1;
        if p.offset == 2 << 20 {
            Err(std::io::Error::other("disk full"))
        } else {
            Ok(())
        }
    });
    match res {
        Err(RunError::Sink { offset, .. }) => assert_eq!(offset, 2 << 20),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        calls, 2,
        "piece 0 is deferred, piece 1 delivered, piece 2 fails"
    );
}

#[test]
fn recycled_buffers_with_old_contents_never_reach_the_sink() {
    // Buffers as a pool hands them back: the wrong length, full of old bytes (never
    // zero, never the pattern at that place). Bisected, retried and budget-given-up
    // ranges must all come out as source bytes or zeros.
    let (dev, src) = faulty(
        4 << 20,
        "eio:1048576+4096,eio:2000000+10,slow:3145728+1048576:20ms,eio:3145728+1048576",
    );
    let dirty = |len: usize| vec![0xAAu8; len / 2 + 4096];
    let opts = RescueOptions {
        retry_budget: Duration::from_millis(200),
        ..Default::default()
    };
    let progress = Collect::default();
    let mut r = RescueReader::new(&dev, opts, &progress).with_buffers(&dirty);
    let bad = merged(read_all(&mut r, &[ext(0, 4 << 20)], &src));
    assert!(r.stats().budget_exhausted, "the budget path was not taken");
    assert_eq!(bad.first(), Some(&ext(1048576, 4096)));
    assert!(bad.contains(&ext(1999872, 512)));
    assert_eq!(bad.last().map(|b| b.end()), Some(4 << 20));
}

/// A disk read through a page cache, as the live system reads its source: a cached
/// read fails when any 4 KiB page it touches holds a bad sector (the kernel reads whole
/// pages), a direct read only when it touches a bad sector itself. Logs
/// `(offset, len, direct)` for every read.
struct PageCached {
    inner: FaultyDevice<MemDevice>,
    log: std::sync::Mutex<Vec<(u64, u64, bool)>>,
}

impl PageCached {
    fn log(&self, offset: u64, len: usize, direct: bool) {
        self.log.lock().unwrap().push((offset, len as u64, direct));
    }
}

impl crate::device::BlockDevice for PageCached {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.log(offset, buf.len(), false);
        let lo = offset / 4096 * 4096;
        let hi = (offset + buf.len() as u64).div_ceil(4096) * 4096;
        let mut pages = vec![0u8; (hi - lo) as usize];
        self.inner.read_at(lo, &mut pages)?;
        let at = (offset - lo) as usize;
        buf.copy_from_slice(&pages[at..at + buf.len()]);
        Ok(())
    }
    fn read_direct_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.log(offset, buf.len(), true);
        self.inner.read_direct_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.inner.write_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn logical_sector_size(&self) -> u32 {
        512
    }
    fn flush(&self) -> Result<(), DeviceError> {
        Ok(())
    }
    fn access(&self) -> crate::device::Access {
        crate::device::Access::ReadOnly
    }
    fn describe(&self) -> String {
        "page-cached".into()
    }
}

#[test]
fn bisection_reads_past_the_page_cache_and_loses_only_bad_sectors() {
    // Two lone bad sectors, each inside a page whose other seven sectors are good.
    let (inner, src) = faulty(4 << 20, "eio:1049088+512,eio:2000000+10");
    let dev = PageCached {
        inner,
        log: Default::default(),
    };
    let mut r = RescueReader::new(&dev, RescueOptions::default(), &crate::progress::NoProgress);
    let bad = merged(read_all(&mut r, &[ext(0, 4 << 20)], &src));
    // Cached bisection would end at the pages 1048576+4096 and 1998848+4096.
    assert_eq!(bad, vec![ext(1049088, 512), ext(1999872, 512)]);
    let log = dev.log.lock().unwrap();
    let (direct, cached): (Vec<&(u64, u64, bool)>, Vec<_>) = log.iter().partition(|r| r.2);
    // Pass 1 reads whole pieces through the cache; only the failed pieces (1 MiB at
    // 1 MiB, which also holds 2000000) are re-read, and only directly.
    assert_eq!(
        cached.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        (0..4).map(|i| (i << 20, 1 << 20)).collect::<Vec<_>>()
    );
    assert!(
        direct.iter().any(|r| r.1 == 512),
        "no sector-sized direct read"
    );
    assert!(direct
        .iter()
        .all(|r| r.0 >= 1 << 20 && r.0 + r.1 <= 2 << 20));
}
