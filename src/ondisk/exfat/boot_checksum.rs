//! The boot checksum sector (sector 11 of each boot region): the checksum of
//! sectors 0-10, repeated as 32-bit words over the whole sector. A mismatch means the
//! boot region is torn or was edited without updating it; Windows then refuses to
//! mount, so imaging refuses to trust the layout too.

use super::DecodeError;
use crate::bytes::le32;

/// Sectors in one boot region: main boot, 8 extended boot, OEM parameters, reserved,
/// and the checksum sector.
pub const BOOT_REGION_SECTORS: u64 = 12;
/// Sectors the checksum covers.
const CHECKSUMMED_SECTORS: usize = 11;
/// `VolumeFlags` (2 bytes) and `PercentInUse`: they change while mounted, so the
/// checksum skips them.
const SKIPPED: [usize; 3] = [106, 107, 112];

/// The specification's `BootChecksum` over `sectors` (sectors 0-10, `sector_size` each).
pub fn boot_checksum(sectors: &[u8], sector_size: usize) -> Option<u32> {
    let region = sectors.get(..sector_size.checked_mul(CHECKSUMMED_SECTORS)?)?;
    Some(
        region
            .iter()
            .enumerate()
            .filter(|(i, _)| !SKIPPED.contains(i))
            .fold(0u32, |sum, (_, &b)| {
                sum.rotate_right(1).wrapping_add(u32::from(b))
            }),
    )
}

/// Rewrites the checksum sector of `region` (12 sectors) after sectors 0-10 changed.
/// `None` when `region` is shorter than 12 sectors.
pub fn seal(region: &mut [u8], sector_size: usize) -> Option<()> {
    let sum = boot_checksum(region, sector_size)?;
    let start = sector_size.checked_mul(CHECKSUMMED_SECTORS)?;
    let sector = region.get_mut(start..start.checked_add(sector_size)?)?;
    for w in sector.chunks_exact_mut(4) {
        w.copy_from_slice(&sum.to_le_bytes());
    }
    Some(())
}

/// Checks that `region` (the 12 sectors of one boot region) carries a checksum
/// sector that matches sectors 0-10. `which` names the region in the error.
pub fn verify(region: &[u8], sector_size: usize, which: &'static str) -> Result<(), DecodeError> {
    let need = sector_size.saturating_mul(12);
    let short = DecodeError::BootRegionShort {
        got: region.len(),
        need,
    };
    let computed = boot_checksum(region, sector_size).ok_or(short)?;
    let start = sector_size * CHECKSUMMED_SECTORS;
    for offset in (start..start + sector_size).step_by(4) {
        let found = le32(region, offset).ok_or(DecodeError::BootRegionShort {
            got: region.len(),
            need,
        })?;
        if found != computed {
            return Err(DecodeError::BootChecksum {
                region: which,
                offset,
                found,
                computed,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(ss: usize) -> Vec<u8> {
        let mut r: Vec<u8> = (0..ss * 12).map(|i| (i * 7 % 251) as u8).collect();
        seal(&mut r, ss).unwrap();
        r
    }

    #[test]
    fn checksum_is_the_rotate_and_add_of_the_specification() {
        // One byte of 1 at position 0, then ten zero bytes: rotated right ten times.
        let mut s = vec![0u8; 512 * 11];
        s[0] = 1;
        assert_eq!(
            boot_checksum(&s, 512),
            Some(1u32.rotate_right(512 * 11 - 1 - 3))
        );
    }

    #[test]
    fn volume_flags_and_percent_in_use_are_skipped() {
        let mut r = region(512);
        assert!(verify(&r, 512, "main").is_ok());
        r[106] ^= 3;
        r[112] = 99;
        assert!(verify(&r, 512, "main").is_ok());
        r[105] ^= 1;
        assert!(matches!(
            verify(&r, 512, "main"),
            Err(DecodeError::BootChecksum { region: "main", .. })
        ));
    }

    #[test]
    fn every_word_of_the_checksum_sector_counts() {
        let mut r = region(4096);
        assert!(verify(&r, 4096, "backup").is_ok());
        let last = r.len() - 1;
        r[last] ^= 0x80;
        match verify(&r, 4096, "backup") {
            Err(DecodeError::BootChecksum { offset, .. }) => assert_eq!(offset, last - 3),
            other => panic!("{other:?}"),
        }
        assert!(seal(&mut r[..4096 * 11], 4096).is_none());
        assert!(matches!(
            verify(&r[..100], 4096, "backup"),
            Err(DecodeError::BootRegionShort { .. })
        ));
    }
}
