//! The LUKS1 partition header (`struct luks_phdr` in cryptsetup's `luks1/luks.h`):
//! 592 big-endian bytes at byte 0, then eight key slot descriptors. What a backup needs
//! from it is `payloadOffset` (where the encrypted data starts, in 512-byte sectors):
//! everything before it is header and key material, copied as it is.

use super::error::LuksError;
use super::text::{ascii_field, uuid_field};
use crate::bytes::be32;

/// `LUKS_PHDR_SIZE`: the bytes the decoder needs.
pub const PHDR_SIZE: usize = 592;
const SECTOR: u64 = 512;
const KEYBLOCK_AT: usize = 208;
const KEYBLOCK_SIZE: usize = 48;
const NUM_KEYS: usize = 8;
/// `LUKS_KEY_ENABLED` / `LUKS_KEY_DISABLED`: any other value is a damaged slot.
const KEY_ENABLED: u32 = 0x00AC_71F3;
const KEY_DISABLED: u32 = 0x0000_DEAD;
/// cryptsetup writes 4000 stripes; far more means a garbage slot, not a big one.
const MAX_STRIPES: u32 = 1 << 20;
/// `keyBytes` is the volume key length: 16, 32 or 64 in practice.
const MAX_KEY_BYTES: u32 = 512;

/// The decoded `phdr`, with the fields the image keeps or checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phdr {
    pub cipher_name: String,
    pub cipher_mode: String,
    pub hash_spec: String,
    /// `payloadOffset` in 512-byte sectors.
    pub payload_offset: u32,
    pub key_bytes: u32,
    pub uuid: String,
    /// Indexes of the enabled key slots.
    pub active_slots: Vec<usize>,
}

impl Phdr {
    /// Decodes `b` (at least [`PHDR_SIZE`] bytes from byte 0, magic and version already
    /// checked by the caller).
    pub fn decode(b: &[u8]) -> Result<Phdr, LuksError> {
        let bad = |field: &'static str, what: String| LuksError::Phdr { field, what };
        let short = || bad("phdr", format!("shorter than {PHDR_SIZE} bytes"));
        if b.len() < PHDR_SIZE {
            return Err(short());
        }
        let text = |field: &'static str, at: usize, len: usize| {
            b.get(at..at + len)
                .and_then(ascii_field)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad(field, "empty or not ASCII text".into()))
        };
        let cipher_name = text("cipherName", 8, 32)?;
        let cipher_mode = text("cipherMode", 40, 32)?;
        let hash_spec = text("hashSpec", 72, 32)?;
        let payload_offset = be32(b, 104).ok_or_else(short)?;
        let key_bytes = be32(b, 108).ok_or_else(short)?;
        if key_bytes == 0 || key_bytes > MAX_KEY_BYTES {
            return Err(bad("keyBytes", format!("{key_bytes} is not a key length")));
        }
        let uuid = b
            .get(168..208)
            .and_then(uuid_field)
            .ok_or_else(|| bad("uuid", "not a hyphenated hex UUID".into()))?;
        let mut active_slots = Vec::new();
        let mut slots_end = 1u64;
        for slot in 0..NUM_KEYS {
            let at = KEYBLOCK_AT + slot * KEYBLOCK_SIZE;
            let kb = b.get(at..at + KEYBLOCK_SIZE).ok_or_else(short)?;
            let (end, active) = keyblock_end(slot, kb, key_bytes)?;
            slots_end = slots_end.max(end);
            if active {
                active_slots.push(slot);
            }
        }
        // The payload must start after the key material, or restoring the header area
        // would not bring the key slots back (and the data would overwrite them).
        if u64::from(payload_offset) < slots_end {
            return Err(bad(
                "payloadOffset",
                format!("sector {payload_offset} is inside the key material (ends at sector {slots_end})"),
            ));
        }
        Ok(Phdr {
            cipher_name,
            cipher_mode,
            hash_spec,
            payload_offset,
            key_bytes,
            uuid,
            active_slots,
        })
    }

    /// `payloadOffset` in bytes.
    pub fn data_offset(&self) -> u64 {
        u64::from(self.payload_offset) * SECTOR
    }
}

/// One key slot (`struct { active, passwordIterations, passwordSalt[32],
/// keyMaterialOffset, stripes }`): the sector where its key material ends, and whether
/// it is enabled.
fn keyblock_end(slot: usize, kb: &[u8], key_bytes: u32) -> Result<(u64, bool), LuksError> {
    let bad = |field: &'static str, what: String| LuksError::Keyblock { slot, field, what };
    let short = || bad("keyblock", "short".into());
    let active = match be32(kb, 0).ok_or_else(short)? {
        KEY_ENABLED => true,
        KEY_DISABLED => false,
        v => {
            return Err(bad(
                "active",
                format!("{v:#010x} is neither enabled nor disabled"),
            ))
        }
    };
    let offset = be32(kb, 40).ok_or_else(short)?;
    let stripes = be32(kb, 44).ok_or_else(short)?;
    if stripes == 0 || stripes > MAX_STRIPES {
        return Err(bad("stripes", format!("{stripes} is out of range")));
    }
    // Both factors are bounded above, so the product fits easily in u64.
    let sectors = (u64::from(key_bytes) * u64::from(stripes)).div_ceil(SECTOR);
    Ok((u64::from(offset) + sectors, active))
}
