//! Which blocks an inode owns: ext4 extent trees and ext2/3 indirect block maps,
//! bounded in depth and run count.

use super::*;

impl BlockRun {
    /// One block of an ext2/3 block map.
    fn block(logical: u64, physical: u64) -> Self {
        BlockRun {
            logical,
            physical,
            count: 1,
            unwritten: false,
        }
    }
}

impl<'a> Ext<'a> {
    /// The inode's data as runs of blocks (uninitialized extents flagged), plus the
    /// blocks holding its mapping (extent index/leaf or indirect blocks).
    pub(crate) fn runs(&self, raw: &[u8]) -> Result<(Runs, Vec<u64>), String> {
        let flags = le32(raw, 0x20).unwrap_or(0);
        let iblock = raw.get(0x28..0x28 + 60).ok_or("short inode")?;
        let mut runs = Vec::new();
        let mut meta = Vec::new();
        if flags & EXT4_INLINE_DATA_FL != 0 {
            return Ok((runs, meta));
        }
        let mode = le16(raw, 0).unwrap_or(0);
        let size = le32(raw, 4).unwrap_or(0);
        if mode & 0xF000 == 0xA000 && size < 60 && le32(raw, 0x1C).unwrap_or(0) == 0 {
            return Ok((runs, meta)); // fast symlink: the target lives in i_block
        }
        if flags & EXT4_EXTENTS_FL != 0 {
            self.extent_node(iblock, MAX_EXTENT_DEPTH, &mut runs, &mut meta)?;
        } else {
            for i in 0..12u64 {
                let p = u64::from(le32(iblock, (i * 4) as usize).unwrap_or(0));
                if p != 0 {
                    runs.push(BlockRun::block(i, p));
                }
            }
            let per = self.sb.bs / 4;
            let mut logical = 12u64;
            for (slot, level) in [(12usize, 1u32), (13, 2), (14, 3)] {
                let p = u64::from(le32(iblock, slot * 4).unwrap_or(0));
                let span = per.saturating_pow(level);
                if p != 0 {
                    self.indirect(p, level, logical, &mut runs, &mut meta)?;
                }
                logical = logical.saturating_add(span);
            }
        }
        Ok((runs, meta))
    }

    pub(super) fn extent_node(
        &self,
        node: &[u8],
        depth_left: u32,
        runs: &mut Runs,
        meta: &mut Vec<u64>,
    ) -> Result<(), String> {
        if le16(node, 0) != Some(0xF30A) {
            return Err("bad extent header magic".into());
        }
        let entries = le16(node, 2).unwrap_or(0);
        let depth = u32::from(le16(node, 6).unwrap_or(0));
        if depth > depth_left {
            return Err(format!("extent depth {depth} too deep"));
        }
        for i in 0..entries as usize {
            let e = node
                .get(12 + i * 12..24 + i * 12)
                .ok_or("extent entries past the node")?;
            if runs.len() + meta.len() > MAX_BLOCK_RUNS_PER_FILE {
                return Err("too many extents".into());
            }
            if depth == 0 {
                let lblk = u64::from(le32(e, 0).unwrap_or(0));
                // A length above 32768 marks an uninitialized extent of (length - 32768).
                let mut len = u64::from(le16(e, 4).unwrap_or(0));
                let unwritten = len > 32768;
                if unwritten {
                    len -= 32768;
                }
                let start =
                    u64::from(le32(e, 8).unwrap_or(0)) | u64::from(le16(e, 6).unwrap_or(0)) << 32;
                if len > 0 {
                    runs.push(BlockRun {
                        logical: lblk,
                        physical: start,
                        count: len,
                        unwritten,
                    });
                }
            } else {
                let leaf =
                    u64::from(le32(e, 4).unwrap_or(0)) | u64::from(le16(e, 8).unwrap_or(0)) << 32;
                if leaf == 0 || leaf >= self.sb.blocks {
                    return Err(format!("extent index points to block {leaf}"));
                }
                meta.push(leaf);
                let child = self
                    .dev
                    .read_vec(leaf.saturating_mul(self.sb.bs), self.sb.bs as usize)
                    .map_err(|e| format!("extent block {leaf} unreadable: {e}"))?;
                self.extent_node(&child, depth - 1, runs, meta)?;
            }
        }
        Ok(())
    }

    pub(super) fn indirect(
        &self,
        block: u64,
        level: u32,
        logical: u64,
        runs: &mut Runs,
        meta: &mut Vec<u64>,
    ) -> Result<(), String> {
        if block >= self.sb.blocks {
            return Err(format!(
                "indirect pointer to block {block} beyond the filesystem"
            ));
        }
        meta.push(block);
        let buf = self
            .dev
            .read_vec(block.saturating_mul(self.sb.bs), self.sb.bs as usize)
            .map_err(|e| format!("indirect block {block} unreadable: {e}"))?;
        let per = self.sb.bs / 4;
        let span = per.saturating_pow(level - 1);
        for i in 0..per {
            let p = u64::from(le32(&buf, (i * 4) as usize).unwrap_or(0));
            if p == 0 {
                continue;
            }
            if runs.len() + meta.len() > MAX_BLOCK_RUNS_PER_FILE {
                return Err("too many blocks".into());
            }
            let l = logical.saturating_add(i.saturating_mul(span));
            if level == 1 {
                runs.push(BlockRun::block(l, p));
            } else {
                self.indirect(p, level - 1, l, runs, meta)?;
            }
        }
        Ok(())
    }

    pub(super) fn read_inode(&self, ino: u64) -> Option<Vec<u8>> {
        let idx = ino.checked_sub(1)?;
        let d = self.descs.get((idx / self.sb.ipg) as usize)?;
        let at = d
            .bg_inode_table
            .checked_mul(self.sb.bs)?
            .checked_add((idx % self.sb.ipg) * self.sb.inode_size)?;
        self.dev.read_vec(at, self.sb.inode_size as usize).ok()
    }
}
