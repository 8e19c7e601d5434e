//! `$Bitmap` (MFT record 6): one bit per cluster, set when the cluster is in use.
//!
//! This is the truth for what to image. The bitmap is streamed in bounded chunks
//! (it is 32 MiB for a 1 TiB volume with 4 KiB clusters) and turned into runs of set
//! bits; bits past the volume's last cluster (padding to 8 bytes) are ignored.

use super::runlist::Run;
use super::stream::read_stream;
use super::NtfsError;
use crate::device::BlockDevice;
use crate::usedmap::ExtentBuilder;

const CHUNK: usize = 1 << 20;

/// Used clusters found in the bitmap, as builder ranges (bytes) and a count.
pub struct BitmapScan {
    pub used_clusters: u64,
}

/// Where `$Bitmap`'s bytes come from.
pub enum BitmapSource<'a> {
    Resident(&'a [u8]),
    Runs(&'a [Run]),
}

/// Adds every used cluster to `out` and counts them.
pub fn scan(
    dev: &dyn BlockDevice,
    src: BitmapSource<'_>,
    cluster_size: u64,
    total_clusters: u64,
    out: &mut ExtentBuilder,
) -> Result<BitmapScan, NtfsError> {
    let need = total_clusters.div_ceil(8);
    let mut used = 0u64;
    // Current run of set bits: [start, end) in clusters.
    let mut run: Option<(u64, u64)> = None;
    let flush = |run: &mut Option<(u64, u64)>, out: &mut ExtentBuilder| {
        if let Some((s, e)) = run.take() {
            // Cannot overflow: e <= total_clusters and total_clusters * cluster_size fits.
            out.add(s * cluster_size, (e - s) * cluster_size);
        }
    };
    let mut byte_pos = 0u64;
    while byte_pos < need {
        let n = (need - byte_pos).min(CHUNK as u64) as usize;
        let chunk = match &src {
            BitmapSource::Resident(v) => {
                let s = byte_pos as usize;
                v.get(s..s + n)
                    .ok_or(NtfsError::BitmapTooSmall {
                        have: v.len() as u64,
                        need,
                    })?
                    .to_vec()
            }
            BitmapSource::Runs(runs) => {
                read_stream(dev, runs, cluster_size, byte_pos, n, false, "$Bitmap")?
            }
        };
        for (i, &b) in chunk.iter().enumerate() {
            let base = (byte_pos + i as u64) * 8;
            if b == 0 {
                flush(&mut run, out);
                continue;
            }
            for bit in 0..8u64 {
                let c = base + bit;
                if c >= total_clusters {
                    break;
                }
                if b & (1 << bit) != 0 {
                    used += 1;
                    match &mut run {
                        Some((_, e)) if *e == c => *e = c + 1,
                        _ => {
                            flush(&mut run, out);
                            run = Some((c, c + 1));
                        }
                    }
                } else {
                    flush(&mut run, out);
                }
            }
        }
        byte_pos += n as u64;
    }
    flush(&mut run, out);
    Ok(BitmapScan {
        used_clusters: used,
    })
}
