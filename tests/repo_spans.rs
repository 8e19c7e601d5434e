//! Restore spans: a frame whose piece held duplicates of earlier chunks and zero
//! chunks is written as one stretch, the duplicates copied in from the frames holding
//! them, and the target still gets every byte of the image.

mod repo_common;

use ironclone::device::{Access, BlockDevice, DeviceError, MemDevice};
use ironclone::progress::NoProgress;
use ironclone::repo::{self, BackupOptions, Repository, RestoreOptions};
use repo_common::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A memory disk that counts the bulk writes it takes.
struct Counting {
    inner: MemDevice,
    bulk: AtomicUsize,
    log: std::sync::Mutex<Vec<(u64, usize)>>,
}

impl BlockDevice for Counting {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.inner.write_at(offset, buf)
    }
    fn write_bulk_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.bulk.fetch_add(1, Ordering::Relaxed);
        self.log.lock().unwrap().push((offset, buf.len()));
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
    fn access(&self) -> Access {
        Access::ReadWrite
    }
    fn describe(&self) -> String {
        "counting".into()
    }
}

const GRID: usize = 64 << 10;

/// 32 MiB of random 64 KiB blocks where, in the second half of p2, every third block
/// repeats a block of the first half and every seventh is zeros: the first backup
/// stores the repeats once, in frames written before the ones they interrupt.
fn source() -> Vec<u8> {
    let size = 32 * MIB as usize;
    let mut data = vec![0u8; size];
    fill_random(&mut data, 11);
    let plan = plan_for(size as u64);
    let p2 = &plan.areas[2];
    let (s, n) = (p2.offset as usize, p2.len as usize);
    let blocks = n / GRID;
    for b in blocks / 2..blocks {
        let at = s + b * GRID;
        if b % 7 == 0 {
            data[at..at + GRID].fill(0);
        } else if b % 3 == 0 {
            let from = s + (b - blocks / 2 + 1) * GRID;
            data.copy_within(from..from + GRID, at);
        }
    }
    data
}

#[test]
fn duplicates_and_zeros_inside_a_frame_do_not_split_its_write() {
    let data = source();
    let plan = plan_for(data.len() as u64);
    let dir = tempfile::tempdir().unwrap();
    let r = Repository::init(&dir.path().join("repo"), 1 << 20, 8 << 20).unwrap();
    let src = MemDevice::from_vec(data.clone(), 512);
    repo::backup(&r, &src, &plan, &BackupOptions::new("x"), &NoProgress).unwrap();

    let m = r.load_manifest("x").unwrap();
    let p2 = m.areas.iter().find(|a| a.name == "p2").unwrap();
    let ids: Vec<_> = p2.chunks.iter().filter_map(|c| c.id).collect();
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert!(
        distinct.len() + 30 < ids.len(),
        "fixture: p2 should repeat many chunks ({} of {})",
        distinct.len(),
        ids.len()
    );

    for zeroed in [false, true] {
        let t = Counting {
            inner: MemDevice::new(data.len(), 512),
            bulk: AtomicUsize::new(0),
            log: Default::default(),
        };
        let opts = RestoreOptions {
            target_is_zeroed: zeroed,
            ..Default::default()
        };
        let rep = repo::restore(&r, "x", &t, &|a| Some(a.offset), &opts, &NoProgress).unwrap();
        assert_restored(&data, &t.inner.snapshot(), &plan);
        // The read-back hashed every chunk (zero ones only where they were written).
        let checked: u64 = m
            .areas
            .iter()
            .flat_map(|a| &a.chunks)
            .filter(|c| c.id.is_some() || !zeroed)
            .map(|c| u64::from(c.len))
            .sum();
        assert_eq!(rep.bytes_verified, checked);
        // Each frame (a piece of up to the 1 MiB chunk size here) is written whole:
        // one write per piece and extent edge, plus the zero runs where the target is
        // not known to be zero. Chunk by chunk, each repeat and each zero run split
        // its frame in two and was a write of its own: about 40 more.
        let writes = t.bulk.load(Ordering::Relaxed);
        let zero_runs = p2.chunks.iter().filter(|c| c.id.is_none()).count();
        let pieces: usize = plan
            .areas
            .iter()
            .flat_map(|a| &a.extents)
            .map(|e| e.len.div_ceil(MIB) as usize + 1)
            .sum();
        let limit = pieces + if zeroed { 0 } else { zero_runs };
        assert!(
            writes <= limit,
            "{writes} bulk writes (limit {limit}, zeroed target {zeroed}): {:?}",
            {
                let mut l = t.log.lock().unwrap().clone();
                l.sort();
                l
            }
        );
    }
}
