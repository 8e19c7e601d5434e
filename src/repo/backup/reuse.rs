//! Changed-block tracking's side of the backup. A tracker (thin_delta between two
//! thin LVM snapshots, src/schedule/thin_delta.rs) knows which byte ranges of the
//! source may differ from what the previous image read; everywhere else the bytes
//! are the same. A chunk outside those ranges that the previous image holds at the
//! same place with the same length has the same id, so it is taken from the previous
//! manifest without reading the source. Anything else is read as usual: chunks cut
//! differently this time (a file moved, the chunking changed), chunks of a pack that
//! is missing or marked by prune, and every chunk of a previous image that had
//! unreadable ranges (their chunks hold zeros, not the source's bytes).

use super::super::id::ChunkId;
use super::super::manifest::{AreaManifest, Manifest};
use super::super::plan::BackupPlan;
use super::known::KnownSet;
use crate::usedmap::ByteExtent;

/// What a changed-block tracker says: `changed` (source byte ranges, sorted by
/// offset, not overlapping) may differ from what `parent` read; every other byte of
/// the source is what it was when `parent` was made.
pub struct Unchanged<'a> {
    pub parent: &'a Manifest,
    pub changed: &'a [ByteExtent],
}

/// Answers `cut_reusing`'s question for each chunk, walking the previous image's
/// chunks of each area in order (the cut visits an area's chunks by offset).
pub(super) struct Matcher<'a> {
    /// Per plan area: the previous image's area of that name at the same place.
    areas: Vec<Option<&'a AreaManifest>>,
    /// Per plan area: its offset on the source and the next previous chunk to look at.
    offsets: Vec<u64>,
    at: Vec<usize>,
    changed: &'a [ByteExtent],
    known: &'a KnownSet,
}

impl<'a> Matcher<'a> {
    /// `chunk_size` is this backup's; a previous image cut with another one is not
    /// used.
    pub fn new(
        u: &Unchanged<'a>,
        plan: &BackupPlan,
        chunk_size: u32,
        known: &'a KnownSet,
    ) -> Matcher<'a> {
        let usable = u.parent.chunk_size == chunk_size
            && u.parent.areas.iter().all(|a| a.unreadable.is_empty());
        let areas = plan
            .areas
            .iter()
            .map(|a| {
                u.parent
                    .areas
                    .iter()
                    .find(|p| p.name == a.name && p.offset == a.offset)
                    .filter(|_| usable)
            })
            .collect();
        Matcher {
            areas,
            offsets: plan.areas.iter().map(|a| a.offset).collect(),
            at: vec![0; plan.areas.len()],
            changed: u.changed,
            known,
        }
    }

    /// `Some(id)` when the chunk at `offset` (area-relative) of `len` bytes in plan
    /// area `area` is unchanged and the previous image has it (`None` inside: zeros).
    pub fn lookup(&mut self, area: usize, offset: u64, len: u32) -> Option<Option<ChunkId>> {
        let prev = (*self.areas.get(area)?)?;
        let start = self.offsets.get(area)?.checked_add(offset)?;
        let end = start.checked_add(u64::from(len))?;
        let i = self.changed.partition_point(|e| e.end() <= start);
        if self.changed.get(i).is_some_and(|e| e.offset < end) {
            return None;
        }
        let at = self.at.get_mut(area)?;
        while prev.chunks.get(*at).is_some_and(|c| c.offset < offset) {
            *at += 1;
        }
        let c = prev.chunks.get(*at)?;
        if c.offset != offset || c.len != len {
            return None;
        }
        match c.id {
            // A known set that cannot be read says "not stored": the chunk is read
            // again, never assumed.
            Some(id) if !self.known.contains(&id).unwrap_or(false) => None,
            id => Some(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::manifest::{ChunkRef, ImageStats};
    use crate::repo::plan::{AreaKind, PlannedArea, SourceInfo};

    fn id(b: u8) -> ChunkId {
        ChunkId([b; 32])
    }

    fn area(name: &str, offset: u64, chunks: Vec<ChunkRef>) -> AreaManifest {
        AreaManifest {
            name: name.into(),
            kind: AreaKind::Partition,
            offset,
            len: 1 << 30,
            extents: Vec::new(),
            meta: serde_json::Value::Null,
            chunks,
            unreadable: Vec::new(),
            damage: None,
        }
    }

    fn manifest(areas: Vec<AreaManifest>) -> Manifest {
        Manifest {
            version: 1,
            name: "prev".into(),
            created_unix: 0,
            source: SourceInfo::default(),
            chunk_size: 1 << 20,
            areas,
            stats: ImageStats::default(),
            root: String::new(),
        }
    }

    fn plan_area(name: &str, offset: u64) -> PlannedArea {
        PlannedArea {
            name: name.into(),
            kind: AreaKind::Partition,
            offset,
            len: 1 << 30,
            extents: Vec::new(),
            meta: serde_json::Value::Null,
            file_runs: Vec::new(),
        }
    }

    fn c(offset: u64, len: u32, b: Option<u8>) -> ChunkRef {
        ChunkRef {
            offset,
            len,
            id: b.map(id),
        }
    }

    #[test]
    fn only_unchanged_chunks_cut_the_same_way_are_reused() {
        const M: u64 = 1 << 20;
        let prev = manifest(vec![area(
            "p1",
            M,
            vec![
                c(0, 4096, Some(1)),
                c(4096, 4096, None),
                c(8192, 4096, Some(2)),
                c(12288, 8192, Some(3)),
                c(20480, 4096, Some(4)),
            ],
        )]);
        // Source bytes M+8192..M+8193 changed.
        let changed = [ByteExtent {
            offset: M + 8192,
            len: 1,
        }];
        let plan = BackupPlan {
            source: SourceInfo::default(),
            areas: vec![plan_area("p1", M), plan_area("p2", 2 * M)],
        };
        // Chunk 4's pack is gone from the repository.
        let known = KnownSet::new([1, 2, 3].into_iter().map(id).collect());
        let u = Unchanged {
            parent: &prev,
            changed: &changed,
        };
        let mut m = Matcher::new(&u, &plan, 1 << 20, &known);
        assert_eq!(m.lookup(0, 0, 4096), Some(Some(id(1))));
        assert_eq!(m.lookup(0, 4096, 4096), Some(None), "zeros stay zeros");
        assert_eq!(m.lookup(0, 8192, 4096), None, "changed");
        assert_eq!(m.lookup(0, 12288, 4096), None, "cut differently");
        assert_eq!(m.lookup(0, 16384, 4096), None, "no chunk starts there");
        assert_eq!(m.lookup(0, 20480, 4096), None, "pack missing");
        assert_eq!(m.lookup(0, 1 << 20, 4096), None, "past the previous chunks");
        assert_eq!(m.lookup(1, 0, 4096), None, "no such area before");
        // Another chunk size, or damage in the previous image: nothing is reused.
        let mut m = Matcher::new(&u, &plan, 1 << 19, &known);
        assert_eq!(m.lookup(0, 0, 4096), None);
        let mut damaged = prev.clone();
        damaged.areas[0].unreadable.push(ByteExtent {
            offset: 1 << 29,
            len: 512,
        });
        let u = Unchanged {
            parent: &damaged,
            changed: &[],
        };
        let mut m = Matcher::new(&u, &plan, 1 << 20, &known);
        assert_eq!(m.lookup(0, 0, 4096), None);
    }

    #[test]
    fn an_incremental_reads_only_the_changed_ranges_and_restores_equal() {
        use crate::device::{BlockDevice, MemDevice};
        use crate::progress::NoProgress;
        use crate::repo::{self, BackupOptions, Repository, RestoreOptions};
        const M: usize = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let r = Repository::init(dir.path(), 1 << 20, 8 << 20).unwrap();
        let src = crate::repo::prune_tests::data(7, 8 * M);
        let plan = |size: u64| {
            BackupPlan::whole_device(SourceInfo {
                path: "mem".into(),
                model: None,
                serial: None,
                size,
                sector_size: 512,
            })
        };
        let first = {
            let dev = MemDevice::from_vec(src.clone(), 512);
            repo::backup(
                &r,
                &dev,
                &plan(dev.size()),
                &BackupOptions::new("a"),
                &NoProgress,
            )
            .unwrap();
            // The backup returns its manifest without the chunk lists.
            r.load_manifest("a").unwrap()
        };
        // A day of use: 4 KiB rewritten at 3 MiB + 100, 64 KiB discarded at 5 MiB;
        // the tracker reports the 64 KiB blocks holding them.
        let mut day = src.clone();
        day[3 * M + 100..3 * M + 100 + 4096]
            .copy_from_slice(&crate::repo::prune_tests::data(9, 4096));
        day[5 * M..5 * M + 65536].fill(0);
        let changed = [
            ByteExtent {
                offset: 3 * M as u64,
                len: 65536,
            },
            ByteExtent {
                offset: 5 * M as u64,
                len: 65536,
            },
        ];
        let incremental = |name: &str, changed: &[ByteExtent]| {
            let dev = MemDevice::from_vec(day.clone(), 512);
            let u = Unchanged {
                parent: &first,
                changed,
            };
            let m = repo::backup_unchanged(
                &r,
                &dev,
                &plan(dev.size()),
                &BackupOptions::new(name),
                Some(&u),
                &NoProgress,
            )
            .unwrap();
            let out = MemDevice::new(8 * M, 512);
            repo::restore(
                &r,
                name,
                &out,
                &|a| Some(a.offset),
                &RestoreOptions::default(),
                &NoProgress,
            )
            .unwrap();
            (m, out.into_vec())
        };
        let (m, restored) = incremental("b", &changed);
        assert!(
            restored == day,
            "the incremental restores the changed source"
        );
        let s = &m.stats;
        assert_eq!(s.bytes_read + s.unchanged_bytes, 8 * M as u64);
        assert!(s.bytes_read <= 2 << 20, "read {} bytes", s.bytes_read);
        assert!(s.new_bytes > 0 && s.new_bytes <= s.bytes_read);
        let v = repo::verify(&r, None, &NoProgress).unwrap();
        assert!(v.ok(), "{:?}", v.problems);
        // A tracker that missed the writes would make an image of the old bytes: the
        // restore comparison above is what would catch it.
        let (_, stale) = incremental("c", &[]);
        assert!(stale == src && stale != day);
    }
}
