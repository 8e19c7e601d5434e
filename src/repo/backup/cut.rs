//! Where chunks begin and end, decided from positions alone, before anything is read.
//!
//! Inside a file's data (the plan's `file_runs`) a chunk boundary falls at every
//! multiple of `chunking.file` bytes of the file's own offsets, and where the run
//! begins or ends; so a file yields the same chunks wherever it lies on disk, on
//! another machine or after a defragmenter. Everywhere else (metadata, directories,
//! the journal, unknown filesystems) boundaries fall at multiples of `chunking.other`
//! from the area start: that data changes in place, so a fixed grid keeps what did not
//! change, and a small one stores little for each changed block. Extent edges are
//! boundaries too. Content-defined boundaries (a rolling hash over every byte) would
//! find shifted data inside files as well; on block devices files start on block
//! boundaries and are rewritten whole when edited, and the hash would cost a pass over
//! every byte (docs/FORMAT.md, "Chunking", has the measurements).
//!
//! Chunks are then grouped into *pieces* of whole chunks, contiguous on disk and at
//! most one frame long: the unit the reader reads and a worker compresses.

use super::super::config::Chunking;
use super::super::id::ChunkId;
use super::super::plan::BackupPlan;
use crate::usedmap::FileRun;

/// A piece of an area to read: whole chunks, contiguous, at most one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
///
/// 32 bytes: a 1 TB source is 262 Ki pieces of 4 MiB, held for the whole backup.
pub(super) struct Piece {
    /// Its area's index in the plan.
    pub area: u32,
    pub len: u32,
    pub offset: u64,
    /// Index of its first chunk in the image (the chunk list's record).
    pub first: usize,
    pub count: u32,
    /// Where the walk over the area's file runs stood at `offset`: its chunk lengths
    /// are found again from here (`Cut::lens`).
    pub run: u32,
}

/// The chunks of a backup. Their lengths are not kept (4 bytes a chunk, 64 MiB for
/// 1 TB of 64 KiB chunks, issue 20): a piece's are found again from its offset when it
/// is hashed (`lens`), and a reused chunk carries its own.
pub(super) struct Cut {
    pub pieces: Vec<Piece>,
    /// Chunks in all, in plan order: those of the pieces and the reused ones.
    pub count: usize,
    /// Chunks not read: taken from the previous image (changed-block tracking). They
    /// are counted in `count` but in no piece; each went to the cut's `keep` as it
    /// was met (a list of them was 72 bytes a chunk: 288 MiB for a 1 TB thin LV of
    /// 256 KiB chunks that barely changed, issue 20).
    pub reused: usize,
    /// Their bytes.
    pub reused_bytes: u64,
    /// Chunks of each plan area, read or reused (each area's are one range of the
    /// image's list).
    pub per_area: Vec<usize>,
    /// The chunking the cut used (the repository's, clamped to the frame).
    chunking: Chunking,
}

/// A chunk taken as it is in the previous image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Reused {
    pub area: usize,
    pub offset: u64,
    pub len: u32,
    /// Its index in the image.
    pub index: usize,
    /// `None`: all zeros.
    pub id: Option<ChunkId>,
}

impl Cut {
    /// The chunk lengths of `p`, a piece of this cut of `plan`: the same walk as the
    /// cut's, from where it stood at the piece's start. A piece of another plan gives
    /// lengths that do not add up to it, which the worker refuses (hash.rs).
    pub fn lens(&self, plan: &BackupPlan, p: &Piece) -> Vec<u32> {
        let runs = plan
            .areas
            .get(p.area as usize)
            .map_or(&[][..], |a| &a.file_runs[..]);
        let mut walk = Walk {
            runs,
            ri: p.run as usize,
            c: self.chunking,
        };
        let end = p.offset.saturating_add(u64::from(p.len));
        let mut pos = p.offset;
        let mut out = Vec::with_capacity(p.count as usize);
        while pos < end && out.len() < p.count as usize {
            let stop = walk.next(pos, end);
            out.push((stop - pos) as u32);
            pos = stop;
        }
        out
    }
}

/// Chunk boundaries along an area, walking its file runs forward (extents come in
/// order, so a run behind one position is behind every later one).
struct Walk<'a> {
    runs: &'a [FileRun],
    /// The first run not yet known to end at or before the position.
    ri: usize,
    c: Chunking,
}

impl Walk<'_> {
    /// The next boundary after `pos`, before or at `end` (the extent's end).
    fn next(&mut self, pos: u64, end: u64) -> u64 {
        while self
            .runs
            .get(self.ri)
            .is_some_and(|r| r.offset.saturating_add(r.len) <= pos)
        {
            self.ri += 1;
        }
        let run = self.runs.get(self.ri).filter(|r| r.offset <= pos);
        let next_run = self
            .runs
            .get(self.ri)
            .map(|r| r.offset)
            .filter(|&o| o > pos);
        next_cut(pos, end, run, next_run, self.c)
    }
}

/// The next boundary after `pos` (< `end`), given the run (if any) holding `pos` and
/// the start of the next run.
fn next_cut(pos: u64, end: u64, run: Option<&FileRun>, next_run: Option<u64>, c: Chunking) -> u64 {
    let stop = match run {
        Some(r) => {
            let file = u64::from(c.file);
            let logical = r.logical.saturating_add(pos - r.offset);
            let to_grid = file - logical % file;
            pos.saturating_add(to_grid)
                .min(r.offset.saturating_add(r.len))
        }
        None => {
            let other = u64::from(c.other);
            let grid = (pos / other + 1).saturating_mul(other);
            grid.min(next_run.unwrap_or(u64::MAX))
        }
    };
    stop.min(end).max(pos + 1)
}

/// Cuts every extent of `plan` into chunks and groups them into pieces of at most
/// `frame` bytes. Runs must be sorted and non-overlapping (overlapping ones are
/// skipped: they only steer deduplication).
#[cfg(test)]
pub(super) fn cut(plan: &BackupPlan, c: Chunking, frame: u32) -> Cut {
    cut_reusing(plan, (c, frame, frame), &mut |_, _, _| None, &mut |_| {})
}

/// `cut`, asking `reuse(area, offset, len)` about each chunk: `Some(id)` takes the
/// chunk from the previous image unread (it ends the piece before it), and `keep`
/// gets it with its place in the image's list. `sizes` are the
/// chunking, the frame and the piece limit: pieces hold at most `piece_max` bytes
/// (`bufpool::piece_bytes`), or one chunk when it is longer; chunk lengths depend on
/// the chunking and the frame (the repository's) alone, so that machines with more or
/// fewer cores cut the same chunks.
pub(super) fn cut_reusing(
    plan: &BackupPlan,
    (c, frame, piece_max): (Chunking, u32, u32),
    reuse: &mut dyn FnMut(usize, u64, u32) -> Option<Option<ChunkId>>,
    keep: &mut dyn FnMut(Reused),
) -> Cut {
    let piece_max = piece_max.min(frame);
    let c = Chunking {
        file: c.file.clamp(512, frame.max(512)),
        other: c.other.clamp(512, frame.max(512)),
    };
    let mut out = Cut {
        pieces: Vec::new(),
        count: 0,
        reused: 0,
        reused_bytes: 0,
        per_area: vec![0; plan.areas.len()],
        chunking: c,
    };
    for (ai, a) in plan.areas.iter().enumerate() {
        // A plan cannot hold 2^32 areas or runs (each is far larger than a byte), so
        // these never saturate.
        let area = u32::try_from(ai).unwrap_or(u32::MAX);
        let first = out.count;
        let mut walk = Walk {
            runs: &a.file_runs,
            ri: 0,
            c,
        };
        for e in &a.extents {
            let end = e.offset.saturating_add(e.len);
            let mut pos = e.offset;
            let mut piece: Option<Piece> = None;
            while pos < end {
                let run = u32::try_from(walk.ri).unwrap_or(u32::MAX);
                let stop = walk.next(pos, end);
                let len = (stop - pos) as u32;
                if let Some(id) = reuse(ai, pos, len) {
                    out.pieces.extend(piece.take());
                    keep(Reused {
                        area: ai,
                        offset: pos,
                        len,
                        index: out.count,
                        id,
                    });
                    out.reused += 1;
                    out.reused_bytes += u64::from(len);
                    out.count += 1;
                    pos = stop;
                    continue;
                }
                let fits =
                    piece.is_some_and(|p| p.len.checked_add(len).is_some_and(|n| n <= piece_max));
                match piece.as_mut() {
                    Some(p) if fits => {
                        p.len += len;
                        p.count += 1;
                    }
                    _ => {
                        out.pieces.extend(piece.take());
                        piece = Some(Piece {
                            area,
                            offset: pos,
                            len,
                            first: out.count,
                            count: 1,
                            run,
                        });
                    }
                }
                out.count += 1;
                pos = stop;
            }
            out.pieces.extend(piece);
        }
        if let Some(n) = out.per_area.get_mut(ai) {
            *n = out.count - first;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::plan::{AreaKind, PlannedArea, SourceInfo};
    use crate::usedmap::ByteExtent;

    const K: u64 = 1024;

    fn plan(extents: Vec<(u64, u64)>, runs: Vec<(u64, u64, u64)>) -> BackupPlan {
        BackupPlan {
            source: SourceInfo::default(),
            areas: vec![PlannedArea {
                name: "p1".into(),
                kind: AreaKind::Partition,
                offset: 1 << 20,
                len: 1 << 30,
                extents: extents
                    .into_iter()
                    .map(|(offset, len)| ByteExtent { offset, len })
                    .collect(),
                meta: serde_json::Value::Null,
                file_runs: runs
                    .into_iter()
                    .map(|(offset, len, logical)| FileRun {
                        offset,
                        len,
                        logical,
                    })
                    .collect(),
            }],
        }
    }

    fn chunks(p: &BackupPlan, file: u32, other: u32, frame: u32) -> Vec<(u64, u32)> {
        walked(p, &cut(p, Chunking { file, other }, frame), frame)
    }

    /// Every chunk of `cut` as (offset, len), its lengths found again piece by piece.
    fn walked(p: &BackupPlan, cut: &Cut, frame: u32) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        for piece in &cut.pieces {
            let mut at = piece.offset;
            for l in cut.lens(p, piece) {
                out.push((at, l));
                at += u64::from(l);
            }
            assert_eq!(at, piece.offset + u64::from(piece.len));
            assert!(piece.len <= frame);
        }
        out
    }

    #[test]
    fn files_are_cut_on_their_own_offsets_and_the_rest_on_the_area_grid() {
        // Metadata 0..100K, a file of 300K at 100K, a file's second half (from its byte
        // 128K) at 400K, then 30K more metadata.
        let p = plan(
            vec![(0, 530 * K)],
            vec![(100 * K, 300 * K, 0), (400 * K, 100 * K, 128 * K)],
        );
        let c = chunks(&p, 128 << 10, 64 << 10, 8 << 20);
        assert_eq!(
            c,
            vec![
                (0, 64 << 10),
                (64 * K, 36 << 10),
                (100 * K, 128 << 10),
                (228 * K, 128 << 10),
                (356 * K, 44 << 10),
                (400 * K, 100 << 10),
                (500 * K, 12 << 10),
                (512 * K, 18 << 10),
            ]
        );
        // Pieces of one chunk each, and the area as two extents split inside a run:
        // each piece's lengths, found again from where it starts, are the same.
        let mut split = p.clone();
        split.areas[0].extents = vec![
            ByteExtent {
                offset: 0,
                len: 150 * K,
            },
            ByteExtent {
                offset: 150 * K,
                len: 380 * K,
            },
        ];
        let sizes = (
            Chunking {
                file: 128 << 10,
                other: 64 << 10,
            },
            8 << 20,
            64 << 10,
        );
        let one = cut_reusing(&split, sizes, &mut |_, _, _| None, &mut |_| {});
        let mut expect = c.clone();
        // the extent edge at 150K is a boundary too
        expect.splice(2..3, [(100 * K, 50 << 10), (150 * K, 78 << 10)]);
        assert_eq!(walked(&split, &one, 8 << 20), expect);
        assert_eq!(one.count, expect.len());
    }

    #[test]
    fn a_piece_is_32_bytes() {
        // 262 Ki of them for 1 TB of 4 MiB pieces, held for the whole backup.
        assert_eq!(std::mem::size_of::<Piece>(), 32);
    }

    #[test]
    fn the_same_file_elsewhere_gives_the_same_chunk_lengths() {
        let a = plan(vec![(0, 4 << 20)], vec![(12 * K, 1000 * K, 0)]);
        let b = plan(vec![(0, 4 << 20)], vec![(2052 * K, 1000 * K, 0)]);
        let lens = |p: &BackupPlan, at: u64| -> Vec<u32> {
            chunks(p, 256 << 10, 64 << 10, 8 << 20)
                .into_iter()
                .filter(|(o, _)| *o >= at && *o < at + 1000 * K)
                .map(|(_, l)| l)
                .collect()
        };
        assert_eq!(lens(&a, 12 * K), lens(&b, 2052 * K));
        assert_eq!(
            lens(&a, 12 * K),
            vec![256 << 10, 256 << 10, 256 << 10, 232 << 10]
        );
    }

    #[test]
    fn a_smaller_piece_limit_groups_the_same_chunks_into_smaller_pieces() {
        // files of 3 MiB and 5 MiB between metadata: 256 KiB file chunks, 64 KiB others
        let p = plan(
            vec![(0, 40 << 20)],
            vec![(1 << 20, 3 << 20, 0), (9 << 20, 5 << 20, 0)],
        );
        let c = Chunking {
            file: 256 << 10,
            other: 64 << 10,
        };
        let whole = cut_reusing(&p, (c, 8 << 20, 8 << 20), &mut |_, _, _| None, &mut |_| {});
        let small = cut_reusing(&p, (c, 8 << 20, 4 << 20), &mut |_, _, _| None, &mut |_| {});
        // the same chunks, so the same ids and deduplication whatever the cores
        let lens = |c: &Cut| -> Vec<u32> { c.pieces.iter().flat_map(|x| c.lens(&p, x)).collect() };
        assert_eq!(lens(&whole), lens(&small));
        assert_eq!(whole.count, small.count);
        assert!(small.pieces.iter().all(|x| x.len <= 4 << 20));
        assert!(whole.pieces.iter().any(|x| x.len > 4 << 20));
        assert_eq!(small.pieces.len(), 10);
        let covered = |c: &Cut| c.pieces.iter().map(|x| u64::from(x.len)).sum::<u64>();
        assert_eq!(covered(&whole), covered(&small));
        // a limit under the longest chunk leaves one chunk per piece, never a split one
        let one = cut_reusing(
            &p,
            (c, 8 << 20, 100 << 10),
            &mut |_, _, _| None,
            &mut |_| {},
        );
        assert_eq!(lens(&one), lens(&whole));
        assert!(one
            .pieces
            .iter()
            .all(|x| x.count == 1 || x.len <= 100 << 10));
    }

    #[test]
    fn reused_chunks_are_in_no_piece_and_split_the_pieces() {
        let p = plan(vec![(0, 4 << 20)], vec![]);
        let c = Chunking {
            file: 1 << 20,
            other: 1 << 20,
        };
        // The second chunk is unchanged (a zero one), the others are read.
        let mut kept = Vec::new();
        let cut = cut_reusing(
            &p,
            (c, 4 << 20, 4 << 20),
            &mut |a, off, len| {
                assert_eq!((a, len), (0, 1 << 20));
                (off == 1 << 20).then_some(None)
            },
            &mut |r| kept.push(r),
        );
        let pieces: Vec<(u64, u32, usize, u32)> = cut
            .pieces
            .iter()
            .map(|p| (p.offset, p.len, p.first, p.count))
            .collect();
        assert_eq!(pieces, vec![(0, 1 << 20, 0, 1), (2 << 20, 2 << 20, 2, 2)]);
        assert_eq!(
            kept,
            vec![Reused {
                area: 0,
                offset: 1 << 20,
                len: 1 << 20,
                index: 1,
                id: None
            }]
        );
        assert_eq!((cut.reused, cut.reused_bytes), (1, 1 << 20));
        assert_eq!(cut.per_area, vec![4]);
        assert_eq!(cut.count, 4);
    }

    #[test]
    fn each_areas_chunks_are_counted_apart() {
        let mut p = plan(vec![(0, 3 << 20)], vec![]);
        let mut second = p.areas[0].clone();
        second.extents = vec![ByteExtent {
            offset: 0,
            len: 2 << 20,
        }];
        let mut third = second.clone();
        third.extents[0].len = 5 << 20;
        p.areas.extend([second, third]);
        let c = Chunking {
            file: 1 << 20,
            other: 1 << 20,
        };
        let cut = cut_reusing(
            &p,
            (c, 4 << 20, 4 << 20),
            &mut |a, off, _| (a == 1 && off == 0).then_some(None),
            &mut |_| {},
        );
        assert_eq!(cut.per_area, vec![3, 2, 5]);
        assert_eq!((cut.count, cut.reused), (10, 1));
    }

    #[test]
    fn pieces_hold_whole_chunks_up_to_a_frame_and_stop_at_extent_edges() {
        let p = plan(vec![(0, 3 << 20), (4 << 20, 100 * K)], vec![]);
        let cut = cut(
            &p,
            Chunking {
                file: 1 << 20,
                other: 1 << 20,
            },
            2 << 20,
        );
        let pieces: Vec<(u64, u32, u32)> = cut
            .pieces
            .iter()
            .map(|p| (p.offset, p.len, p.count))
            .collect();
        assert_eq!(
            pieces,
            vec![
                (0, 2 << 20, 2),
                (2 << 20, 1 << 20, 1),
                (4 << 20, 100 << 10, 1)
            ]
        );
        assert_eq!(cut.count, 4);
    }
}
