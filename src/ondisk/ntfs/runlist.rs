//! Mapping pairs (data runs) of a non-resident attribute, decoded into extents.
//!
//! Each run is a header byte (low nibble: size of the length, high nibble: size of the
//! LCN delta), an unsigned length and a signed delta from the previous run's LCN; an
//! offset size of 0 is a sparse run. Lengths and deltas are checked so that a corrupt
//! list cannot overflow or point before cluster 0; `Strict` also refuses runs past the
//! volume's last cluster and VCNs beyond its cluster count, while `Lenient` (rescue,
//! naming the owners of bad bytes) keeps such runs: they simply match no bad range.
//! A list holds at most one run per two bytes of its record, so it is bounded anyway.

use super::{DecodeError, Mode, RunFault};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub vcn: u64,
    /// `None` for a sparse run (reads as zeros, occupies no clusters).
    pub lcn: Option<u64>,
    pub length: u64,
}

/// Where a run list sits, for error messages: its MFT record and byte offset there.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    pub record: u64,
    pub at: usize,
}

/// Decodes `pairs` starting at `lowest_vcn`. In `Strict` mode `total_clusters` bounds
/// every LCN and the VCN span.
pub fn decode(
    pairs: &[u8],
    lowest_vcn: u64,
    total_clusters: u64,
    mode: Mode,
    origin: Origin,
) -> Result<Vec<Run>, DecodeError> {
    let Origin { record, at } = origin;
    let limit = match mode {
        Mode::Strict => total_clusters,
        Mode::Lenient => u64::MAX,
    };
    let bad = |pos: usize, fault: RunFault| DecodeError::Runlist {
        record,
        offset: at.saturating_add(pos),
        fault,
    };
    let mut runs = Vec::new();
    let mut pos = 0usize;
    let mut vcn = lowest_vcn;
    let mut lcn: i64 = 0;
    loop {
        let Some(&h) = pairs.get(pos) else {
            return Err(bad(pos, RunFault::NoTerminator));
        };
        if h == 0 {
            return Ok(runs);
        }
        let len_size = usize::from(h & 0x0F);
        let off_size = usize::from(h >> 4);
        if len_size == 0 || len_size > 8 || off_size > 8 {
            return Err(bad(pos, RunFault::Header { header: h }));
        }
        let length = le_var(pairs, pos + 1, len_size)
            .ok_or(bad(pos, RunFault::Truncated { field: "length" }))?;
        if length == 0 || length > limit {
            return Err(bad(
                pos,
                RunFault::Length {
                    length,
                    total_clusters,
                },
            ));
        }
        let start = pos + 1 + len_size;
        let raw_delta = le_var(pairs, start, off_size)
            .ok_or(bad(pos, RunFault::Truncated { field: "offset" }))?;
        let run_lcn = if off_size == 0 {
            None
        } else {
            // Sign-extend from the top bit of the last byte.
            let shift = 64 - 8 * off_size as u32;
            let delta = ((raw_delta << shift) as i64) >> shift;
            lcn = lcn
                .checked_add(delta)
                .ok_or(bad(pos, RunFault::DeltaOverflow { delta }))?;
            let l = u64::try_from(lcn).map_err(|_| bad(pos, RunFault::NegativeLcn { lcn }))?;
            if !matches!(l.checked_add(length), Some(e) if e <= limit) {
                return Err(bad(
                    pos,
                    RunFault::PastVolume {
                        lcn: l,
                        length,
                        total_clusters,
                    },
                ));
            }
            Some(l)
        };
        runs.push(Run {
            vcn,
            lcn: run_lcn,
            length,
        });
        vcn = vcn
            .checked_add(length)
            .filter(|v| *v <= limit)
            .ok_or(bad(pos, RunFault::VcnOverflow))?;
        pos = start + off_size;
    }
}

/// The `n`-byte little-endian unsigned number at `at` (run fields are 0 to 8 bytes).
fn le_var(b: &[u8], at: usize, n: usize) -> Option<u64> {
    let bytes = b.get(at..at.checked_add(n)?)?;
    Some(
        bytes
            .iter()
            .rev()
            .fold(0u64, |v, &x| (v << 8) | u64::from(x)),
    )
}

/// The LCN holding `vcn`, if a non-sparse run covers it.
#[cfg(test)]
pub fn lcn_of(runs: &[Run], vcn: u64) -> Option<u64> {
    runs.iter().find_map(|r| {
        let d = vcn.checked_sub(r.vcn)?;
        (d < r.length).then_some(r.lcn?.checked_add(d)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: Origin = Origin { record: 0, at: 0 };

    fn strict(pairs: &[u8], total: u64) -> Result<Vec<Run>, DecodeError> {
        decode(pairs, 0, total, Mode::Strict, O)
    }

    #[test]
    fn decodes_signed_deltas_and_sparse() {
        // 0x10 clusters at LCN 0x100, 4 sparse, 8 at LCN 0x100-0x80 = 0x80.
        let pairs = [0x21, 0x10, 0x00, 0x01, 0x01, 0x04, 0x11, 0x08, 0x80, 0x00];
        let r = strict(&pairs, 1000).unwrap();
        assert_eq!(
            r,
            vec![
                Run {
                    vcn: 0,
                    lcn: Some(0x100),
                    length: 0x10
                },
                Run {
                    vcn: 0x10,
                    lcn: None,
                    length: 4
                },
                Run {
                    vcn: 0x14,
                    lcn: Some(0x80),
                    length: 8
                },
            ]
        );
        assert_eq!(lcn_of(&r, 0x15), Some(0x81));
        assert_eq!(lcn_of(&r, 0x11), None);
    }

    #[test]
    fn rejects_bad_runs() {
        // Negative LCN, named at the run's byte.
        assert!(matches!(
            decode(
                &[0x11, 0x01, 0xFF, 0x00],
                0,
                1000,
                Mode::Strict,
                Origin {
                    record: 7,
                    at: 0x40
                }
            ),
            Err(DecodeError::Runlist {
                record: 7,
                offset: 0x40,
                fault: RunFault::NegativeLcn { lcn: -1 }
            })
        ));
        // Past the end.
        assert!(strict(&[0x21, 0x10, 0xF0, 0x03, 0x00], 1000).is_err());
        // Absurd length.
        assert!(strict(
            &[0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x01, 0x00],
            1000
        )
        .is_err());
        // No terminator.
        assert!(strict(&[0x11, 0x01, 0x01], 1000).is_err());
        // Zero length.
        assert!(strict(&[0x11, 0x00, 0x01, 0x00], 1000).is_err());
        // Bad nibble sizes.
        assert!(strict(&[0x19, 0x00], 1000).is_err());
        // Overflowing delta chain.
        let mut p = vec![];
        for _ in 0..4 {
            p.extend_from_slice(&[0x81, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
        }
        p.push(0);
        assert!(strict(&p, u64::MAX).is_err());
        // Too many VCNs.
        assert!(strict(&[0x11, 0x08, 0x01, 0x11, 0x08, 0x01, 0x00], 10).is_err());
    }

    #[test]
    fn lenient_keeps_runs_past_the_volume() {
        // 0x10 clusters at LCN 0x2000 on a "1000-cluster" volume (a damaged size field).
        let pairs = [0x21, 0x10, 0x00, 0x20, 0x00];
        assert!(strict(&pairs, 1000).is_err());
        let r = decode(&pairs, 0, 1000, Mode::Lenient, O).unwrap();
        assert_eq!(r[0].lcn, Some(0x2000));
        // Structural faults stay faults.
        assert!(decode(&[0x11, 0x01, 0xFF, 0x00], 0, 1000, Mode::Lenient, O).is_err());
        assert!(decode(&[0x11, 0x01, 0x01], 0, 1000, Mode::Lenient, O).is_err());
    }
}
