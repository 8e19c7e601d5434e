//! The data runs of every regular file of an ext2/3/4 filesystem, for chunking on each
//! file's own grid (`usedmap::file_runs`).
//!
//! The inode walk and the block maps (extent trees, indirect blocks) are rescue's
//! (`rescue::owners::ext`): tolerant of unreadable tables and bounded per file. Only
//! regular files count: directories, symlinks, the journal and the other reserved inodes
//! change in place and are cut on the area's grid instead.

use crate::bytes::{le16, le32};
use crate::device::BlockDevice;
use crate::rescue::owners::ext::Ext;
use crate::rescue::owners::OwnerError;
use crate::usedmap::files::Collector;

const S_IFMT: u16 = 0xF000;
const S_IFREG: u16 = 0x8000;
/// An inode holding a large extended attribute's value (ea_inode), not a file.
const EXT4_EA_INODE_FL: u32 = 0x20_0000;

/// Hands every regular file's written blocks to `sink`, up to the file's size rounded
/// up to a block (blocks allocated past it hold no file bytes). Uninitialized extents
/// read as zeros, so they hold none either. Returns the walk's warnings.
pub(crate) fn walk(dev: &dyn BlockDevice, sink: &mut Collector) -> Result<Vec<String>, OwnerError> {
    let mut ext = Ext::open(dev)?;
    // A primary superblock read through its backup is already said by the used map.
    ext.warnings = Default::default();
    let (bs, first_ino) = (ext.sb.bs, ext.sb.first_ino);
    ext.for_each_inode(|ext, ino, raw| {
        let mode = le16(raw, 0).unwrap_or(0);
        let flags = le32(raw, 0x20).unwrap_or(0);
        if ino < first_ino || mode & S_IFMT != S_IFREG || flags & EXT4_EA_INODE_FL != 0 {
            return;
        }
        let size =
            u64::from(le32(raw, 4).unwrap_or(0)) | u64::from(le32(raw, 0x6C).unwrap_or(0)) << 32;
        let blocks = size.div_ceil(bs);
        let runs = match ext.runs(raw) {
            Ok((runs, _)) => runs,
            Err(e) => return sink.skip(format!("inode {ino}: {e}")),
        };
        for r in runs.iter().filter(|r| !r.unwritten && r.logical < blocks) {
            let count = r.count.min(blocks - r.logical);
            match (
                r.physical.checked_mul(bs),
                count.checked_mul(bs),
                r.logical.checked_mul(bs),
            ) {
                (Some(offset), Some(len), Some(logical)) => sink.push(ino, offset, len, logical),
                _ => sink.skip(format!("inode {ino}: block {} overflows", r.physical)),
            }
        }
    });
    Ok(ext.warnings.into_vec())
}
