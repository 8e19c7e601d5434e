//! Turning block bitmaps into used allocation-unit runs. Bitmaps of neighbouring groups
//! are usually adjacent on disk (flex_bg packs them), so reads are coalesced into large
//! sequential runs: the whole map costs a handful of reads even on a big filesystem.

/// Calls `f(first_bit, count)` for every run of set bits among the first `nbits` bits.
pub fn for_each_set_run(bits: &[u8], nbits: u64, mut f: impl FnMut(u64, u64)) {
    let nbits = nbits.min(bits.len() as u64 * 8);
    let mut run_start: Option<u64> = None;
    let mut i = 0u64;
    while i < nbits {
        let byte = bits[(i / 8) as usize];
        // Whole bytes at once when aligned: most of a bitmap is 0x00 or 0xff.
        if i % 8 == 0 && i + 8 <= nbits && (byte == 0 || byte == 0xff) {
            match (byte, run_start) {
                (0xff, None) => run_start = Some(i),
                (0, Some(s)) => {
                    f(s, i - s);
                    run_start = None;
                }
                _ => {}
            }
            i += 8;
            continue;
        }
        let set = byte & (1 << (i % 8)) != 0;
        match (set, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(s)) => {
                f(s, i - s);
                run_start = None;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(s) = run_start {
        f(s, nbits - s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs() {
        let bits = [0b0000_0110u8, 0xff, 0x01, 0x00, 0x80];
        let mut v = vec![];
        for_each_set_run(&bits, 40, |s, n| v.push((s, n)));
        assert_eq!(v, vec![(1, 2), (8, 9), (39, 1)]);
        let mut w = vec![];
        for_each_set_run(&bits, 12, |s, n| w.push((s, n)));
        assert_eq!(w, vec![(1, 2), (8, 4)]);
    }
}
