//! Where the fixed metadata lives: which groups carry superblock backups (`sparse_super`,
//! `sparse_super2`), where the descriptor blocks are (classic GDT plus resize-inode
//! reserve, or `meta_bg` placement), as e2fsprogs' `ext2fs_super_and_bgd_loc2` defines it.
//! Needed to read descriptors (the used map, and the rescue owners from the primary or
//! a backup) and to know the metadata of BLOCK_UNINIT groups.

use super::Superblock;

/// Layout numbers derived once from a validated superblock.
#[derive(Clone, Debug)]
pub struct Layout {
    pub group_count: u64,
    pub desc_per_block: u64,
    /// Blocks needed to hold every descriptor.
    pub desc_blocks: u64,
    /// Blocks after a classic superblock copy: GDT + reserved GDT, or `s_first_meta_bg`.
    pub old_desc_blocks: u64,
}

impl Layout {
    pub fn new(sb: &Superblock) -> Self {
        let group_count = sb.group_count();
        let desc_per_block = (sb.block_size() / sb.desc_size()).max(1);
        let desc_blocks = group_count.div_ceil(desc_per_block);
        let old_desc_blocks = if sb.meta_bg() {
            u64::from(sb.s_first_meta_bg)
        } else {
            desc_blocks + u64::from(sb.s_reserved_gdt_blocks)
        };
        Layout {
            group_count,
            desc_per_block,
            desc_blocks,
            old_desc_blocks,
        }
    }
}

/// The block holding descriptor block `i` of the primary copy.
pub fn descriptor_block_loc(sb: &Superblock, lay: &Layout, i: u64) -> u64 {
    let mut base = u64::from(sb.s_first_data_block);
    // With bigalloc on 1 KiB blocks block 0 still holds the boot block and block 1 the
    // superblock, so the GDT starts after it.
    if base == 0 && sb.block_size() == 1024 {
        base = 1;
    }
    if !sb.meta_bg() || i < u64::from(sb.s_first_meta_bg) {
        return base.saturating_add(i).saturating_add(1);
    }
    let bg = i.saturating_mul(lay.desc_per_block);
    sb.group_first_block(bg)
        .saturating_add(u64::from(sb.bg_has_super(bg)))
}

/// The block holding descriptor block `i` of the copy that follows the superblock of
/// group `group` (0: the primary), as e2fsprogs' `ext2fs_descriptor_block_loc2` reads
/// it when opened on a backup (`e2fsck -b`): classic descriptors follow that backup
/// superblock; a `meta_bg` block is taken from its copy in the meta group's second group.
pub fn descriptor_block_loc_in(sb: &Superblock, lay: &Layout, group: u64, i: u64) -> u64 {
    if group == 0 {
        return descriptor_block_loc(sb, lay, i);
    }
    if !sb.meta_bg() || i < u64::from(sb.s_first_meta_bg) {
        return sb
            .group_first_block(group)
            .saturating_add(1)
            .saturating_add(i);
    }
    let next = i.saturating_mul(lay.desc_per_block).saturating_add(1);
    if next >= lay.group_count {
        return descriptor_block_loc(sb, lay, i);
    }
    sb.group_first_block(next)
        .saturating_add(u64::from(sb.bg_has_super(next)))
}

/// Block ranges `(start, count)` that group `g` spends on superblock and descriptor copies.
pub fn super_and_bgd(sb: &Superblock, lay: &Layout, g: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(2);
    let mut group_block = sb.group_first_block(g);
    if group_block == 0 && sb.block_size() == 1024 {
        group_block = 1;
    }
    let sup = sb.bg_has_super(g);
    if sup {
        out.push((group_block, 1));
    }
    let meta_bg_index = g / lay.desc_per_block;
    if !sb.meta_bg() || meta_bg_index < u64::from(sb.s_first_meta_bg) {
        if sup && lay.old_desc_blocks > 0 {
            out.push((group_block + 1, lay.old_desc_blocks));
        }
    } else {
        let r = g % lay.desc_per_block;
        if r == 0 || r == 1 || r == lay.desc_per_block - 1 {
            out.push((group_block + u64::from(sup), 1));
        }
    }
    out
}
