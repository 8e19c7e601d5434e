//! A large restore in passes: the image's chunks are taken a bounded number at a time.
//!
//! Why: a restore holds about 26 bytes per chunk while it checks and writes (where each
//! distinct chunk lies, its number, the write plan). That is 110 MiB for 1 TB of 256 KiB
//! file chunks but 430 MiB for 1 TB cut on the 64 KiB grid of an unknown filesystem, and
//! it grows with the disk (issue 20: under 200 MB for 1 TB). So the placed areas' chunks
//! are cut into passes of at most `RestoreOptions::pass_chunks` (4 Mi: about 110 MiB)
//! and each pass is checked with only its chunks' places held; the check of every pass
//! still ends before the first write. Each pass costs one more read of every index
//! file (twice: once to check, once to write; the last pass checked is written first,
//! with the index it already holds), which is seconds per pass against the hour that
//! writing a terabyte takes. A record used by two passes is read by both.

use super::error::Result;
use super::manifest_stream::Spilled;
use super::restore::Placed;
use std::ops::Range;

/// The chunks `chunks` (positions in the area's chunk list) of placed area `placed`
/// (its position among the placed areas).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct AreaPart {
    pub placed: usize,
    pub chunks: Range<usize>,
}

/// The default most chunks in one pass: 4 Mi, one pass for 1 TB of 256 KiB chunks.
pub const PASS_CHUNKS: usize = 4 << 20;

/// `IRONCLONE_RESTORE_PASS_CHUNKS` (for measurements and tests of the passes), else
/// `PASS_CHUNKS`.
pub(super) fn default_pass_chunks() -> usize {
    std::env::var("IRONCLONE_RESTORE_PASS_CHUNKS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(PASS_CHUNKS)
}

/// Cuts areas of `lens` chunks each (in the order they are placed) into passes of at
/// most `max` chunks (at least 1). Every chunk is in exactly one pass, in order; an
/// area without chunks joins the pass at hand, so each area is still named and no
/// pass is empty but an only one.
pub(super) fn split(lens: &[usize], max: usize) -> Vec<Vec<AreaPart>> {
    let max = max.max(1);
    let mut passes = vec![Vec::new()];
    let mut room = max;
    for (placed, &len) in lens.iter().enumerate() {
        let mut at = 0;
        // An area without chunks joins the pass at hand (no pass of nothing but it).
        let mut empty = len == 0;
        while at < len || empty {
            if room == 0 && !empty {
                passes.push(Vec::new());
                room = max;
            }
            let take = (len - at).min(room);
            if let Some(pass) = passes.last_mut() {
                pass.push(AreaPart {
                    placed,
                    chunks: at..at + take,
                });
            }
            at += take;
            room -= take;
            empty = false;
        }
    }
    passes
}

/// A restore's passes: each as `(area in the manifest, chunks)` for the index, and,
/// when there are several, as placed parts for the write phase.
pub(super) struct Passes<'a> {
    pub parts: Vec<Vec<(usize, Range<usize>)>>,
    split: Vec<Vec<Placed<'a>>>,
}

impl<'a> Passes<'a> {
    /// The passes over `placed` (areas `chosen` of `s`) of at most `max` chunks.
    pub fn new(
        s: &'a Spilled,
        placed: &[Placed<'a>],
        chosen: &[usize],
        max: usize,
    ) -> Result<Self> {
        let lens: Vec<usize> = placed.iter().map(|p| p.chunks.len()).collect();
        let passes = split(&lens, max);
        let mut parts = Vec::with_capacity(passes.len());
        let mut split = Vec::new();
        for pass in &passes {
            let mut areas = Vec::with_capacity(pass.len());
            let mut in_pass: Vec<Placed<'a>> = Vec::new();
            for p in pass {
                let (Some(&i), Some(whole)) = (chosen.get(p.placed), placed.get(p.placed)) else {
                    continue;
                };
                areas.push((i, p.chunks.clone()));
                if passes.len() > 1 {
                    let first = in_pass.last().map_or(0, |q| q.first + q.chunks.len());
                    in_pass.push(Placed::part(s, i, p.chunks.clone(), whole.t, first)?);
                }
            }
            parts.push(areas);
            split.push(in_pass);
        }
        Ok(Passes { parts, split })
    }

    /// Pass `n`'s placed parts: `whole` itself when there is one pass.
    pub fn placed<'b>(&'b self, n: usize, whole: &'b [Placed<'a>]) -> &'b [Placed<'a>] {
        match self.parts.len() {
            1 => whole,
            _ => self.split.get(n).map_or(&[], |v| v.as_slice()),
        }
    }

    /// Pass `n`'s bytes (its chunks' lengths).
    pub fn bytes(&self, n: usize, whole: &[Placed]) -> u64 {
        self.placed(n, whole).iter().map(|p| p.bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(placed: usize, chunks: Range<usize>) -> AreaPart {
        AreaPart { placed, chunks }
    }

    #[test]
    fn one_pass_when_everything_fits() {
        assert_eq!(
            split(&[3, 0, 4], 7),
            vec![vec![part(0, 0..3), part(1, 0..0), part(2, 0..4)]]
        );
        assert_eq!(split(&[], 7), vec![Vec::<AreaPart>::new()]);
    }

    #[test]
    fn areas_are_cut_where_a_pass_fills() {
        assert_eq!(
            split(&[5, 0, 6, 1], 4),
            vec![
                vec![part(0, 0..4)],
                vec![part(0, 4..5), part(1, 0..0), part(2, 0..3)],
                vec![part(2, 3..6), part(3, 0..1)],
            ]
        );
    }

    #[test]
    fn every_chunk_once_in_order_and_no_pass_too_large() {
        for max in [1, 2, 3, 5, 8, 13] {
            let lens = [7, 0, 1, 12, 0, 0, 5, 3];
            let passes = split(&lens, max);
            let mut seen = vec![Vec::new(); lens.len()];
            for pass in &passes {
                let n: usize = pass.iter().map(|p| p.chunks.len()).sum();
                assert!(n <= max && (n > 0 || passes.len() == 1), "{max}: {pass:?}");
                for p in pass {
                    seen[p.placed].extend(p.chunks.clone());
                }
            }
            for (i, &len) in lens.iter().enumerate() {
                assert_eq!(seen[i], (0..len).collect::<Vec<_>>(), "{max}: area {i}");
            }
            let total: usize = lens.iter().sum();
            assert_eq!(passes.len(), total.div_ceil(max), "{max}");
        }
        assert_eq!(split(&[2], 0), split(&[2], 1), "0 is taken as 1");
    }
}
