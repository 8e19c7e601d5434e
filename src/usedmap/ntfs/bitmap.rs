//! `$Bitmap` (MFT record 6): one bit per cluster, set when the cluster is in use.
//!
//! This is the truth for what to image. The bitmap is streamed in bounded chunks
//! (it is 32 MiB for a 1 TiB volume with 4 KiB clusters) and turned into runs of set
//! bits; bits past the volume's last cluster (padding to 8 bytes) are ignored.

use super::stream::read_stream;
use super::NtfsError;
use crate::device::BlockDevice;
use crate::ondisk::ntfs::Run;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;
    use crate::usedmap::ByteExtent;

    #[test]
    fn fragmented_bitmap_runs_and_tail_bits() {
        // 512-byte clusters; the bitmap's VCN 0 is at LCN 10, VCN 1 at LCN 5.
        let cs = 512u64;
        let mut v = vec![0u8; 16 * 512];
        v[10 * 512] = 0b0000_0111; // clusters 0..3
        v[10 * 512 + 511] = 0x80; // cluster 4095
        v[5 * 512] = 0x01; // cluster 4096
        v[5 * 512 + 1] = 0xFF; // clusters 4104..4111, but only 4100 exist
        let dev = MemDevice::from_vec(v, 512);
        let runs = [
            Run {
                vcn: 0,
                lcn: Some(10),
                length: 1,
            },
            Run {
                vcn: 1,
                lcn: Some(5),
                length: 1,
            },
        ];
        let mut b = ExtentBuilder::new();
        let s = scan(&dev, BitmapSource::Runs(&runs), cs, 4100, &mut b).unwrap();
        assert_eq!(s.used_clusters, 5);
        assert_eq!(
            b.finish(u64::MAX),
            vec![
                ByteExtent {
                    offset: 0,
                    len: 3 * 512
                },
                ByteExtent {
                    offset: 4095 * 512,
                    len: 2 * 512
                },
            ]
        );
        // A bitmap whose runs stop early is an error, not a short map.
        let mut b = ExtentBuilder::new();
        assert!(scan(&dev, BitmapSource::Runs(&runs[..1]), cs, 4100, &mut b).is_err());
        let mut b = ExtentBuilder::new();
        assert!(scan(&dev, BitmapSource::Resident(&[0xFF; 10]), cs, 4100, &mut b).is_err());
    }
}
