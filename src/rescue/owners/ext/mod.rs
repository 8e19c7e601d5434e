//! ext2/3/4: which inodes and which group structures own unreadable bytes.
//!
//! Walks the group descriptors (superblocks and their backups, descriptor tables,
//! bitmaps, inode tables), then every in-use inode's extent tree or block map, then
//! the directory tree from the root inode 2 for the paths of the hit inodes. Reads
//! that fail (the disk is damaged) become warnings, and every count read from disk is
//! bounded before it sizes a loop or an allocation.
//!
//! The inode walk and the block maps also list files' data runs for the backup's
//! chunking (`usedmap::ext::files`), which needs the same tolerance: runs only steer
//! deduplication, so a damaged inode must cost that file's runs, not the walk.

mod blocks;
mod inodes;
mod paths;
mod superblock;

use super::bad::BadSet;
use super::{DamageReport, DamagedFile, DamagedMeta, OwnerError, Warnings};
use crate::bytes::{le16, le32};
use crate::device::BlockDevice;
use crate::ondisk::ext::backup::{candidates, Candidate};
use crate::ondisk::ext::superblock::{SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};
use crate::ondisk::ext::{GroupDesc, Superblock};
use crate::rescue::BadRange;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

const FS: &str = "ext";
const EXT4_EXTENTS_FL: u32 = 0x80000;
const EXT4_INLINE_DATA_FL: u32 = 0x1000_0000;
/// Bounds that keep a garbage superblock from becoming a hang.
const MAX_GROUPS: u64 = 1 << 22;
const MAX_EXTENT_DEPTH: u32 = 5;
const MAX_BLOCK_RUNS_PER_FILE: usize = 1 << 20;
const MAX_DIR_BYTES: u64 = 64 << 20;
const MAX_DIR_ENTRIES: u64 = 20_000_000;
const TABLE_READ: u64 = 1 << 20;

/// True when the ext magic sits in the primary superblock or one of the backups.
pub fn looks_like_ext(dev: &dyn BlockDevice) -> bool {
    let name = dev.describe();
    superblock_places().any(|(at, _)| {
        dev.read_vec(at, SUPERBLOCK_SIZE)
            .is_ok_and(|b| Superblock::decode(&b, &name).is_ok())
    })
}

/// Where a superblock may be found: the primary, then the backups the used map
/// looks for (`ondisk::ext::backup`: the first sparse groups, for each block size).
fn superblock_places() -> impl Iterator<Item = (u64, Option<Candidate>)> {
    std::iter::once((SUPERBLOCK_OFFSET, None)).chain(candidates().map(|c| (c.offset, Some(c))))
}

/// `count` blocks of a file's data from logical block `logical` on, at block `physical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockRun {
    pub logical: u64,
    pub physical: u64,
    pub count: u64,
    /// An ext4 uninitialized extent: allocated, but the file reads zeros there.
    pub unwritten: bool,
}

type Runs = Vec<BlockRun>;

/// The sizes every walk computes with, taken once from the leniently checked
/// superblock as `u64` (the unit of all block and byte arithmetic here).
pub(crate) struct Sb {
    pub(crate) bs: u64,
    blocks: u64,
    ipg: u64,
    inode_size: u64,
    desc_size: u64,
    groups: u64,
    pub(crate) first_ino: u64,
    reserved_gdt: u64,
    /// For the feature flags and the superblock-copy placement.
    decoded: Superblock,
}

/// An opened ext filesystem, for the walks here and for `usedmap`'s file runs.
pub(crate) struct Ext<'a> {
    dev: &'a dyn BlockDevice,
    pub(crate) sb: Sb,
    descs: Vec<GroupDesc>,
    pub(crate) warnings: Warnings,
}

fn bad_field(dev: &dyn BlockDevice, field: &'static str, value: u64) -> OwnerError {
    OwnerError::BadField {
        device: dev.describe(),
        fs: FS,
        field,
        value,
    }
}

fn reserved_name(ino: u64) -> String {
    match ino {
        1 => "bad blocks list (inode 1)".into(),
        5 => "boot loader inode (inode 5)".into(),
        7 => "resize inode (inode 7: reserved descriptor blocks)".into(),
        8 => "journal (inode 8)".into(),
        3 | 4 => format!("quota file (inode {ino})"),
        n => format!("reserved inode {n}"),
    }
}

/// Names the owners of `bad` (bytes relative to the start of the ext filesystem).
pub fn ext_owners(dev: &dyn BlockDevice, bad: &[BadRange]) -> Result<DamageReport, OwnerError> {
    let set = BadSet::new(bad);
    let mut ext = Ext::open(dev)?;
    let mut report = DamageReport {
        fs: "ext".into(),
        ..Default::default()
    };
    if set.is_empty() {
        return Ok(report);
    }
    let record_hit = ext.metadata(&set, &mut report.metadata);
    let first_ino = ext.sb.first_ino;
    let bs = ext.sb.bs;
    let mut files: BTreeMap<u64, DamagedFile> = BTreeMap::new();
    let mut reserved: BTreeMap<u64, u64> = BTreeMap::new();
    ext.for_each_inode(|ext, ino, raw| {
        let (runs, meta) = match ext.runs(raw) {
            Ok(r) => r,
            Err(e) => {
                ext.warnings
                    .push(format!("inode {ino}: block map not followed: {e}"));
                return;
            }
        };
        let mut n = 0u64;
        for r in runs {
            n = n.saturating_add(
                set.hits(r.physical.saturating_mul(bs), r.count.saturating_mul(bs)),
            );
        }
        for b in meta {
            n = n.saturating_add(set.hits(b.saturating_mul(bs), bs));
        }
        if n == 0 {
            return;
        }
        if ino != 2 && ino < first_ino {
            reserved.insert(ino, n);
        } else {
            files.insert(
                ino,
                DamagedFile {
                    id: ino,
                    path: None,
                    bad_bytes: n,
                    record_hit: false,
                },
            );
        }
    });
    for ino in record_hit {
        if ino != 2 && ino < first_ino {
            continue;
        }
        files
            .entry(ino)
            .or_insert(DamagedFile {
                id: ino,
                path: None,
                bad_bytes: 0,
                record_hit: true,
            })
            .record_hit = true;
    }
    for (ino, n) in reserved {
        report.metadata.push(DamagedMeta {
            what: reserved_name(ino),
            bad_bytes: n,
        });
    }
    let owned = report.metadata.iter().map(|m| m.bad_bytes).sum::<u64>()
        + files.values().map(|f| f.bad_bytes).sum::<u64>();
    let wanted: HashSet<u64> = files.keys().copied().collect();
    let names = if wanted.is_empty() {
        HashMap::new()
    } else {
        ext.paths(&wanted)
    };
    for f in files.values_mut() {
        f.path = if f.id == 2 {
            Some("/".into())
        } else {
            names.get(&f.id).cloned()
        };
    }
    report.files = files.into_values().collect();
    report.unowned_bytes = set.total().saturating_sub(owned);
    report.warnings = ext.warnings.into_vec();
    Ok(report)
}
