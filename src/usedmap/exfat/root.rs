//! The root directory: its cluster chain and the two entries the map needs, the
//! allocation bitmap (0x81) and the up-case table (0x82).

use super::reader::Fat;
use super::ExfatError;
use crate::ondisk::exfat::dir_entry::{self, Stream};
use crate::ondisk::exfat::DirEntry;

/// The specification caps a directory at 256 MiB.
const MAX_DIRECTORY_BYTES: u64 = 256 << 20;

pub struct Root {
    pub clusters: Vec<u32>,
    pub bitmap: Stream,
    pub up_case_clusters: Vec<u32>,
}

pub fn read(fat: &Fat<'_>) -> Result<Root, ExfatError> {
    let bs = fat.bs;
    let cs = bs.cluster_size();
    let max = (MAX_DIRECTORY_BYTES / cs).clamp(1, bs.cluster_count);
    let clusters = fat.chain(bs.first_cluster_of_root_directory, max)?;
    let mut bitmap = None;
    let mut up_case = None;
    'scan: for &c in &clusters {
        let data = fat.cluster(c, "root directory")?;
        let base = bs.cluster_offset(u64::from(c)).unwrap_or(0);
        for (i, raw) in data.chunks_exact(dir_entry::LEN).enumerate() {
            let offset = base.saturating_add((i * dir_entry::LEN) as u64);
            match DirEntry::parse(raw, offset, bs.cluster_count)? {
                DirEntry::EndOfDirectory => break 'scan,
                DirEntry::AllocationBitmap { second, stream } => {
                    if second || bitmap.is_some() {
                        return Err(ExfatError::Root(
                            "a second allocation bitmap entry on a one-FAT volume",
                        ));
                    }
                    bitmap = Some(stream);
                }
                DirEntry::UpCaseTable(s) => up_case = Some(s),
                _ => {}
            }
        }
    }
    let bitmap = bitmap.ok_or(ExfatError::Root("no allocation bitmap entry (0x81)"))?;
    let up_case_clusters = match up_case {
        Some(s) => stream_chain(fat, &s, "up-case table")?,
        None => return Err(ExfatError::Root("no up-case table entry (0x82)")),
    };
    Ok(Root {
        clusters,
        bitmap,
        up_case_clusters,
    })
}

/// The clusters of a stream that is chained through the FAT: exactly as many as its
/// `DataLength` needs.
pub fn stream_chain(fat: &Fat<'_>, s: &Stream, what: &'static str) -> Result<Vec<u32>, ExfatError> {
    let need = s.data_length.div_ceil(fat.bs.cluster_size());
    if need > fat.bs.cluster_count {
        return Err(ExfatError::ShortChain {
            what,
            got: fat.bs.cluster_count,
            need,
        });
    }
    let chain = fat.chain(s.first_cluster, need)?;
    if (chain.len() as u64) < need {
        return Err(ExfatError::ShortChain {
            what,
            got: chain.len() as u64,
            need,
        });
    }
    Ok(chain)
}
