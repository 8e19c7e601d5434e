//! Group structures hit by bad bytes, and the walk over every in-use inode
//! (reading a damaged inode table record by record).

use super::*;

impl<'a> Ext<'a> {
    /// Group structures hit by bad bytes, in disk order of discovery.
    pub(super) fn metadata(&mut self, bad: &BadSet, out: &mut Vec<DamagedMeta>) -> HashSet<u64> {
        let bs = self.sb.bs;
        let mut record_hit_inodes = HashSet::new();
        let push = |what: String, start_block: u64, blocks: u64, out: &mut Vec<DamagedMeta>| {
            let n = bad.hits(start_block.saturating_mul(bs), blocks.saturating_mul(bs));
            if n > 0 {
                out.push(DamagedMeta { what, bad_bytes: n });
            }
        };
        let sb_hit = bad.hits(1024, 1024);
        if sb_hit > 0 {
            out.push(DamagedMeta {
                what: "primary superblock".into(),
                bad_bytes: sb_hit,
            });
        }
        let gdt_blocks = (self.sb.groups * self.sb.desc_size).div_ceil(bs);
        if self.sb.decoded.meta_bg() {
            self.warnings.push(
                "meta_bg descriptor placement is not examined; only group 0's table is named"
                    .into(),
            );
        }
        let itable_blocks = (self.sb.ipg * self.sb.inode_size).div_ceil(bs);
        for g in 0..self.sb.groups {
            let mut first = self.sb.decoded.group_first_block(g);
            // With 1 KiB blocks block 0 is the boot block even when groups start there
            // (bigalloc): the superblock and descriptors follow it.
            if first == 0 && bs == 1024 {
                first = 1;
            }
            if self.sb.decoded.bg_has_super(g) {
                if g > 0 {
                    push(format!("backup superblock in group {g}"), first, 1, out);
                }
                if g == 0 || !self.sb.decoded.meta_bg() {
                    let what = if g == 0 {
                        "group descriptors".to_string()
                    } else {
                        format!("backup group descriptors in group {g}")
                    };
                    push(what, first + 1, gdt_blocks, out);
                    push(
                        format!("reserved descriptor blocks in group {g}"),
                        first + 1 + gdt_blocks,
                        self.sb.reserved_gdt,
                        out,
                    );
                }
            }
            let Some(d) = self.descs.get(g as usize) else {
                break;
            };
            push(
                format!("block bitmap of group {g}"),
                d.bg_block_bitmap,
                1,
                out,
            );
            push(
                format!("inode bitmap of group {g}"),
                d.bg_inode_bitmap,
                1,
                out,
            );
            let n = bad.hits(d.bg_inode_table.saturating_mul(bs), itable_blocks * bs);
            if n > 0 {
                let lo = g * self.sb.ipg + 1;
                out.push(DamagedMeta {
                    what: format!(
                        "inode table of group {g} (inodes {lo}-{})",
                        lo + self.sb.ipg - 1
                    ),
                    bad_bytes: n,
                });
                let in_use = self.inode_in_use(g);
                for i in 0..self.sb.ipg {
                    let at = d
                        .bg_inode_table
                        .saturating_mul(bs)
                        .saturating_add(i * self.sb.inode_size);
                    if bad.hits(at, self.sb.inode_size) > 0 && in_use(i) {
                        record_hit_inodes.insert(lo + i);
                    }
                }
            }
        }
        record_hit_inodes
    }

    /// Whether inode `i` (0-based within group `g`) may be in use. A lost record of a
    /// free inode loses no file, so it must not be listed as one: the group's inode
    /// bitmap says which are used; when that is unreadable, the descriptor's
    /// `bg_itable_unused` tail (checksummed filesystems only) is still known free.
    fn inode_in_use(&self, g: u64) -> Box<dyn Fn(u64) -> bool> {
        let uninit_tracked = self.sb.decoded.has_group_desc_csum();
        let ipg = self.sb.ipg;
        let Some(d) = self.descs.get(g as usize) else {
            return Box::new(|_| true);
        };
        if uninit_tracked && d.inode_uninit() {
            return Box::new(|_| false);
        }
        let bitmap_len = ipg.div_ceil(8).min(self.sb.bs) as usize;
        let at = d.bg_inode_bitmap.saturating_mul(self.sb.bs);
        if let Ok(bitmap) = self.dev.read_vec(at, bitmap_len) {
            return Box::new(move |i| {
                usize::try_from(i / 8)
                    .ok()
                    .and_then(|byte| bitmap.get(byte))
                    .is_some_and(|b| b & (1 << (i % 8)) != 0)
            });
        }
        let used = if uninit_tracked {
            ipg.saturating_sub(d.bg_itable_unused.into())
        } else {
            ipg
        };
        Box::new(move |i| i < used)
    }

    /// Calls `f(ino, raw_inode)` for every in-use inode whose record could be read.
    pub(crate) fn for_each_inode(&mut self, mut f: impl FnMut(&mut Self, u64, &[u8])) {
        let isz = self.sb.inode_size;
        let uninit_tracked = self.sb.decoded.has_group_desc_csum();
        for g in 0..self.sb.groups {
            let Some(d) = self.descs.get(g as usize) else {
                break;
            };
            let (table, uninit, unused) = (
                d.bg_inode_table,
                d.inode_uninit(),
                u64::from(d.bg_itable_unused),
            );
            let mut count = self.sb.ipg;
            if uninit_tracked {
                if uninit {
                    continue;
                }
                count = count.saturating_sub(unused);
            }
            let total = count * isz;
            let mut done = 0u64;
            while done < total {
                let len = (total - done).min(TABLE_READ);
                let at = table.saturating_mul(self.sb.bs).saturating_add(done);
                // Saturating: a garbage superblock must not overflow (found by fuzzing).
                let first = g
                    .saturating_mul(self.sb.ipg)
                    .saturating_add(done / isz)
                    .saturating_add(1);
                match self.dev.read_vec(at, len as usize) {
                    Ok(buf) => {
                        for (k, raw) in buf.chunks_exact(isz as usize).enumerate() {
                            visit(self, &mut f, first.saturating_add(k as u64), raw);
                        }
                    }
                    Err(_) => {
                        // A bad sector must not hide the other inodes of the piece:
                        // read them one by one and skip only the unreadable ones.
                        for k in 0..len / isz {
                            let one = at.saturating_add(k.saturating_mul(isz));
                            match self.dev.read_vec(one, isz as usize) {
                                Ok(raw) => visit(self, &mut f, first.saturating_add(k), &raw),
                                Err(e) => self.warnings.push(format!(
                                    "inode {} of group {g} unreadable: {e}",
                                    first.saturating_add(k)
                                )),
                            }
                        }
                    }
                }
                done += len;
            }
        }
    }
}

pub(super) fn visit<'a>(
    ext: &mut Ext<'a>,
    f: &mut impl FnMut(&mut Ext<'a>, u64, &[u8]),
    ino: u64,
    raw: &[u8],
) {
    let mode = le16(raw, 0).unwrap_or(0);
    let links = le16(raw, 0x1A).unwrap_or(0);
    if mode != 0 && links != 0 {
        f(ext, ino, raw);
    }
}
