//! The FAT32 FSInfo sector (`BPB_FSInfo`, usually sector 1): a free-cluster count and
//! a next-free hint that only speed up allocation; the FAT is the truth.

use crate::bytes::{le32, put};

const FSI_LEAD_SIG: usize = 0;
const FSI_STRUC_SIG: usize = 484;
const FSI_FREE_COUNT: usize = 488;
const FSI_NXT_FREE: usize = 492;
const FSI_TRAIL_SIG: usize = 508;
/// What the specification says `FSI_Free_Count` and `FSI_Nxt_Free` hold when unknown.
const UNKNOWN: u32 = u32::MAX;

/// True when `b` is an FSInfo sector: its three signatures are in place.
pub fn is_valid(b: &[u8]) -> bool {
    le32(b, FSI_LEAD_SIG) == Some(0x4161_5252)
        && le32(b, FSI_STRUC_SIG) == Some(0x6141_7272)
        && le32(b, FSI_TRAIL_SIG) == Some(0xAA55_0000)
}

/// Sets the free count to `free` (`None`: unknown) and the next-free hint to unknown,
/// as the specification allows; `false` when `b` is too short to hold them.
pub fn set_hints(b: &mut [u8], free: Option<u32>) -> bool {
    put(b, FSI_FREE_COUNT, &free.unwrap_or(UNKNOWN).to_le_bytes())
        && put(b, FSI_NXT_FREE, &UNKNOWN.to_le_bytes())
}
