//! Mapping pairs (data runs) of a non-resident attribute, decoded into extents.
//!
//! Each run is a header byte (low nibble: size of the length, high nibble: size of the
//! LCN delta), an unsigned length and a signed delta from the previous run's LCN; an
//! offset size of 0 is a sparse run. Lengths and deltas are checked so that a corrupt
//! list cannot overflow, point before cluster 0 or past the volume, or claim more
//! clusters than the attribute has VCNs.

use super::NtfsError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub vcn: u64,
    /// `None` for a sparse run (reads as zeros, occupies no clusters).
    pub lcn: Option<u64>,
    pub length: u64,
}

/// Decodes `pairs` starting at `lowest_vcn`. `total_clusters` bounds every LCN and the
/// VCN span; `record`/`at` only feed error messages.
pub fn decode(
    pairs: &[u8],
    lowest_vcn: u64,
    total_clusters: u64,
    record: u64,
    at: usize,
) -> Result<Vec<Run>, NtfsError> {
    let bad = |pos: usize, reason: String| NtfsError::Runlist {
        record,
        offset: at + pos,
        reason,
    };
    let mut runs = Vec::new();
    let mut pos = 0usize;
    let mut vcn = lowest_vcn;
    let mut lcn: i64 = 0;
    loop {
        let Some(&h) = pairs.get(pos) else {
            return Err(bad(pos, "no terminating zero byte".into()));
        };
        if h == 0 {
            return Ok(runs);
        }
        let len_size = usize::from(h & 0x0F);
        let off_size = usize::from(h >> 4);
        if len_size == 0 || len_size > 8 || off_size > 8 {
            return Err(bad(
                pos,
                format!("run header {h:#04x} has invalid field sizes"),
            ));
        }
        let len_bytes = pairs
            .get(pos + 1..pos + 1 + len_size)
            .ok_or_else(|| bad(pos, "run length runs past the attribute".into()))?;
        let mut length = 0u64;
        for (i, b) in len_bytes.iter().enumerate() {
            length |= u64::from(*b) << (8 * i);
        }
        if length == 0 || length > total_clusters {
            return Err(bad(
                pos,
                format!(
                    "run length {length} clusters is absurd for a {total_clusters}-cluster volume"
                ),
            ));
        }
        let start = pos + 1 + len_size;
        let off_bytes = pairs
            .get(start..start + off_size)
            .ok_or_else(|| bad(pos, "run offset runs past the attribute".into()))?;
        let run_lcn = if off_size == 0 {
            None
        } else {
            let mut delta = 0i64;
            for (i, b) in off_bytes.iter().enumerate() {
                delta |= i64::from(*b) << (8 * i);
            }
            // Sign-extend from the top bit of the last byte.
            let bits = 8 * off_size as u32;
            if bits < 64 {
                delta = (delta << (64 - bits)) >> (64 - bits);
            }
            lcn = lcn
                .checked_add(delta)
                .ok_or_else(|| bad(pos, format!("LCN delta {delta} overflows")))?;
            let l = u64::try_from(lcn).map_err(|_| bad(pos, format!("LCN {lcn} is negative")))?;
            if !matches!(l.checked_add(length), Some(e) if e <= total_clusters) {
                return Err(bad(
                    pos,
                    format!(
                        "run LCN {l}+{length} ends past the volume's {total_clusters} clusters"
                    ),
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
            .filter(|v| *v <= total_clusters)
            .ok_or_else(|| bad(pos, "VCNs exceed the volume's cluster count".into()))?;
        pos = start + off_size;
    }
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

    #[test]
    fn decodes_signed_deltas_and_sparse() {
        // 0x10 clusters at LCN 0x100, 4 sparse, 8 at LCN 0x100-0x80 = 0x80.
        let pairs = [0x21, 0x10, 0x00, 0x01, 0x01, 0x04, 0x11, 0x08, 0x80, 0x00];
        let r = decode(&pairs, 0, 1000, 0, 0).unwrap();
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
        // Negative LCN.
        assert!(decode(&[0x11, 0x01, 0xFF, 0x00], 0, 1000, 0, 0).is_err());
        // Past the end.
        assert!(decode(&[0x21, 0x10, 0xF0, 0x03, 0x00], 0, 1000, 0, 0).is_err());
        // Absurd length.
        assert!(decode(
            &[0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x01, 0x00],
            0,
            1000,
            0,
            0
        )
        .is_err());
        // No terminator.
        assert!(decode(&[0x11, 0x01, 0x01], 0, 1000, 0, 0).is_err());
        // Zero length.
        assert!(decode(&[0x11, 0x00, 0x01, 0x00], 0, 1000, 0, 0).is_err());
        // Bad nibble sizes.
        assert!(decode(&[0x19, 0x00], 0, 1000, 0, 0).is_err());
        // Overflowing delta chain.
        let mut p = vec![];
        for _ in 0..4 {
            p.extend_from_slice(&[0x81, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
        }
        p.push(0);
        assert!(decode(&p, 0, u64::MAX, 0, 0).is_err());
        // Too many VCNs.
        assert!(decode(&[0x11, 0x08, 0x01, 0x11, 0x08, 0x01, 0x00], 0, 10, 0, 0).is_err());
    }
}
