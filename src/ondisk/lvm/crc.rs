//! lvm2's `calc_crc`: the reflected CRC-32 polynomial without the final inversion,
//! seeded with `INITIAL_CRC`. crc32fast computes the standard CRC-32 (inverted on
//! entry and exit), so the seed and the result are inverted around it.

/// lvm2's `INITIAL_CRC`.
const INITIAL_CRC: u32 = 0xf597_a6cf;

pub(super) fn calc_crc(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(!INITIAL_CRC);
    h.update(bytes);
    !h.finalize()
}
