//! Reading and checking the superblock (primary or a backup) and the group
//! descriptors that every later walk relies on.

use super::*;

pub(super) fn parse_sb(dev: &dyn BlockDevice, at: u64) -> Result<Sb, OwnerError> {
    let b = dev.read_vec(at, 1024)?;
    let f = |at| le32(&b, at).unwrap_or(0);
    let h = |at| le16(&b, at).unwrap_or(0);
    if h(56) != 0xEF53 {
        return Err(OwnerError::NotFs {
            device: dev.describe(),
            fs: FS,
            why: format!("s_magic is {:#x}", h(56)),
        });
    }
    let log = f(24);
    if log > 6 {
        return Err(bad_field(dev, "s_log_block_size", log));
    }
    let bs = 1024u64 << log;
    let incompat = f(96);
    let blocks = f(4)
        | if incompat & INCOMPAT_64BIT != 0 {
            f(0x150) << 32
        } else {
            0
        };
    let bpg = f(32);
    let ipg = f(40);
    if bpg == 0 || bpg > bs * 8 {
        return Err(bad_field(dev, "s_blocks_per_group", bpg));
    }
    if ipg == 0 || ipg > bs * 8 {
        return Err(bad_field(dev, "s_inodes_per_group", ipg));
    }
    let rev = f(76);
    let inode_size = if rev == 0 { 128 } else { h(88) };
    if inode_size < 128 || inode_size > bs || !inode_size.is_power_of_two() {
        return Err(bad_field(dev, "s_inode_size", inode_size));
    }
    let desc_size = if incompat & INCOMPAT_64BIT != 0 {
        h(0xFE)
    } else {
        32
    };
    if !(32..=1024).contains(&desc_size) || !desc_size.is_power_of_two() {
        return Err(bad_field(dev, "s_desc_size", desc_size));
    }
    if blocks.checked_mul(bs).map_or(true, |n| n > dev.size()) {
        return Err(bad_field(dev, "s_blocks_count", blocks));
    }
    let first_data_block = f(20);
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
        ipg,
        inode_size,
        desc_size,
        groups,
        incompat,
        ro_compat: f(100),
        compat: f(92),
        first_ino: if rev == 0 { 11 } else { f(0x54).max(11) },
        reserved_gdt: h(0xCE),
        backup_bgs: [f(0x24C), f(0x250)],
    })
}

pub(super) fn is_power_of(mut n: u64, p: u64) -> bool {
    while n > 1 && n % p == 0 {
        n /= p;
    }
    n == 1
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
        let wide = sb.incompat & INCOMPAT_64BIT != 0 && sb.desc_size >= 64;
        let descs = raw
            .chunks_exact(sb.desc_size as usize)
            .map(|d| {
                let lohi = |lo, hi| {
                    le32(d, lo).unwrap_or(0)
                        | if wide {
                            le32(d, hi).unwrap_or(0) << 32
                        } else {
                            0
                        }
                };
                Desc {
                    block_bitmap: lohi(0, 0x20),
                    inode_bitmap: lohi(4, 0x24),
                    inode_table: lohi(8, 0x28),
                    flags: le16(d, 0x12).unwrap_or(0),
                    itable_unused: le16(d, 0x1C).unwrap_or(0)
                        | if wide {
                            le16(d, 0x32).unwrap_or(0) << 16
                        } else {
                            0
                        },
                }
            })
            .collect();
        Ok(Ext {
            dev,
            sb,
            descs,
            warnings,
        })
    }

    pub(super) fn has_super(&self, g: u64) -> bool {
        if g == 0 {
            return true;
        }
        if self.sb.compat & COMPAT_SPARSE_SUPER2 != 0 {
            return self.sb.backup_bgs.contains(&g);
        }
        if self.sb.ro_compat & RO_COMPAT_SPARSE_SUPER == 0 {
            return true;
        }
        g == 1 || is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7)
    }
}
