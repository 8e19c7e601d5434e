//! The allocation bitmap: bit `i` set means cluster `i + 2` is in use. It is read
//! cluster by cluster along its chain (it is 64 MiB for a 2 TiB volume of 4 KiB
//! clusters) and turned into runs of used clusters; bits past the last cluster
//! (padding to the byte) are ignored.

use super::reader::Fat;
use super::root::stream_chain;
use super::ExfatError;
use crate::ondisk::exfat::dir_entry::Stream;
use crate::usedmap::ExtentBuilder;

/// The bitmap's clusters, after checking that it has a bit for every cluster.
pub fn chain(fat: &Fat<'_>, s: &Stream) -> Result<Vec<u32>, ExfatError> {
    let need = fat.bs.cluster_count.div_ceil(8);
    if s.data_length < need {
        return Err(ExfatError::BitmapTooSmall {
            data_length: s.data_length,
            need,
            cluster_count: fat.bs.cluster_count,
        });
    }
    stream_chain(fat, s, "allocation bitmap")
}

/// Adds every used cluster to `out`; returns how many there are.
pub fn scan(fat: &Fat<'_>, clusters: &[u32], out: &mut ExtentBuilder) -> Result<u64, ExfatError> {
    let bs = fat.bs;
    let count = bs.cluster_count;
    let cs = bs.cluster_size();
    let heap = bs.cluster_heap_offset * bs.sector_size();
    let mut used = 0u64;
    // Current run of used clusters as bitmap indexes [start, end).
    let mut run: Option<(u64, u64)> = None;
    let flush = |run: &mut Option<(u64, u64)>, out: &mut ExtentBuilder| {
        if let Some((s, e)) = run.take() {
            // s < e <= count, and the heap of `count` clusters lies inside the volume.
            out.add(heap + s * cs, (e - s) * cs);
        }
    };
    let mut index = 0u64;
    'clusters: for &c in clusters {
        let data = fat.cluster(c, "allocation bitmap")?;
        for &byte in &data {
            if index >= count {
                break 'clusters;
            }
            if byte == 0 {
                flush(&mut run, out);
                index += 8;
                continue;
            }
            for bit in 0..8 {
                let i = index + bit;
                if i >= count {
                    break;
                }
                if byte & (1 << bit) != 0 {
                    used += 1;
                    match &mut run {
                        Some((_, e)) if *e == i => *e = i + 1,
                        _ => {
                            flush(&mut run, out);
                            run = Some((i, i + 1));
                        }
                    }
                } else {
                    flush(&mut run, out);
                }
            }
            index += 8;
        }
    }
    flush(&mut run, out);
    Ok(used)
}
