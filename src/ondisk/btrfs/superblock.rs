//! `btrfs_super_block`: the primary copy at 64 KiB and its mirrors at 64 MiB and
//! 256 GiB, each 4 KiB and crc32c-checked. Besides the tree roots it carries
//! `sys_chunk_array`, the CHUNK_ITEMs of the system chunks, without which the chunk
//! tree (which maps every other logical address) cannot be found.

use super::chunk_item::ChunkItem;
use super::csum::{self, BTRFS_CSUM_TYPE_CRC32};
use super::key::{Key, BTRFS_CHUNK_ITEM_KEY, LEN as KEY_LEN};
use super::DecodeError;
use crate::bytes::{le16, le32, le64, u8_at};

pub const BTRFS_SUPER_INFO_SIZE: usize = 4096;
/// Primary and mirror offsets; a mirror exists when it fits on the device.
pub const BTRFS_SUPER_MIRRORS: [u64; 3] = [64 << 10, 64 << 20, 256 << 30];
pub const BTRFS_MAGIC: &[u8; 8] = b"_BHRfS_M";
/// The tree levels a btrfs can have (0 = leaf).
pub const BTRFS_MAX_LEVEL: u8 = 8;

const BYTENR: usize = 48;
const MAGIC: usize = 64;
const GENERATION: usize = 72;
const ROOT: usize = 80;
const CHUNK_ROOT: usize = 88;
const LOG_ROOT: usize = 96;
const TOTAL_BYTES: usize = 112;
const BYTES_USED: usize = 120;
const NUM_DEVICES: usize = 136;
const SECTORSIZE: usize = 144;
const NODESIZE: usize = 148;
const SYS_CHUNK_ARRAY_SIZE: usize = 160;
const INCOMPAT_FLAGS: usize = 188;
const CSUM_TYPE: usize = 196;
const ROOT_LEVEL: usize = 198;
const CHUNK_ROOT_LEVEL: usize = 199;
const DEV_ITEM: usize = 201;
const DEV_ITEM_DEVID: usize = DEV_ITEM;
const DEV_ITEM_TOTAL_BYTES: usize = DEV_ITEM + 8;
const FSID: usize = 32;
const METADATA_UUID: usize = 571;
const SYS_CHUNK_ARRAY: usize = 811;
const SYS_CHUNK_ARRAY_MAX: usize = 2048;

/// `incompat_flags` bits the map must know about.
pub const BTRFS_FEATURE_INCOMPAT_METADATA_UUID: u64 = 1 << 10;
pub const BTRFS_FEATURE_INCOMPAT_ZONED: u64 = 1 << 12;
pub const BTRFS_FEATURE_INCOMPAT_EXTENT_TREE_V2: u64 = 1 << 13;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Where this copy was read (byte offset on the device).
    pub at: u64,
    pub fsid: [u8; 16],
    /// The fsid tree blocks carry: `metadata_uuid` when that feature is on.
    pub metadata_fsid: [u8; 16],
    pub bytenr: u64,
    pub generation: u64,
    pub root: u64,
    pub chunk_root: u64,
    pub log_root: u64,
    pub total_bytes: u64,
    pub bytes_used: u64,
    pub num_devices: u64,
    pub sectorsize: u32,
    pub nodesize: u32,
    pub incompat_flags: u64,
    pub csum_type: u16,
    pub root_level: u8,
    pub chunk_root_level: u8,
    pub dev_item_devid: u64,
    /// This device's size as the filesystem uses it.
    pub dev_item_total_bytes: u64,
    /// The bootstrap chunks (system chunks) from `sys_chunk_array`.
    pub sys_chunks: Vec<(Key, ChunkItem)>,
}

fn bad(at: u64, field: &'static str, value: u64, why: &'static str) -> DecodeError {
    DecodeError::Superblock {
        at,
        field,
        value,
        why,
    }
}

impl Superblock {
    /// Decodes the copy read at byte `at`. The checksum is verified only for
    /// `csum_type` crc32c; other types are reported by `csum_type` for the caller
    /// to refuse.
    pub fn parse(b: &[u8], at: u64) -> Result<Self, DecodeError> {
        if b.get(MAGIC..MAGIC + 8) != Some(&BTRFS_MAGIC[..]) {
            return Err(DecodeError::NotBtrfs { at });
        }
        let short = |field| bad(at, field, b.len() as u64, "past the end of the block read");
        let u64f = |off, f| le64(b, off).ok_or_else(|| short(f));
        let u32f = |off, f| le32(b, off).ok_or_else(|| short(f));
        let u8f = |off, f| u8_at(b, off).ok_or_else(|| short(f));
        if b.len() < BTRFS_SUPER_INFO_SIZE {
            return Err(short("size"));
        }
        let csum_type = le16(b, CSUM_TYPE).ok_or_else(|| short("csum_type"))?;
        if csum_type == BTRFS_CSUM_TYPE_CRC32 {
            csum::verify(&b[..BTRFS_SUPER_INFO_SIZE], "superblock", at)?;
        }
        let bytenr = u64f(BYTENR, "bytenr")?;
        if bytenr != at {
            return Err(bad(at, "bytenr", bytenr, "not the offset it was read at"));
        }
        let sectorsize = u32f(SECTORSIZE, "sectorsize")?;
        if !(512..=65536).contains(&sectorsize) || !sectorsize.is_power_of_two() {
            let why = "not a power of two in 512..=65536";
            return Err(bad(at, "sectorsize", u64::from(sectorsize), why));
        }
        let nodesize = u32f(NODESIZE, "nodesize")?;
        if nodesize < sectorsize || nodesize > 65536 || !nodesize.is_power_of_two() {
            let why = "not a power of two in sectorsize..=65536";
            return Err(bad(at, "nodesize", u64::from(nodesize), why));
        }
        let root_level = u8f(ROOT_LEVEL, "root_level")?;
        let chunk_root_level = u8f(CHUNK_ROOT_LEVEL, "chunk_root_level")?;
        for (f, v) in [
            ("root_level", root_level),
            ("chunk_root_level", chunk_root_level),
        ] {
            if v >= BTRFS_MAX_LEVEL {
                return Err(bad(at, f, u64::from(v), "not below BTRFS_MAX_LEVEL (8)"));
            }
        }
        let num_devices = u64f(NUM_DEVICES, "num_devices")?;
        if num_devices == 0 {
            return Err(bad(at, "num_devices", 0, "zero"));
        }
        let incompat_flags = u64f(INCOMPAT_FLAGS, "incompat_flags")?;
        let fsid: [u8; 16] = crate::bytes::array(b, FSID).ok_or_else(|| short("fsid"))?;
        let metadata_fsid = if incompat_flags & BTRFS_FEATURE_INCOMPAT_METADATA_UUID != 0 {
            crate::bytes::array(b, METADATA_UUID).ok_or_else(|| short("metadata_uuid"))?
        } else {
            fsid
        };
        let size = u32f(SYS_CHUNK_ARRAY_SIZE, "sys_chunk_array_size")? as usize;
        if size > SYS_CHUNK_ARRAY_MAX {
            let why = "above the array's 2048 bytes";
            return Err(bad(at, "sys_chunk_array_size", size as u64, why));
        }
        let array = b
            .get(SYS_CHUNK_ARRAY..SYS_CHUNK_ARRAY + size)
            .ok_or_else(|| short("sys_chunk_array"))?;
        Ok(Superblock {
            at,
            fsid,
            metadata_fsid,
            bytenr,
            generation: u64f(GENERATION, "generation")?,
            root: u64f(ROOT, "root")?,
            chunk_root: u64f(CHUNK_ROOT, "chunk_root")?,
            log_root: u64f(LOG_ROOT, "log_root")?,
            total_bytes: u64f(TOTAL_BYTES, "total_bytes")?,
            bytes_used: u64f(BYTES_USED, "bytes_used")?,
            num_devices,
            sectorsize,
            nodesize,
            incompat_flags,
            csum_type,
            root_level,
            chunk_root_level,
            dev_item_devid: u64f(DEV_ITEM_DEVID, "dev_item.devid")?,
            dev_item_total_bytes: u64f(DEV_ITEM_TOTAL_BYTES, "dev_item.total_bytes")?,
            sys_chunks: parse_sys_chunk_array(array)?,
        })
    }
}

/// `sys_chunk_array`: (disk key, CHUNK_ITEM with its stripes) pairs, back to back.
fn parse_sys_chunk_array(a: &[u8]) -> Result<Vec<(Key, ChunkItem)>, DecodeError> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < a.len() {
        let err = |why| DecodeError::SysChunkArray { offset: off, why };
        let key = Key::parse(a, off).ok_or_else(|| err("a key runs past the array"))?;
        if key.item_type != BTRFS_CHUNK_ITEM_KEY {
            return Err(err("an entry that is not a CHUNK_ITEM"));
        }
        let item_at = off + KEY_LEN;
        let chunk = ChunkItem::parse(a.get(item_at..).unwrap_or(&[]), key.offset)?;
        out.push((key, chunk.0));
        off = item_at + chunk.1;
    }
    if out.is_empty() {
        return Err(DecodeError::SysChunkArray {
            offset: 0,
            why: "empty: no system chunk to find the chunk tree in",
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ondisk::btrfs::chunk_item::tests::chunk;

    fn sample() -> Vec<u8> {
        let mut b = vec![0u8; BTRFS_SUPER_INFO_SIZE];
        b[MAGIC..MAGIC + 8].copy_from_slice(BTRFS_MAGIC);
        b[BYTENR..BYTENR + 8].copy_from_slice(&(64u64 << 10).to_le_bytes());
        b[NUM_DEVICES..NUM_DEVICES + 8].copy_from_slice(&1u64.to_le_bytes());
        b[SECTORSIZE..SECTORSIZE + 4].copy_from_slice(&4096u32.to_le_bytes());
        b[NODESIZE..NODESIZE + 4].copy_from_slice(&16384u32.to_le_bytes());
        let mut entry = vec![0u8; KEY_LEN];
        entry[0..8].copy_from_slice(&256u64.to_le_bytes());
        entry[8] = BTRFS_CHUNK_ITEM_KEY;
        entry[9..17].copy_from_slice(&(22u64 << 20).to_le_bytes());
        entry.extend(chunk(8 << 20, 2 | 32, &[(1, 1 << 20), (1, 9 << 20)]));
        b[SYS_CHUNK_ARRAY..SYS_CHUNK_ARRAY + entry.len()].copy_from_slice(&entry);
        let n = entry.len() as u32;
        b[SYS_CHUNK_ARRAY_SIZE..SYS_CHUNK_ARRAY_SIZE + 4].copy_from_slice(&n.to_le_bytes());
        csum::seal(&mut b);
        b
    }

    #[test]
    fn decodes_the_bootstrap_chunks() {
        let sb = Superblock::parse(&sample(), 64 << 10).unwrap();
        assert_eq!(sb.nodesize, 16384);
        assert_eq!(sb.sys_chunks.len(), 1);
        assert_eq!(sb.sys_chunks[0].1.logical, 22 << 20);
        assert_eq!(sb.metadata_fsid, sb.fsid);
    }

    #[test]
    fn refuses_each_bad_field_by_name() {
        type Edit = fn(&mut Vec<u8>);
        let cases: [(Edit, &str); 5] = [
            (|b| b[BYTENR] = 1, "bytenr"),
            (|b| b[SECTORSIZE + 1] = 0x11, "sectorsize"),
            (
                |b| b[NODESIZE..NODESIZE + 4].copy_from_slice(&512u32.to_le_bytes()),
                "nodesize",
            ),
            (|b| b[ROOT_LEVEL] = 8, "root_level"),
            (
                |b| b[SYS_CHUNK_ARRAY_SIZE + 1] = 0x10,
                "sys_chunk_array_size",
            ),
        ];
        for (edit, field) in cases {
            let mut b = sample();
            edit(&mut b);
            csum::seal(&mut b);
            match Superblock::parse(&b, 64 << 10) {
                Err(DecodeError::Superblock { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut b = sample();
        b[SYS_CHUNK_ARRAY + 8] = 1;
        csum::seal(&mut b);
        assert!(matches!(
            Superblock::parse(&b, 64 << 10),
            Err(DecodeError::SysChunkArray { offset: 0, .. })
        ));
        let mut b = sample();
        b[400] = 1;
        assert!(matches!(
            Superblock::parse(&b, 64 << 10),
            Err(DecodeError::Csum { .. })
        ));
        assert!(matches!(
            Superblock::parse(&b[..100], 0),
            Err(DecodeError::Superblock { field: "size", .. })
        ));
        assert!(matches!(
            Superblock::parse(&[0; 100], 0),
            Err(DecodeError::NotBtrfs { .. })
        ));
    }
}
