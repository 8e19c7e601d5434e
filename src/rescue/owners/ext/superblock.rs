//! Reading and checking the superblock (primary or a backup) and the group
//! descriptors that every later walk relies on.

use super::*;
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
        first_data_block,
        bpg,
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
    pub(super) fn open(dev: &'a dyn BlockDevice) -> Result<Self, OwnerError> {
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
        let gdt_block = match backup {
            None => sb.first_data_block + 1,
            Some(c) => {
                warnings.push(format!(
                    "primary superblock unusable; used the backup at block {} (group {})",
                    c.block(),
                    c.group
                ));
                c.block() + 1
            }
        };
        let gdt_start = gdt_block * sb.bs;
        let len = sb
            .groups
            .checked_mul(sb.desc_size)
            .ok_or_else(|| bad_field(dev, "s_blocks_count", sb.blocks))?;
        let raw = dev.read_vec(gdt_start, usize::try_from(len).unwrap_or(usize::MAX))?;
        let wide = sb.decoded.wide_descs();
        let name = dev.describe();
        let descs = raw
            .chunks_exact(sb.desc_size as usize)
            .zip(0u64..)
            .map(|(d, g)| GroupDesc::parse(d, wide, &name, g))
            .collect::<Result<_, _>>()?;
        Ok(Ext {
            dev,
            sb,
            descs,
            warnings,
        })
    }
}
