//! Group descriptor and superblock checksums. A descriptor whose checksum fails cannot be
//! trusted to say where its bitmap is or that the bitmap was never written (BLOCK_UNINIT),
//! so the caller treats that group conservatively.
//!
//! `uninit_bg` (GDT_CSUM) uses crc16 (the ARC polynomial seeded with ~0, i.e. MODBUS) over
//! uuid, group number and descriptor; `metadata_csum` uses raw crc32c (no final inversion)
//! seeded from the uuid or `s_checksum_seed`, truncated to 16 bits.

use crate::ondisk::ext::features::EXT4_FEATURE_INCOMPAT_CSUM_SEED;
use crate::ondisk::ext::group_desc::BG_CHECKSUM;
use crate::ondisk::ext::superblock::S_CHECKSUM;
use crate::ondisk::ext::Superblock;
use crc::{Algorithm, Crc, CRC_16_MODBUS};

/// crc32c without the final xor, so values chain like the kernel's `ext4_chksum()`.
const CRC32C_RAW: Algorithm<u32> = Algorithm {
    width: 32,
    poly: 0x1edc_6f41,
    init: 0xffff_ffff,
    refin: true,
    refout: true,
    xorout: 0,
    check: 0,
    residue: 0,
};
static CRC32C: Crc<u32> = Crc::<u32>::new(&CRC32C_RAW);
static CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_MODBUS);

/// Continues a raw crc32c from `seed` over `data`.
pub fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    // The crate reflects the initial value of a reflected algorithm; undo that so `seed`
    // is the raw register, as in the kernel.
    let mut d = CRC32C.digest_with_initial(seed.reverse_bits());
    d.update(data);
    d.finalize()
}

/// The metadata_csum seed: stored, or derived from the uuid.
pub fn csum_seed(sb: &Superblock) -> u32 {
    if sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_CSUM_SEED != 0 {
        sb.s_checksum_seed
    } else {
        crc32c_raw(!0, &sb.s_uuid)
    }
}

/// The checksum a descriptor should carry, or `None` when the filesystem has none.
pub fn group_desc_csum(sb: &Superblock, seed: u32, group: u32, desc: &[u8]) -> Option<u16> {
    let g = group.to_le_bytes();
    let size = (sb.desc_size() as usize).min(desc.len());
    let head = desc.get(..BG_CHECKSUM)?;
    let tail = desc.get(BG_CHECKSUM + 2..size).unwrap_or(&[]);
    if sb.metadata_csum() {
        let mut c = crc32c_raw(seed, &g);
        c = crc32c_raw(c, head);
        c = crc32c_raw(c, &[0, 0]);
        c = crc32c_raw(c, tail);
        Some((c & 0xffff) as u16)
    } else if sb.has_group_desc_csum() {
        let mut d = CRC16.digest();
        d.update(&sb.s_uuid);
        d.update(&g);
        d.update(head);
        // Old 32-byte descriptors have nothing after the checksum; 64-byte ones do.
        if sb.is_64bit() {
            d.update(tail);
        }
        Some(d.finalize())
    } else {
        None
    }
}

/// True when the superblock checksum is present and wrong.
pub fn superblock_csum_bad(sb: &Superblock) -> bool {
    if !sb.metadata_csum() {
        return false;
    }
    match sb.raw.get(..S_CHECKSUM) {
        Some(b) => crc32c_raw(!0, b) != sb.s_checksum,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_and_chains() {
        // Standard crc32c("123456789") = 0xE3069283 = !raw(~0, ...).
        assert_eq!(!crc32c_raw(!0, b"123456789"), 0xE306_9283);
        let a = crc32c_raw(!0, b"12345");
        assert_eq!(crc32c_raw(a, b"6789"), crc32c_raw(!0, b"123456789"));
    }
}
