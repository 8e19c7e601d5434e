//! Reading a byte range of a non-resident attribute through its runs.
//!
//! MFT records, `$Bitmap` chunks and the start of `hiberfil.sys` are all read this way,
//! so that fragmented streams and records straddling clusters are handled once.

use super::NtfsError;
use crate::device::BlockDevice;
use crate::ondisk::ntfs::Run;

/// Reads `len` bytes at byte `pos` of the stream described by `runs`. Sparse or
/// unmapped parts read as zeros only when `allow_holes`; otherwise they are an error.
pub fn read_stream(
    dev: &dyn BlockDevice,
    runs: &[Run],
    cluster_size: u64,
    pos: u64,
    len: usize,
    allow_holes: bool,
    what: &'static str,
) -> Result<Vec<u8>, NtfsError> {
    let mut out = vec![0u8; len];
    let mut done = 0usize;
    while done < len {
        let p = pos.checked_add(done as u64).ok_or(NtfsError::Stream {
            what,
            pos,
            reason: "position overflows".into(),
        })?;
        let vcn = p / cluster_size;
        let in_cluster = p % cluster_size;
        // Read up to the end of the run covering `vcn` in one go.
        let hit = runs.iter().find_map(|r| {
            let d = vcn.checked_sub(r.vcn).filter(|d| *d < r.length)?;
            Some((r.lcn.and_then(|l| l.checked_add(d)), r.length - d))
        });
        let span = hit.map_or(1, |(_, left)| left);
        let n = span
            .saturating_mul(cluster_size)
            .saturating_sub(in_cluster)
            .min((len - done) as u64) as usize;
        match hit.and_then(|(l, _)| l) {
            Some(lcn) => {
                let at = lcn
                    .checked_mul(cluster_size)
                    .and_then(|b| b.checked_add(in_cluster))
                    .ok_or(NtfsError::Stream {
                        what,
                        pos: p,
                        reason: format!("LCN {lcn} overflows"),
                    })?;
                dev.read_at(at, &mut out[done..done + n])
                    .map_err(|source| NtfsError::Device {
                        what,
                        offset: at,
                        source,
                    })?;
            }
            None if allow_holes => {}
            None => {
                return Err(NtfsError::Stream {
                    what,
                    pos: p,
                    reason: format!("VCN {vcn} is not mapped by the run list"),
                })
            }
        }
        done += n;
    }
    Ok(out)
}
