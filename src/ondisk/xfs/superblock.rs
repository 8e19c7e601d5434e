//! The XFS primary superblock (`struct xfs_dsb`, sector 0 of AG 0): the geometry every
//! other read depends on. `parse` checks the magic, the version, the sizes and their
//! logarithms against each other, the v5 CRC, and refuses what the used map cannot
//! cover from this device alone (an external log, a realtime section) or does not know
//! (incompat features newer than this code, an unfinished mkfs).

use super::crc;
use super::XfsDecodeError;
use crate::bytes::{array, be16, be32, be64, u8_at};

/// "XFSB".
pub const XFS_SB_MAGIC: u32 = 0x5846_5342;
/// The superblock's fields end here (v5); older versions leave the rest zero.
pub const SB_LEN: usize = 264;

const SB_BLOCKSIZE: usize = 4;
const SB_DBLOCKS: usize = 8;
const SB_RBLOCKS: usize = 16;
const SB_REXTENTS: usize = 24;
const SB_UUID: usize = 32;
const SB_LOGSTART: usize = 48;
const SB_AGBLOCKS: usize = 84;
const SB_AGCOUNT: usize = 88;
const SB_LOGBLOCKS: usize = 96;
const SB_VERSIONNUM: usize = 100;
const SB_SECTSIZE: usize = 102;
const SB_FNAME: usize = 108;
const SB_BLOCKLOG: usize = 120;
const SB_SECTLOG: usize = 121;
const SB_AGBLKLOG: usize = 124;
const SB_INPROGRESS: usize = 126;
const SB_FDBLOCKS: usize = 144;
const SB_FEATURES_RO_COMPAT: usize = 212;
const SB_FEATURES_INCOMPAT: usize = 216;
/// `sb_crc`, little-endian, over the whole first sector.
pub const SB_CRC: usize = 224;
const SB_META_UUID: usize = 248;

const XFS_SB_VERSION_NUMBITS: u16 = 0x000f;
pub const XFS_SB_FEAT_RO_COMPAT_FINOBT: u32 = 1 << 0;
pub const XFS_SB_FEAT_RO_COMPAT_RMAPBT: u32 = 1 << 1;
pub const XFS_SB_FEAT_RO_COMPAT_REFLINK: u32 = 1 << 2;
pub const XFS_SB_FEAT_INCOMPAT_META_UUID: u32 = 1 << 2;
const XFS_SB_FEAT_INCOMPAT_NEEDSREPAIR: u32 = 1 << 4;
/// ftype, sparse inodes, meta_uuid, bigtime, needsrepair, nrext64, exchange-range,
/// parent pointers: none moves free space out of the per-AG bno trees. metadir
/// (1 << 8) comes with realtime groups and is left out until it can be tested.
const KNOWN_INCOMPAT: u32 = 0xff;

/// `XFS_MAX_SECTORSIZE` and the block size bounds of `xfs_format.h`.
const MAX_SECTSIZE: u64 = 32768;
const MIN_BLOCKSIZE: u64 = 512;
const MAX_BLOCKSIZE: u64 = 65536;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    pub sb_blocksize: u32,
    pub sb_dblocks: u64,
    pub sb_uuid: [u8; 16],
    pub sb_logstart: u64,
    pub sb_agblocks: u32,
    pub sb_agcount: u32,
    pub sb_logblocks: u32,
    pub sb_versionnum: u16,
    pub sb_sectsize: u16,
    pub sb_fname: [u8; 12],
    pub sb_fdblocks: u64,
    pub sb_features_ro_compat: u32,
    pub sb_features_incompat: u32,
    pub sb_meta_uuid: [u8; 16],
}

fn bad(field: &'static str, value: u64, why: &'static str) -> XfsDecodeError {
    XfsDecodeError::Superblock { field, value, why }
}

fn pow2_in(v: u64, lo: u64, hi: u64) -> bool {
    v.is_power_of_two() && (lo..=hi).contains(&v)
}

impl Superblock {
    /// Parses and validates the primary superblock from the first `sb_sectsize` bytes
    /// of the filesystem (at least `SB_LEN`; the CRC covers the whole sector, so pass
    /// it all once `sectsize` is known).
    pub fn parse(b: &[u8]) -> Result<Self, XfsDecodeError> {
        if b.len() < SB_LEN {
            return Err(XfsDecodeError::Short {
                structure: "superblock",
                len: b.len(),
                need: SB_LEN,
            });
        }
        let g32 = |o| be32(b, o).unwrap_or(0);
        let g64 = |o| be64(b, o).unwrap_or(0);
        let g8 = |o| u8_at(b, o).unwrap_or(0);
        let magic = g32(0);
        if magic != XFS_SB_MAGIC {
            return Err(XfsDecodeError::SuperblockMagic { value: magic });
        }
        let sb = Superblock {
            sb_blocksize: g32(SB_BLOCKSIZE),
            sb_dblocks: g64(SB_DBLOCKS),
            sb_uuid: array(b, SB_UUID).unwrap_or_default(),
            sb_logstart: g64(SB_LOGSTART),
            sb_agblocks: g32(SB_AGBLOCKS),
            sb_agcount: g32(SB_AGCOUNT),
            sb_logblocks: g32(SB_LOGBLOCKS),
            sb_versionnum: be16(b, SB_VERSIONNUM).unwrap_or(0),
            sb_sectsize: be16(b, SB_SECTSIZE).unwrap_or(0),
            sb_fname: array(b, SB_FNAME).unwrap_or_default(),
            sb_fdblocks: g64(SB_FDBLOCKS),
            sb_features_ro_compat: g32(SB_FEATURES_RO_COMPAT),
            sb_features_incompat: g32(SB_FEATURES_INCOMPAT),
            sb_meta_uuid: array(b, SB_META_UUID).unwrap_or_default(),
        };
        let version = sb.version();
        if version != 4 && version != 5 {
            return Err(bad(
                "sb_versionnum",
                sb.sb_versionnum.into(),
                "version is neither 4 nor 5",
            ));
        }
        let bs = u64::from(sb.sb_blocksize);
        if !pow2_in(bs, MIN_BLOCKSIZE, MAX_BLOCKSIZE)
            || 1u64.checked_shl(g8(SB_BLOCKLOG).into()) != Some(bs)
        {
            return Err(bad(
                "sb_blocksize",
                bs,
                "not a power of two in 512..=65536 matching sb_blocklog",
            ));
        }
        let ss = u64::from(sb.sb_sectsize);
        if !pow2_in(ss, 512, MAX_SECTSIZE.min(bs))
            || 1u64.checked_shl(g8(SB_SECTLOG).into()) != Some(ss)
        {
            return Err(bad(
                "sb_sectsize",
                ss,
                "not a power of two in 512..=block size matching sb_sectlog",
            ));
        }
        if sb.is_v5() {
            if b.len() < ss as usize {
                return Err(XfsDecodeError::Short {
                    structure: "superblock sector",
                    len: b.len(),
                    need: ss as usize,
                });
            }
            let sector = b.get(..ss as usize).unwrap_or(b);
            if let Some((stored, computed)) = crc::mismatch(sector, SB_CRC) {
                return Err(XfsDecodeError::SuperblockCrc { stored, computed });
            }
        }
        if g8(SB_INPROGRESS) != 0 {
            return Err(bad(
                "sb_inprogress",
                g8(SB_INPROGRESS).into(),
                "mkfs.xfs did not finish",
            ));
        }
        let agb = u64::from(sb.sb_agblocks);
        // XFS_MIN_AG_BLOCKS; sb_agblklog is log2 of agblocks rounded up.
        if agb < 64 || u64::from(g8(SB_AGBLKLOG)) != u64::from(agb.next_power_of_two().ilog2()) {
            return Err(bad(
                "sb_agblocks",
                agb,
                "below 64 blocks or not matching sb_agblklog",
            ));
        }
        let agc = u64::from(sb.sb_agcount);
        let full = agc.checked_mul(agb);
        let fits = full.is_some_and(|f| {
            sb.sb_dblocks <= f && f.checked_sub(agb).is_some_and(|lo| sb.sb_dblocks > lo)
        });
        if agc == 0 || !fits {
            return Err(bad(
                "sb_dblocks",
                sb.sb_dblocks,
                "does not end in the last of sb_agcount allocation groups",
            ));
        }
        if sb.sb_dblocks.checked_mul(bs).is_none() {
            return Err(bad("sb_dblocks", sb.sb_dblocks, "size overflows"));
        }
        if g64(SB_RBLOCKS) != 0 || g64(SB_REXTENTS) != 0 {
            return Err(XfsDecodeError::Unsupported {
                what: "a realtime section lives on another device (sb_rblocks > 0): the \
                       used map of this device alone cannot be whole"
                    .into(),
            });
        }
        if sb.sb_logstart == 0 {
            return Err(XfsDecodeError::Unsupported {
                what: "the log is on an external device (sb_logstart = 0): a restore of \
                       this device alone would not mount"
                    .into(),
            });
        }
        let log_end = sb.sb_logstart.checked_add(sb.sb_logblocks.into());
        // sb_logstart is an XFS_FSB (AG number shifted by sb_agblklog), not a block
        // count; its end must stay in the same AG.
        // sb_agblklog was checked above to be log2 of sb_agblocks (at most 32).
        let agblklog = u32::from(g8(SB_AGBLKLOG));
        let log_ag = sb.sb_logstart >> agblklog;
        let log_agbno = sb.sb_logstart & ((1u64 << agblklog) - 1);
        if sb.sb_logblocks == 0
            || log_end.is_none()
            || log_ag >= agc
            || log_agbno + u64::from(sb.sb_logblocks) > agb
        {
            return Err(bad(
                "sb_logstart",
                sb.sb_logstart,
                "the internal log does not lie inside one allocation group",
            ));
        }
        let unknown = sb.sb_features_incompat & !KNOWN_INCOMPAT;
        if sb.is_v5() && unknown != 0 {
            return Err(XfsDecodeError::Unsupported {
                what: format!("incompatible features {unknown:#x} are not understood"),
            });
        }
        if sb.is_v5() && sb.sb_features_incompat & XFS_SB_FEAT_INCOMPAT_NEEDSREPAIR != 0 {
            return Err(XfsDecodeError::Unsupported {
                what: "the filesystem is marked as needing xfs_repair (needsrepair)".into(),
            });
        }
        Ok(sb)
    }

    /// 4 or 5 (the CRC format).
    pub fn version(&self) -> u16 {
        self.sb_versionnum & XFS_SB_VERSION_NUMBITS
    }

    pub fn is_v5(&self) -> bool {
        self.version() == 5
    }

    pub fn block_size(&self) -> u64 {
        u64::from(self.sb_blocksize)
    }

    pub fn sector_size(&self) -> u64 {
        u64::from(self.sb_sectsize)
    }

    /// The filesystem's size in bytes (checked in `parse`).
    pub fn fs_bytes(&self) -> u64 {
        self.sb_dblocks.saturating_mul(self.block_size())
    }

    /// Blocks in AG `ag`: `sb_agblocks`, except the last, which holds the remainder.
    pub fn ag_blocks(&self, ag: u32) -> u64 {
        let start = u64::from(ag) * u64::from(self.sb_agblocks);
        self.sb_dblocks
            .saturating_sub(start)
            .min(self.sb_agblocks.into())
    }

    /// Byte offset of AG `ag`'s first block.
    pub fn ag_offset(&self, ag: u32) -> u64 {
        (u64::from(ag) * u64::from(self.sb_agblocks)).saturating_mul(self.block_size())
    }

    /// The UUID stamped into v5 metadata blocks: `sb_meta_uuid` once the user UUID was
    /// changed (`xfs_admin -U`), else `sb_uuid`.
    pub fn metadata_uuid(&self) -> [u8; 16] {
        if self.sb_features_incompat & XFS_SB_FEAT_INCOMPAT_META_UUID != 0 {
            self.sb_meta_uuid
        } else {
            self.sb_uuid
        }
    }

    pub fn has_feature_ro(&self, bit: u32) -> bool {
        self.is_v5() && self.sb_features_ro_compat & bit != 0
    }
}
