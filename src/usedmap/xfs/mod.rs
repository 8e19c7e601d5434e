//! XFS used-block map: per allocation group, every block except the free extents of
//! the AG's by-block-number free-space B+tree.
//!
//! Everything not in that tree is needed after a restore: the AG headers (the
//! superblock copy, AGF, AGI, AGFL), every B+tree, the inode chunks, the internal log,
//! and file data. Blocks on the AG free list (AGFL) are not in the tree but hold
//! nothing (they are reserved for the trees to grow into), so they are left out as
//! `xfs_db freesp`, xfs_copy and partclone.xfs leave them out: the used count equals
//! theirs.
//!
//! A log that does not end with an unmount record is refused (log.rs says why), so
//! such a filesystem is imaged whole.
//!
//! The superblock's `sb_fdblocks` is only compared (it is a lazy counter that also
//! includes the AGFL and tree blocks), never trusted for the map. An AGF whose sum of
//! free extents differs from `agf_freeblks` is reported as a warning: the tree is what
//! the kernel allocates from.

mod bnobt;
mod error;
mod log;

pub use error::XfsError;

use crate::device::BlockDevice;
use crate::ondisk::xfs::agfl::{free_list, AGFL_SECTOR};
use crate::ondisk::xfs::superblock::SB_LEN;
use crate::ondisk::xfs::{Agf, Superblock};
use crate::usedmap::{ExtentBuilder, UsedMap};

/// Per-AG state is a few extents; the count is bounded anyway so that a corrupt
/// `sb_agcount` cannot make the walk take forever (XFS_MAX_AGNUMBER is 2^32-1, real
/// filesystems have tens to thousands).
const MAX_AGS: u32 = 1 << 20;

pub(super) fn read(
    dev: &dyn BlockDevice,
    offset: u64,
    len: u64,
    what: &str,
) -> Result<Vec<u8>, XfsError> {
    let err = |source| XfsError::Read {
        device: dev.describe(),
        what: what.into(),
        offset,
        source,
    };
    dev.check_range(offset, len).map_err(err)?;
    dev.read_vec(offset, len as usize).map_err(err)
}

/// Reads and validates the primary superblock (its whole sector, for the v5 CRC).
pub fn read_superblock(dev: &dyn BlockDevice) -> Result<Superblock, XfsError> {
    let decode = |source| XfsError::Decode {
        device: dev.describe(),
        source,
    };
    let head = read(dev, 0, SB_LEN as u64, "the superblock")?;
    let ss = crate::bytes::be16(&head, 102).map_or(512, u64::from);
    let sector = if ss.is_power_of_two() && (512..=32768).contains(&ss) {
        read(dev, 0, ss, "the superblock sector")?
    } else {
        head
    };
    Superblock::parse(&sector).map_err(decode)
}

/// Maps an XFS filesystem that starts at byte 0 of `dev`.
pub fn map_xfs(dev: &dyn BlockDevice) -> Result<UsedMap, XfsError> {
    let name = dev.describe();
    let sb = read_superblock(dev)?;
    let decode = |source| XfsError::Decode {
        device: name.clone(),
        source,
    };
    let bs = sb.block_size();
    let fs_bytes = sb.fs_bytes();
    if fs_bytes > dev.size() {
        return Err(XfsError::Truncated {
            device: name,
            fs_bytes,
            device_bytes: dev.size(),
        });
    }
    if sb.sb_agcount > MAX_AGS {
        return Err(decode(crate::ondisk::xfs::XfsDecodeError::Superblock {
            field: "sb_agcount",
            value: sb.sb_agcount.into(),
            why: "more than 2^20 allocation groups",
        }));
    }
    let mut warnings = Vec::new();
    let mut eb = ExtentBuilder::new();
    let mut free_total: u64 = 0;
    let mut lazy_free: u64 = 0;
    for ag in 0..sb.sb_agcount {
        let ag_off = sb.ag_offset(ag);
        let agf_off = ag_off.saturating_add(sb.sector_size());
        let b = read(dev, agf_off, sb.sector_size(), &format!("AG {ag}'s AGF"))?;
        let agf = Agf::parse(&b, &sb, ag).map_err(decode)?;
        let mut free = bnobt::free_extents(dev, &sb, ag, &agf)?;
        let tree_free: u64 = free.iter().map(|&(_, n)| u64::from(n)).sum();
        let agfl_off = ag_off.saturating_add(AGFL_SECTOR * sb.sector_size());
        let b = read(dev, agfl_off, sb.sector_size(), &format!("AG {ag}'s AGFL"))?;
        free.extend(
            free_list(&b, &sb, &agf, ag)
                .map_err(decode)?
                .into_iter()
                .map(|b| (b, 1)),
        );
        free.sort_unstable();
        let twice = free.windows(2).find_map(|w| match w {
            [a, b] if u64::from(a.0) + u64::from(a.1) > u64::from(b.0) => Some(b.0),
            _ => None,
        });
        if let Some(block) = twice {
            return Err(XfsError::Tree {
                device: name,
                ag,
                what: format!(
                    "free blocks counted twice: the free-space tree and the free list both hold                      block {block}"
                ),
            });
        }
        let ag_free: u64 = free.iter().map(|&(_, n)| u64::from(n)).sum();
        if tree_free != u64::from(agf.agf_freeblks) {
            warnings.push(format!(
                "AG {ag}: the free-space tree holds {tree_free} free blocks but agf_freeblks \
                 says {}; the tree is trusted",
                agf.agf_freeblks
            ));
        }
        free_total += ag_free;
        lazy_free +=
            u64::from(agf.agf_freeblks) + u64::from(agf.agf_flcount) + u64::from(agf.agf_btreeblks);
        let mut at: u64 = 0;
        let ag_first = ag_off / bs;
        for (s, n) in free
            .iter()
            .map(|&(s, n)| (u64::from(s), u64::from(n)))
            .chain([(u64::from(agf.agf_length), 0)])
        {
            if s > at {
                // In range: s <= agf_length, and the AG lies inside sb_dblocks.
                eb.add_blocks(ag_first + at, s - at, bs);
            }
            at = s + n;
        }
    }
    // sb_fdblocks counts the AGFL and the trees' own blocks as free (and may be stale
    // with lazy counters), so it is compared with the AGFs' view, not the tree's.
    if sb.sb_fdblocks != lazy_free {
        warnings.push(format!(
            "sb_fdblocks is {} but the AGFs add up to {lazy_free} (a lazy counter, fixed \
             at the next mount or by xfs_repair)",
            sb.sb_fdblocks
        ));
    }
    // Checked last only so that the fuzz target, which holds the AG heads but not the
    // log, reaches the tree walk.
    if let Some(why) = log::dirty_reason(dev, &sb)? {
        return Err(XfsError::DirtyLog { device: name, why });
    }
    let used_blocks = sb.sb_dblocks.saturating_sub(free_total);
    Ok(UsedMap {
        block_size: bs,
        total_bytes: fs_bytes,
        used_bytes: used_blocks * bs,
        extents: eb.finish(fs_bytes),
        raw: false,
        raw_reason: None,
        warnings,
        primary_lost: None,
        lvm: None,
        fs_sector: u32::try_from(sb.sector_size()).ok(),
    })
}
