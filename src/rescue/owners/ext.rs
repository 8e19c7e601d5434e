//! ext2/3/4: which inodes and which group structures own unreadable bytes.
//!
//! Walks the group descriptors (superblocks and their backups, descriptor tables,
//! bitmaps, inode tables), then every in-use inode's extent tree or block map, then
//! the directory tree from the root inode 2 for the paths of the hit inodes. Reads
//! that fail (the disk is damaged) become warnings, and every count read from disk is
//! bounded before it sizes a loop or an allocation.

use super::bad::BadSet;
use super::{le16, le32, DamageReport, DamagedFile, DamagedMeta, OwnerError, Warnings};
use crate::device::BlockDevice;
use crate::rescue::BadRange;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

const FS: &str = "ext";
const EXT4_EXTENTS_FL: u64 = 0x80000;
const EXT4_INLINE_DATA_FL: u64 = 0x1000_0000;
const INCOMPAT_FILETYPE: u64 = 0x2;
const INCOMPAT_META_BG: u64 = 0x10;
const INCOMPAT_64BIT: u64 = 0x80;
const RO_COMPAT_SPARSE_SUPER: u64 = 0x1;
const RO_COMPAT_GDT_CSUM: u64 = 0x10;
const RO_COMPAT_METADATA_CSUM: u64 = 0x400;
const COMPAT_SPARSE_SUPER2: u64 = 0x200;
const BG_INODE_UNINIT: u64 = 0x1;
/// Bounds that keep a garbage superblock from becoming a hang.
const MAX_GROUPS: u64 = 1 << 22;
const MAX_EXTENT_DEPTH: u32 = 5;
const MAX_BLOCK_RUNS_PER_FILE: usize = 1 << 20;
const MAX_DIR_BYTES: u64 = 64 << 20;
const MAX_DIR_ENTRIES: u64 = 20_000_000;
const TABLE_READ: u64 = 1 << 20;

/// True when the ext magic sits at byte 1080.
pub fn looks_like_ext(dev: &dyn BlockDevice) -> bool {
    superblock_places().any(|(at, _)| {
        dev.read_vec(at, 1024)
            .ok()
            .and_then(|b| le16(&b, 56))
            .is_some_and(|m| m == 0xEF53)
    })
}

/// Where a superblock may be found: the primary, then group 1's backup for each
/// block size mke2fs uses (the first group holds 8 * block_size blocks). The
/// second value is the block the descriptor table follows, in that block size.
fn superblock_places() -> impl Iterator<Item = (u64, Option<(u64, u64)>)> {
    std::iter::once((1024, None)).chain([1024u64, 2048, 4096].into_iter().map(|bs| {
        let block = bs * 8 + u64::from(bs == 1024);
        (block * bs, Some((bs, block)))
    }))
}

/// (logical block, physical block, count) runs of a file's data.
type Runs = Vec<(u64, u64, u64)>;

struct Sb {
    bs: u64,
    blocks: u64,
    first_data_block: u64,
    bpg: u64,
    ipg: u64,
    inode_size: u64,
    desc_size: u64,
    groups: u64,
    incompat: u64,
    ro_compat: u64,
    compat: u64,
    first_ino: u64,
    reserved_gdt: u64,
    backup_bgs: [u64; 2],
}

struct Desc {
    block_bitmap: u64,
    inode_bitmap: u64,
    inode_table: u64,
    flags: u64,
    itable_unused: u64,
}

struct Ext<'a> {
    dev: &'a dyn BlockDevice,
    sb: Sb,
    descs: Vec<Desc>,
    warnings: Warnings,
}

fn bad_field(dev: &dyn BlockDevice, field: &'static str, value: u64) -> OwnerError {
    OwnerError::BadField {
        device: dev.describe(),
        fs: FS,
        field,
        value,
    }
}

fn parse_sb(dev: &dyn BlockDevice, at: u64) -> Result<Sb, OwnerError> {
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

fn is_power_of(mut n: u64, p: u64) -> bool {
    while n > 1 && n % p == 0 {
        n /= p;
    }
    n == 1
}

impl<'a> Ext<'a> {
    fn open(dev: &'a dyn BlockDevice) -> Result<Self, OwnerError> {
        let mut warnings = Warnings::default();
        let mut found = None;
        let mut first_err = None;
        for (at, backup) in superblock_places() {
            match parse_sb(dev, at) {
                // A backup only counts if its block size is the one it was looked for at.
                Ok(sb) if backup.map_or(true, |(bs, _)| bs == sb.bs) => {
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
            Some((_, block)) => {
                warnings.push(format!(
                    "primary superblock unusable; used the backup at block {block} (group 1)"
                ));
                block + 1
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

    fn has_super(&self, g: u64) -> bool {
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

    /// Group structures hit by bad bytes, in disk order of discovery.
    fn metadata(&mut self, bad: &BadSet, out: &mut Vec<DamagedMeta>) -> HashSet<u64> {
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
        if self.sb.incompat & INCOMPAT_META_BG != 0 {
            self.warnings.push(
                "meta_bg descriptor placement is not examined; only group 0's table is named"
                    .into(),
            );
        }
        let itable_blocks = (self.sb.ipg * self.sb.inode_size).div_ceil(bs);
        for g in 0..self.sb.groups {
            let first = self.sb.first_data_block + g * self.sb.bpg;
            if self.has_super(g) {
                if g > 0 {
                    push(format!("backup superblock in group {g}"), first, 1, out);
                }
                if g == 0 || self.sb.incompat & INCOMPAT_META_BG == 0 {
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
            push(format!("block bitmap of group {g}"), d.block_bitmap, 1, out);
            push(format!("inode bitmap of group {g}"), d.inode_bitmap, 1, out);
            let n = bad.hits(d.inode_table.saturating_mul(bs), itable_blocks * bs);
            if n > 0 {
                let lo = g * self.sb.ipg + 1;
                out.push(DamagedMeta {
                    what: format!(
                        "inode table of group {g} (inodes {lo}-{})",
                        lo + self.sb.ipg - 1
                    ),
                    bad_bytes: n,
                });
                for i in 0..self.sb.ipg {
                    let at = d
                        .inode_table
                        .saturating_mul(bs)
                        .saturating_add(i * self.sb.inode_size);
                    if bad.hits(at, self.sb.inode_size) > 0 {
                        record_hit_inodes.insert(lo + i);
                    }
                }
            }
        }
        record_hit_inodes
    }

    /// Calls `f(ino, raw_inode)` for every in-use inode whose record could be read.
    fn for_each_inode(&mut self, mut f: impl FnMut(&mut Self, u64, &[u8])) {
        let isz = self.sb.inode_size;
        let uninit_tracked =
            self.sb.ro_compat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM) != 0;
        for g in 0..self.sb.groups {
            let Some(d) = self.descs.get(g as usize) else {
                break;
            };
            let (table, flags, unused) = (d.inode_table, d.flags, d.itable_unused);
            let mut count = self.sb.ipg;
            if uninit_tracked {
                if flags & BG_INODE_UNINIT != 0 {
                    continue;
                }
                count = count.saturating_sub(unused);
            }
            let total = count * isz;
            let mut done = 0u64;
            while done < total {
                let len = (total - done).min(TABLE_READ);
                let at = table.saturating_mul(self.sb.bs).saturating_add(done);
                let first = g * self.sb.ipg + done / isz + 1;
                match self.dev.read_vec(at, len as usize) {
                    Ok(buf) => {
                        for (k, raw) in buf.chunks_exact(isz as usize).enumerate() {
                            visit(self, &mut f, first + k as u64, raw);
                        }
                    }
                    Err(_) => {
                        // A bad sector must not hide the other inodes of the piece:
                        // read them one by one and skip only the unreadable ones.
                        for k in 0..len / isz {
                            match self.dev.read_vec(at + k * isz, isz as usize) {
                                Ok(raw) => visit(self, &mut f, first + k, &raw),
                                Err(e) => self.warnings.push(format!(
                                    "inode {} of group {g} unreadable: {e}",
                                    first + k
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

fn visit<'a>(
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

impl<'a> Ext<'a> {
    /// The inode's data as (logical block, physical block, count) runs, plus the
    /// blocks holding its mapping (extent index/leaf or indirect blocks).
    fn runs(&self, raw: &[u8]) -> Result<(Runs, Vec<u64>), String> {
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
                let p = le32(iblock, (i * 4) as usize).unwrap_or(0);
                if p != 0 {
                    runs.push((i, p, 1));
                }
            }
            let per = self.sb.bs / 4;
            let mut logical = 12u64;
            for (slot, level) in [(12usize, 1u32), (13, 2), (14, 3)] {
                let p = le32(iblock, slot * 4).unwrap_or(0);
                let span = per.saturating_pow(level);
                if p != 0 {
                    self.indirect(p, level, logical, &mut runs, &mut meta)?;
                }
                logical = logical.saturating_add(span);
            }
        }
        Ok((runs, meta))
    }

    fn extent_node(
        &self,
        node: &[u8],
        depth_left: u32,
        runs: &mut Vec<(u64, u64, u64)>,
        meta: &mut Vec<u64>,
    ) -> Result<(), String> {
        if le16(node, 0) != Some(0xF30A) {
            return Err("bad extent header magic".into());
        }
        let entries = le16(node, 2).unwrap_or(0);
        let depth = le16(node, 6).unwrap_or(0) as u32;
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
                let lblk = le32(e, 0).unwrap_or(0);
                let mut len = le16(e, 4).unwrap_or(0);
                if len > 32768 {
                    len -= 32768;
                }
                let start = le32(e, 8).unwrap_or(0) | le16(e, 6).unwrap_or(0) << 32;
                if len > 0 {
                    runs.push((lblk, start, len));
                }
            } else {
                let leaf = le32(e, 4).unwrap_or(0) | le16(e, 8).unwrap_or(0) << 32;
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

    fn indirect(
        &self,
        block: u64,
        level: u32,
        logical: u64,
        runs: &mut Vec<(u64, u64, u64)>,
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
            let p = le32(&buf, (i * 4) as usize).unwrap_or(0);
            if p == 0 {
                continue;
            }
            if runs.len() + meta.len() > MAX_BLOCK_RUNS_PER_FILE {
                return Err("too many blocks".into());
            }
            let l = logical.saturating_add(i.saturating_mul(span));
            if level == 1 {
                runs.push((l, p, 1));
            } else {
                self.indirect(p, level - 1, l, runs, meta)?;
            }
        }
        Ok(())
    }

    fn read_inode(&self, ino: u64) -> Option<Vec<u8>> {
        let idx = ino.checked_sub(1)?;
        let d = self.descs.get((idx / self.sb.ipg) as usize)?;
        let at = d
            .inode_table
            .checked_mul(self.sb.bs)?
            .checked_add((idx % self.sb.ipg) * self.sb.inode_size)?;
        self.dev.read_vec(at, self.sb.inode_size as usize).ok()
    }

    /// Paths of `wanted` inodes, by a breadth-first walk from the root (inode 2).
    fn paths(&mut self, wanted: &HashSet<u64>) -> HashMap<u64, String> {
        let mut found = HashMap::new();
        let mut seen = HashSet::from([2u64]);
        let mut queue = VecDeque::from([(2u64, String::new())]);
        let mut entries = 0u64;
        let filetype = self.sb.incompat & INCOMPAT_FILETYPE != 0;
        while let Some((dir, path)) = queue.pop_front() {
            if found.len() == wanted.len() {
                break;
            }
            let Some(raw) = self.read_inode(dir) else {
                self.warnings
                    .push(format!("directory inode {dir} ({path}/) unreadable"));
                continue;
            };
            let size = le32(&raw, 4).unwrap_or(0) | le32(&raw, 0x6C).unwrap_or(0) << 32;
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
            for (_, phys, len) in runs {
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
                        let ino = le32(&block, pos).unwrap_or(0);
                        let rec_len = le16(&block, pos + 4).unwrap_or(0) as usize;
                        let (name_len, ftype) = if filetype {
                            (block[pos + 6] as usize, block[pos + 7])
                        } else {
                            (le16(&block, pos + 6).unwrap_or(0) as usize, 0)
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
        for (_, phys, len) in runs {
            n = n.saturating_add(set.hits(phys.saturating_mul(bs), len.saturating_mul(bs)));
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
