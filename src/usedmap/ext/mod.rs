//! ext2/3/4 used-block map, read from the superblock, the group descriptors and the block
//! bitmaps only (never the data, never the journal, never a replay).
//!
//! The bitmap is the truth: the superblock's free count is only compared and a mismatch
//! is a warning (partclone aborts on it, which leaves users with no backup at all).
//! Groups flagged BLOCK_UNINIT have no written bitmap; their used blocks are computed as
//! the metadata of any group (flex_bg moves bitmaps and inode tables) that falls inside.
//! A group whose descriptor checksum fails is copied whole: its bitmap location and flags
//! cannot be trusted, and copying too much is harmless while copying too little loses data.
//! The never-used tail of each inode table is marked used yet left out (see `itable`).

mod backup;
mod bitmap;
mod csum;
mod error;
pub(crate) mod files;
mod itable;

pub use error::ExtError;
pub use itable::mark_tails_unzeroed;

use crate::bytes::put;
use crate::device::BlockDevice;
use crate::ondisk::ext::layout::{self, Layout};
use crate::ondisk::ext::superblock::{
    SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, S_BLOCK_GROUP_NR, S_CHECKSUM,
};
use crate::ondisk::ext::{Check, GroupDesc, Superblock};
use crate::usedmap::{ExtentBuilder, PrimaryLost, UsedMap};

/// Per-group state is kept in memory (about 100 bytes a group), so the group count is
/// bounded: 2^22 groups is 512 TiB with 4 KiB blocks, far beyond any disk this images.
const MAX_GROUPS: u64 = 1 << 22;

/// Largest sequential read for descriptors or bitmaps (bounded memory on huge filesystems).
const MAX_RUN_BYTES: u64 = 8 << 20;

pub(super) fn read(
    dev: &dyn BlockDevice,
    offset: u64,
    len: u64,
    what: &str,
) -> Result<Vec<u8>, ExtError> {
    let err = |source| ExtError::Read {
        device: dev.describe(),
        what: what.into(),
        offset,
        source,
    };
    dev.check_range(offset, len).map_err(err)?;
    dev.read_vec(offset, len as usize).map_err(err)
}

/// Reads the blocks `locs` (in order) coalescing adjacent block numbers, and hands each
/// block's bytes to `f(index, bytes)`.
fn read_blocks_coalesced(
    dev: &dyn BlockDevice,
    bs: u64,
    locs: &[u64],
    what: &str,
    mut f: impl FnMut(usize, &[u8]) -> Result<(), ExtError>,
) -> Result<(), ExtError> {
    let max_blocks = (MAX_RUN_BYTES / bs).max(1);
    let mut i = 0;
    while i < locs.len() {
        let start = locs[i];
        let mut n = 1u64;
        while i + (n as usize) < locs.len()
            && n < max_blocks
            && locs[i + n as usize] == start.saturating_add(n)
        {
            n += 1;
        }
        let offset = start.checked_mul(bs).ok_or(ExtError::Overflow {
            device: dev.describe(),
            what: "a metadata block offset",
        })?;
        let buf = read(dev, offset, n * bs, what)?;
        for (k, chunk) in buf.chunks_exact(bs as usize).enumerate() {
            f(i + k, chunk)?;
        }
        i += n as usize;
    }
    Ok(())
}

/// Appends a run, extending the previous one when they touch (bitmaps of consecutive
/// groups are usually full at the boundary), to keep the run list short.
fn push_run(runs: &mut Vec<(u64, u64)>, start: u64, n: u64) {
    match runs.last_mut() {
        Some(last) if last.1 == start => last.1 += n,
        _ => runs.push((start, start + n)),
    }
}

/// Merges sorted-or-not `[start, end)` unit ranges.
fn merge(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Reads and validates the primary superblock.
pub(super) fn read_superblock(dev: &dyn BlockDevice) -> Result<Superblock, ExtError> {
    let sbuf = read(
        dev,
        SUPERBLOCK_OFFSET,
        SUPERBLOCK_SIZE as u64,
        "the superblock",
    )?;
    Ok(Superblock::parse(&sbuf, &dev.describe(), Check::Strict)?)
}

/// The block of each primary descriptor block, checked to lie inside the filesystem.
pub(super) fn descriptor_locs(
    sb: &Superblock,
    lay: &Layout,
    name: &str,
) -> Result<Vec<u64>, ExtError> {
    descriptor_locs_in(sb, lay, 0, name)
}

/// The block of each descriptor block of the copy that follows the superblock of
/// group `sb_group` (0: the primary), checked to lie inside the filesystem.
fn descriptor_locs_in(
    sb: &Superblock,
    lay: &Layout,
    sb_group: u64,
    name: &str,
) -> Result<Vec<u64>, ExtError> {
    let mut desc_locs = Vec::with_capacity(lay.desc_blocks as usize);
    for i in 0..lay.desc_blocks {
        let loc = layout::descriptor_block_loc_in(sb, lay, sb_group, i);
        if loc >= sb.s_blocks_count {
            return Err(ExtError::BadGroup {
                device: name.into(),
                group: i * lay.desc_per_block,
                field: "descriptor block",
                value: loc,
                why: "past the end of the filesystem",
            });
        }
        desc_locs.push(loc);
    }
    Ok(desc_locs)
}

/// Removes the sorted, disjoint ranges `cut` from the sorted, disjoint ranges `runs`.
fn subtract(runs: &[(u64, u64)], cut: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(runs.len());
    let mut j = 0;
    for &(mut s, e) in runs {
        while j < cut.len() && cut[j].1 <= s {
            j += 1;
        }
        let mut k = j;
        while s < e {
            match cut.get(k) {
                Some(&(cs, ce)) if cs < e => {
                    if cs > s {
                        out.push((s, cs));
                    }
                    s = s.max(ce);
                    k += 1;
                }
                _ => {
                    out.push((s, e));
                    break;
                }
            }
        }
    }
    out
}

/// The superblock to map from: the primary, or when it is unreadable or invalid the
/// first good backup (with the group it sits in and what was lost).
fn open_superblock(
    dev: &dyn BlockDevice,
) -> Result<(Superblock, u64, Option<PrimaryLost>), ExtError> {
    let name = dev.describe();
    let primary = read(
        dev,
        SUPERBLOCK_OFFSET,
        SUPERBLOCK_SIZE as u64,
        "the superblock",
    )
    .and_then(|b| Ok(Superblock::parse(&b, &name, Check::Strict)?));
    let err = match primary {
        Ok(sb) => return Ok((sb, 0, None)),
        Err(e) => e,
    };
    let Some((sb, c)) = crate::ondisk::ext::backup::find(dev) else {
        return Err(err);
    };
    if let Some(why) = backup::primary_contradicts(dev, &sb, &Layout::new(&sb), c.group) {
        return Err(ExtError::Unsupported {
            device: name,
            what: format!("{err}; {why}"),
        });
    }
    let why = match &err {
        ExtError::Read { source, .. } => format!("unreadable: {source}"),
        e => e.to_string(),
    };
    let lost = PrimaryLost {
        what: "superblock".into(),
        offset: SUPERBLOCK_OFFSET,
        len: SUPERBLOCK_SIZE as u64,
        why,
        backup_offset: c.offset,
        unit: c.block_size,
    };
    Ok((sb, c.group, Some(lost)))
}

/// When the primary superblock is lost: the backup superblock made into a primary
/// (`s_block_group_nr` 0, the metadata_csum checksum recomputed) and its offset. Its
/// counts stay those of the backup, which readers ignore.
pub(crate) fn primary_from_backup(dev: &dyn BlockDevice) -> Option<(u64, Vec<u8>)> {
    let (sb, _, lost) = open_superblock(dev).ok()?;
    lost?;
    let mut raw = sb.raw.clone();
    put(&mut raw, S_BLOCK_GROUP_NR, &[0, 0]);
    if sb.metadata_csum() {
        let c = csum::crc32c_raw(!0, raw.get(..S_CHECKSUM)?);
        put(&mut raw, S_CHECKSUM, &c.to_le_bytes());
    }
    Some((SUPERBLOCK_OFFSET, raw))
}

/// Maps an ext2/3/4 filesystem that starts at byte 0 of `dev`.
///
/// With the primary superblock lost, the map is read through the first good backup
/// superblock and the descriptors that follow it, as `e2fsck -b` does. Those copies
/// date from mke2fs (or the last resize or e2fsck), so their BLOCK_UNINIT flags may be
/// stale: like e2fsprogs opening a backup, every group's bitmap is then read, and the
/// group's computed metadata is copied as well in case the bitmap was never written.
pub fn map_ext(dev: &dyn BlockDevice) -> Result<UsedMap, ExtError> {
    let name = dev.describe();
    let (sb, sb_group, primary_lost) = open_superblock(dev)?;
    let bs = sb.block_size();
    let ratio = sb.cluster_ratio();
    let cs = sb.cluster_size();
    let fdb = u64::from(sb.s_first_data_block);
    let fs_bytes = sb.s_blocks_count * bs; // checked in validate
    if fs_bytes > dev.size() {
        return Err(ExtError::Truncated {
            device: name,
            fs_bytes,
            device_bytes: dev.size(),
        });
    }
    let mut warnings = Vec::new();
    if let Some(lost) = &primary_lost {
        warnings.push(format!("ext: {}", lost.line()));
    }
    if sb.needs_recovery() {
        warnings.push(
            "the journal has not been replayed (needs_recovery): the image is crash-consistent, \
             as after a power cut; it is not replayed here"
                .to_string(),
        );
    }
    if sb.has_errors() {
        warnings.push("the filesystem is marked as having errors (s_state); run e2fsck".into());
    }
    if csum::superblock_csum_bad(&sb) {
        warnings.push("superblock checksum mismatch (metadata_csum)".into());
    }

    let lay = Layout::new(&sb);
    let groups = lay.group_count;
    if groups > MAX_GROUPS {
        return Err(ExtError::BadField {
            device: name,
            field: "s_blocks_per_group",
            value: sb.s_blocks_per_group.into(),
            why: "gives more than 2^22 block groups (a corrupt group size, or a filesystem \
                  over 512 TiB with 4 KiB blocks)",
        });
    }
    if u64::from(sb.s_first_meta_bg) > lay.desc_blocks && sb.meta_bg() {
        return Err(ExtError::BadField {
            device: name,
            field: "s_first_meta_bg",
            value: sb.s_first_meta_bg.into(),
            why: "beyond the number of descriptor blocks",
        });
    }

    // Group descriptors.
    let dsz = sb.desc_size() as usize;
    let wide = sb.wide_descs();
    let desc_locs = descriptor_locs_in(&sb, &lay, sb_group, &name)?;
    let seed = csum::csum_seed(&sb);
    let mut descs: Vec<(GroupDesc, bool)> = Vec::with_capacity(groups as usize);
    read_blocks_coalesced(dev, bs, &desc_locs, "group descriptors", |_, blk| {
        for raw in blk.chunks_exact(dsz) {
            if descs.len() as u64 >= groups {
                break;
            }
            let g = descs.len() as u32;
            let d = GroupDesc::parse(raw, wide, &name, g.into())?;
            let ok = match csum::group_desc_csum(&sb, seed, g, raw) {
                Some(want) => want == d.bg_checksum,
                None => true,
            };
            descs.push((d, ok));
        }
        Ok(())
    })?;

    if descs.len() as u64 != groups {
        return Err(ExtError::BadField {
            device: name,
            field: "s_desc_size",
            value: sb.desc_size(),
            why: "descriptor blocks hold fewer descriptors than there are groups",
        });
    }

    // Bitmap units (blocks, or clusters with bigalloc) are counted from s_first_data_block.
    let units_total = (sb.s_blocks_count - fdb).div_ceil(ratio);
    let cpg = u64::from(sb.s_clusters_per_group_eff());
    let unit_of = |block: u64| (block - fdb) / ratio;

    // Metadata of every group, as unit ranges: needed for BLOCK_UNINIT groups.
    let itb = sb.inode_table_blocks();
    let mut meta: Vec<(u64, u64)> = Vec::with_capacity(groups as usize * 4);
    // Never-used inode-table tails: marked used in the bitmaps, never read (itable.rs).
    // Not through backup descriptors: their bg_itable_unused dates from mke2fs.
    let mut tails: Vec<(u64, u64)> = Vec::new();
    let tails_apply = itable::tails_apply(&sb) && primary_lost.is_none();
    let in_fs =
        |b: u64, n: u64| b >= fdb && b.checked_add(n).is_some_and(|e| e <= sb.s_blocks_count);
    for g in 0..groups {
        for (b, n) in layout::super_and_bgd(&sb, &lay, g) {
            let b = b.max(fdb);
            let e = b.saturating_add(n).min(sb.s_blocks_count);
            if e > b {
                meta.push((unit_of(b), unit_of(e - 1) + 1));
            }
        }
        let Some(&(d, true)) = descs.get(g as usize) else {
            continue;
        };
        for (field, b, n) in [
            ("bg_block_bitmap", d.bg_block_bitmap, 1),
            ("bg_inode_bitmap", d.bg_inode_bitmap, 1),
            ("bg_inode_table", d.bg_inode_table, itb),
        ] {
            if !in_fs(b, n) {
                return Err(ExtError::BadGroup {
                    device: name,
                    group: g,
                    field,
                    value: b,
                    why: "outside the filesystem",
                });
            }
            meta.push((unit_of(b), unit_of(b + n - 1) + 1));
        }
        // Only whole allocation units inside the tail can be left out.
        if let Some((b, n)) = itable::unused_tail(&sb, &d).filter(|_| tails_apply) {
            let s = (b - fdb).div_ceil(ratio);
            let e = (b + n - fdb) / ratio;
            if e > s {
                tails.push((s, e));
            }
        }
    }
    let meta = merge(meta);
    let tails = merge(tails);

    let mut unit_runs: Vec<(u64, u64)> = Vec::new();
    let mut to_read: Vec<(u64, u64)> = Vec::new(); // (group, bitmap block)
    let from_backup = primary_lost.is_some();
    let meta_in = |runs: &mut Vec<(u64, u64)>, u0: u64, u1: u64| {
        let first = meta.partition_point(|&(_, e)| e <= u0);
        for &(s, e) in meta.get(first..).unwrap_or(&[]) {
            if s >= u1 {
                break;
            }
            runs.push((s.max(u0), e.min(u1)));
        }
    };
    for g in 0..groups {
        let u0 = g * cpg;
        let u1 = (u0 + cpg).min(units_total);
        let (d, ok) = descs.get(g as usize).copied().unwrap_or_default();
        if !ok {
            warnings.push(format!(
                "group {g}: descriptor checksum mismatch; the whole group is copied"
            ));
            unit_runs.push((u0, u1));
        } else if sb.has_group_desc_csum() && d.block_uninit() && !from_backup {
            meta_in(&mut unit_runs, u0, u1);
        } else {
            if from_backup {
                meta_in(&mut unit_runs, u0, u1);
            }
            to_read.push((g, d.bg_block_bitmap));
        }
    }
    let locs: Vec<u64> = to_read.iter().map(|&(_, b)| b).collect();
    read_blocks_coalesced(dev, bs, &locs, "block bitmaps", |i, blk| {
        let Some(&(g, _)) = to_read.get(i) else {
            return Ok(());
        };
        let u0 = g * cpg;
        let u1 = (u0 + cpg).min(units_total);
        bitmap::for_each_set_run(blk, u1 - u0, |s, n| push_run(&mut unit_runs, u0 + s, n));
        Ok(())
    })?;

    // Metadata added beside a bitmap overlaps the bitmap's own runs.
    let unit_runs = if from_backup {
        merge(unit_runs)
    } else {
        unit_runs
    };
    let mut eb = ExtentBuilder::new();
    // The boot block and the superblock are always copied (with 1 KiB blocks block 0 is
    // outside every bitmap, yet boot loaders live there).
    eb.add(0, (fdb + 1).saturating_mul(bs).max(2048));
    let unit_runs = merge(unit_runs);
    // The used count is the bitmaps' (compared with the superblock below, and with
    // dumpe2fs and partclone); only the bytes to copy lose the tails.
    let used_units: u64 = unit_runs.iter().map(|&(s, e)| e - s).sum();
    for (s, e) in subtract(&unit_runs, &tails) {
        let off = (fdb + s * ratio) * bs;
        eb.add(off, (e - s) * cs);
    }

    // The superblock counts free blocks (clusters × ratio with bigalloc).
    let sb_used_units = units_total.saturating_sub(sb.s_free_blocks_count / ratio);
    // A backup's free count is as old as the backup: no news when it differs.
    if sb_used_units != used_units && !from_backup {
        warnings.push(format!(
            "the block bitmaps mark {used_units} allocation units used but the superblock's \
             s_free_blocks_count implies {sb_used_units}; the bitmaps are trusted"
        ));
    }

    Ok(UsedMap {
        block_size: cs,
        total_bytes: fs_bytes,
        used_bytes: used_units * cs + fdb * bs,
        extents: eb.finish(fs_bytes),
        raw: false,
        raw_reason: None,
        warnings,
        primary_lost,
        lvm: None,
        fs_sector: None,
    })
}

#[cfg(test)]
mod tests {
    use super::subtract;

    #[test]
    fn subtract_cuts_inside_across_and_around() {
        let runs = [(0, 10), (20, 30), (40, 50)];
        let cut = [(2, 4), (8, 22), (25, 26), (45, 60)];
        assert_eq!(
            subtract(&runs, &cut),
            vec![(0, 2), (4, 8), (22, 25), (26, 30), (40, 45)]
        );
        assert_eq!(subtract(&runs, &[]), runs.to_vec());
        assert_eq!(subtract(&[(5, 6)], &[(0, 100)]), vec![]);
    }
}
