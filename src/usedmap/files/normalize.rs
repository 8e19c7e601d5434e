//! Putting walked runs into the form the chunker relies on: sorted by offset, no byte
//! claimed twice, inside the used map, and contiguous pieces of one file joined.

use super::FileRun;
use crate::usedmap::ByteExtent;

/// `runs` as (file id, run), in any order, to sorted non-overlapping runs inside `used`
/// (sorted, non-overlapping). A byte two files claim (a damaged filesystem) stays with
/// the run that starts first.
pub(super) fn normalize(mut runs: Vec<(u64, FileRun)>, used: &[ByteExtent]) -> Vec<FileRun> {
    runs.sort_unstable_by_key(|(_, r)| (r.offset, r.logical));
    let mut out = Merger::default();
    let mut claimed = 0u64;
    let mut first_extent = 0usize;
    for (file, r) in runs {
        let Some(r) = from(r, claimed) else {
            continue;
        };
        claimed = r.end();
        while used.get(first_extent).is_some_and(|e| e.end() <= r.offset) {
            first_extent += 1;
        }
        for e in used.get(first_extent..).unwrap_or_default() {
            if e.offset >= r.end() {
                break;
            }
            let start = e.offset.max(r.offset);
            if let Some(piece) = from(r, start) {
                let len = piece.len.min(e.end().saturating_sub(start));
                out.push(file, FileRun { len, ..piece });
            }
        }
    }
    out.runs
}

/// The part of `r` from partition byte `at` on, if any.
fn from(r: FileRun, at: u64) -> Option<FileRun> {
    let skip = at.saturating_sub(r.offset);
    (skip < r.len).then(|| FileRun {
        offset: r.offset + skip,
        len: r.len - skip,
        logical: r.logical + skip,
    })
}

#[derive(Default)]
struct Merger {
    runs: Vec<FileRun>,
    last_file: Option<u64>,
}

impl Merger {
    fn push(&mut self, file: u64, r: FileRun) {
        if let Some(last) = self.runs.last_mut() {
            if self.last_file == Some(file)
                && last.end() == r.offset
                && last.logical.checked_add(last.len) == Some(r.logical)
            {
                last.len += r.len;
                return;
            }
        }
        self.runs.push(r);
        self.last_file = Some(file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(offset: u64, len: u64, logical: u64) -> FileRun {
        FileRun {
            offset,
            len,
            logical,
        }
    }

    fn ext(offset: u64, len: u64) -> ByteExtent {
        ByteExtent { offset, len }
    }

    #[test]
    fn sorts_merges_one_files_pieces_and_keeps_files_apart() {
        let runs = vec![
            (1, run(8192, 4096, 4096)),
            (1, run(4096, 4096, 0)),
            // Contiguous on disk and in the file, but another file: kept apart.
            (2, run(12288, 4096, 8192)),
            // Same file, contiguous on disk, not in the file: kept apart.
            (1, run(16384, 4096, 0)),
        ];
        let out = normalize(runs, &[ext(0, 1 << 20)]);
        assert_eq!(
            out,
            vec![
                run(4096, 8192, 0),
                run(12288, 4096, 8192),
                run(16384, 4096, 0)
            ]
        );
    }

    #[test]
    fn clips_to_the_used_extents_and_drops_double_claims() {
        let runs = vec![
            // Spans a free gap at 8192..12288.
            (1, run(4096, 16384, 0)),
            // Claims bytes file 1 already has, then runs past the last extent.
            (2, run(16384, 24576, 100)),
        ];
        let out = normalize(runs, &[ext(0, 8192), ext(12288, 20480)]);
        assert_eq!(
            out,
            vec![
                run(4096, 4096, 0),
                run(12288, 8192, 8192),
                run(20480, 12288, 4196)
            ]
        );
    }
}
