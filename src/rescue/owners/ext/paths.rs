//! Paths of damaged inodes, by a bounded breadth-first walk of the directory
//! tree from the root inode.

use super::*;

impl<'a> Ext<'a> {
    /// Paths of `wanted` inodes, by a breadth-first walk from the root (inode 2).
    pub(super) fn paths(&mut self, wanted: &HashSet<u64>) -> HashMap<u64, String> {
        let mut found = HashMap::new();
        let mut seen = HashSet::from([2u64]);
        let mut queue = VecDeque::from([(2u64, String::new())]);
        let mut entries = 0u64;
        let filetype = self.sb.decoded.filetype();
        while let Some((dir, path)) = queue.pop_front() {
            if found.len() == wanted.len() {
                break;
            }
            let Some(raw) = self.read_inode(dir) else {
                self.warnings
                    .push(format!("directory inode {dir} ({path}/) unreadable"));
                continue;
            };
            let size = u64::from(le32(&raw, 4).unwrap_or(0))
                | u64::from(le32(&raw, 0x6C).unwrap_or(0)) << 32;
            if size > MAX_DIR_BYTES {
                self.warnings
                    .push(format!("directory {path}/ is {size} bytes; not walked"));
                continue;
            }
            let runs = match self.runs(&raw) {
                Ok((r, _)) => r,
                Err(e) => {
                    self.warnings
                        .push(format!("directory {path}/ (inode {dir}): {e}"));
                    continue;
                }
            };
            // A garbage map must not make a small directory read the whole disk.
            let mut blocks_left = size.div_ceil(self.sb.bs);
            for r in runs {
                let (phys, len) = (r.physical, r.count);
                for b in phys..phys.saturating_add(len).min(self.sb.blocks) {
                    if blocks_left == 0 {
                        break;
                    }
                    blocks_left -= 1;
                    let Ok(block) = self
                        .dev
                        .read_vec(b.saturating_mul(self.sb.bs), self.sb.bs as usize)
                    else {
                        self.warnings
                            .push(format!("directory {path}/ block {b} unreadable"));
                        continue;
                    };
                    let mut pos = 0usize;
                    while pos + 8 <= block.len() {
                        entries += 1;
                        if entries > MAX_DIR_ENTRIES {
                            self.warnings
                                .push("directory walk stopped: too many entries".into());
                            return found;
                        }
                        let ino = u64::from(le32(&block, pos).unwrap_or(0));
                        let rec_len = usize::from(le16(&block, pos + 4).unwrap_or(0));
                        let (name_len, ftype) = if filetype {
                            (block[pos + 6] as usize, block[pos + 7])
                        } else {
                            (usize::from(le16(&block, pos + 6).unwrap_or(0)), 0)
                        };
                        if rec_len < 8 || pos + rec_len > block.len() {
                            break;
                        }
                        if let Some(name) = block.get(pos + 8..pos + 8 + name_len) {
                            if ino != 0 && name != b"." && name != b".." && name_len > 0 {
                                let child = format!("{path}/{}", String::from_utf8_lossy(name));
                                if wanted.contains(&ino) && !found.contains_key(&ino) {
                                    found.insert(ino, child.clone());
                                }
                                let is_dir = if filetype {
                                    ftype == 2
                                } else {
                                    self.read_inode(ino)
                                        .and_then(|r| le16(&r, 0))
                                        .is_some_and(|m| m & 0xF000 == 0x4000)
                                };
                                if is_dir && seen.insert(ino) {
                                    queue.push_back((ino, child));
                                }
                            }
                        }
                        pos += rec_len;
                    }
                }
            }
        }
        found
    }
}
