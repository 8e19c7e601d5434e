//! Reading and checking the superblock (primary or a backup) and the group
//! descriptors that every later walk relies on.

use super::*;
use crate::ondisk::ext::layout::{self, Layout};
use crate::ondisk::ext::Check;

pub(super) fn parse_sb(dev: &dyn BlockDevice, at: u64) -> Result<Sb, OwnerError> {
    let b = dev.read_vec(at, SUPERBLOCK_SIZE)?;
    // Lenient: a damaged filesystem is still walked as far as its sizes are sane.
    let sb = Superblock::parse(&b, &dev.describe(), Check::Lenient)?;
    let bs = sb.block_size();
    let blocks = sb.s_blocks_count;
    if blocks.checked_mul(bs).map_or(true, |n| n > dev.size()) {
        return Err(bad_field(dev, "s_blocks_count", blocks));
    }
    let first_data_block = u64::from(sb.s_first_data_block);
    let bpg = u64::from(sb.s_blocks_per_group);
    let groups = blocks
        .checked_sub(first_data_block)
        .map(|n| n.div_ceil(bpg))
        .filter(|&g| g > 0 && g <= MAX_GROUPS)
        .ok_or_else(|| bad_field(dev, "s_blocks_count", blocks))?;
    Ok(Sb {
        bs,
        blocks,
        ipg: sb.s_inodes_per_group.into(),
        inode_size: sb.inode_size(),
        desc_size: sb.desc_size(),
        groups,
        first_ino: sb.first_ino(),
        reserved_gdt: sb.s_reserved_gdt_blocks.into(),
        decoded: sb,
    })
}

impl<'a> Ext<'a> {
    pub(crate) fn open(dev: &'a dyn BlockDevice) -> Result<Self, OwnerError> {
        let mut warnings = Warnings::default();
        let mut found = None;
        let mut first_err = None;
        for (at, backup) in superblock_places() {
            match parse_sb(dev, at) {
                // A backup only counts if its block size is the one it was looked for at.
                Ok(sb) if backup.map_or(true, |c| c.block_size == sb.bs) => {
                    found = Some((sb, backup));
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let Some((sb, backup)) = found else {
            return Err(first_err.unwrap_or_else(|| bad_field(dev, "s_magic", 0)));
        };
        // Descriptors follow the superblock copy used, where e2fsprogs looks for them
        // (`meta_bg` and 1 KiB-block bigalloc included).
        let group = match backup {
            None => 0,
            Some(c) => {
                warnings.push(format!(
                    "primary superblock unusable; used the backup at block {} (group {})",
                    c.block(),
                    c.group
                ));
                c.group
            }
        };
        let lay = Layout::new(&sb.decoded);
        let wide = sb.decoded.wide_descs();
        let name = dev.describe();
        let mut descs = Vec::new();
        for i in 0..lay.desc_blocks {
            let loc = layout::descriptor_block_loc_in(&sb.decoded, &lay, group, i);
            let block = dev.read_vec(loc.saturating_mul(sb.bs), sb.bs as usize)?;
            for raw in block.chunks_exact(sb.desc_size as usize) {
                let g = descs.len() as u64;
                if g >= sb.groups {
                    break;
                }
                descs.push(GroupDesc::parse(raw, wide, &name, g)?);
            }
        }
        Ok(Ext {
            dev,
            sb,
            descs,
            warnings,
        })
    }
}
