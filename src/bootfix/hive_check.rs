//! A structural check of a registry hive before nt-hive reads it.
//!
//! nt-hive 0.3 trusts every cell offset it follows: an offset of 0xFFFFFFFF in a subkey
//! list trips an `assert!`, and an offset whose cell header says size 0 makes
//! `cell_size - 4` overflow (a panic wherever overflow checks are on: the tests, the
//! fuzz build). Fuzzing bcd.rs found the second within seconds. `catch_unwind` in bcd.rs
//! stays as the last line, but a damaged BCD is expected input and must be an error
//! without a panic, so this walks the same references nt-hive follows (from the root key:
//! subkey lists, value lists, values' data, big-data segments, class names) and accepts
//! the hive only when each of them names an allocated cell the bins really contain.
//! Layout: Windows Internals' and libregf's description of regf/hbin/nk/lf/lh/li/ri/vk/db.

use crate::bytes::{le16, le32};
use std::collections::{HashMap, HashSet};

/// The base block ahead of the first bin; cell offsets count from its end.
const BASE_BLOCK: usize = 4096;
const OFF_ROOT_CELL: usize = 0x24;
const HBIN_HEADER: usize = 32;
/// nt-hive's largest value kept in one cell; above it the data is a `db` record.
const BIG_DATA_SEGMENT_SIZE: u32 = 16344;
const DATA_INLINE: u32 = 0x8000_0000;
const NONE: u32 = u32::MAX;
/// More references than any real BCD holds: a bound for a hive built to loop.
const MAX_STEPS: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Cell {
    Key,
    SubkeyList,
    ValueList(u32),
    Value,
    BigData,
}

/// `Ok` when every cell nt-hive could follow from the root key of `hive` (the whole file,
/// base block first) is an allocated cell inside a bin; otherwise what is wrong and where
/// (byte offset in the file).
pub(super) fn check(hive: &[u8]) -> Result<(), String> {
    let data = hive.get(BASE_BLOCK..).unwrap_or_default();
    let cells = allocated_cells(data)?;
    let root = le32(hive, OFF_ROOT_CELL).ok_or("base block is short")?;
    let mut todo = vec![(root, Cell::Key, OFF_ROOT_CELL)];
    let mut seen = HashSet::new();
    let mut steps = 0usize;
    while let Some((off, kind, from)) = todo.pop() {
        let cell = cells
            .get(&off)
            .and_then(|r| data.get(r.clone()))
            .ok_or_else(|| {
                format!("byte {from} refers to offset {off:#x}, which is no allocated cell")
            })?;
        steps += 1;
        if steps > MAX_STEPS {
            return Err(format!("more than {MAX_STEPS} cell references"));
        }
        if !seen.insert((off, kind)) {
            continue;
        }
        let at = BASE_BLOCK + off as usize + 4;
        let field = |o: usize| {
            le32(cell, o).ok_or_else(|| format!("cell at byte {at} is too short for byte {o}"))
        };
        match kind {
            Cell::Key => {
                if !cell.starts_with(b"nk") {
                    continue; // nt-hive refuses it with an error.
                }
                let (subkeys, values, class) = (field(0x1C)?, field(0x28)?, field(0x30)?);
                if subkeys != NONE {
                    todo.push((subkeys, Cell::SubkeyList, at + 0x1C));
                }
                if values != NONE {
                    todo.push((values, Cell::ValueList(field(0x24)?), at + 0x28));
                }
                // The class name is raw bytes: it only has to be a cell.
                if class != NONE && !cells.contains_key(&class) {
                    return Err(format!(
                        "class name offset {class:#x} at byte {} is no cell",
                        at + 0x30
                    ));
                }
            }
            Cell::SubkeyList => {
                let (stride, next) = match cell.get(..2) {
                    Some(b"lf") | Some(b"lh") => (8, Cell::Key),
                    Some(b"li") => (4, Cell::Key),
                    Some(b"ri") => (4, Cell::SubkeyList),
                    _ => continue,
                };
                let count = usize::from(le16(cell, 2).ok_or("short subkey list")?);
                for i in 0..count {
                    let o = 4 + i * stride;
                    todo.push((field(o)?, next, at + o));
                }
            }
            Cell::ValueList(count) => {
                // nt-hive stops at the cell's end; so does this.
                for i in 0..(count as usize).min(cell.len() / 4) {
                    todo.push((field(i * 4)?, Cell::Value, at + i * 4));
                }
            }
            Cell::Value => {
                if !cell.starts_with(b"vk") {
                    continue;
                }
                let size = field(4)?;
                // Inline data needs no cell; an empty value is never read (bcd.rs).
                if size & DATA_INLINE != 0 || size == 0 {
                    continue;
                }
                let target = field(8)?;
                if size > BIG_DATA_SEGMENT_SIZE {
                    todo.push((target, Cell::BigData, at + 8));
                } else if !cells.contains_key(&target) {
                    return Err(format!(
                        "value data offset {target:#x} at byte {} is no cell",
                        at + 8
                    ));
                }
            }
            Cell::BigData => {
                if !cell.starts_with(b"db") {
                    continue;
                }
                let count = usize::from(le16(cell, 2).ok_or("short big-data record")?);
                let list = field(4)?;
                let segs = cells
                    .get(&list)
                    .and_then(|r| data.get(r.clone()))
                    .ok_or_else(|| {
                        format!("segment list {list:#x} at byte {} is no cell", at + 4)
                    })?;
                for i in 0..count {
                    let seg = le32(segs, i * 4).ok_or("segment list shorter than its count")?;
                    if !cells.contains_key(&seg) {
                        return Err(format!("big-data segment {seg:#x} is no cell"));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Offset (from the first bin) → data range of every allocated cell, walking the bins
/// from the first one; a bin or cell that does not fit is an error.
fn allocated_cells(data: &[u8]) -> Result<HashMap<u32, std::ops::Range<usize>>, String> {
    let mut cells = HashMap::new();
    let mut bin = 0usize;
    while data.get(bin..bin + 4) == Some(b"hbin".as_slice()) {
        let size = le32(data, bin + 8).ok_or("short hbin header")? as usize;
        let end = bin.checked_add(size).filter(|&e| e <= data.len());
        let Some(end) = end.filter(|_| size >= HBIN_HEADER && size % 4096 == 0) else {
            return Err(format!("hbin at byte {} has size {size}", BASE_BLOCK + bin));
        };
        let mut pos = bin + HBIN_HEADER;
        while pos + 4 <= end {
            let raw = le32(data, pos).ok_or("short cell header")? as i32;
            let len = raw.unsigned_abs() as usize;
            if len < 8 || len % 8 != 0 || pos + len > end {
                return Err(format!("cell at byte {} has size {raw}", BASE_BLOCK + pos));
            }
            if raw < 0 {
                let off = u32::try_from(pos).map_err(|_| "hive over 4 GiB")?;
                cells.insert(off, pos + 4..pos + len);
            }
            pos += len;
        }
        bin = end;
    }
    Ok(cells)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// An empty hive as tests/restore_windows_mbr.rs builds it (base block, one bin with
    /// the root key "ROOT" and its security cell), whose root key says it has one subkey
    /// in a list at `subkeys`.
    pub(in crate::bootfix) fn hive_with_subkey_list_at(subkeys: u32) -> Vec<u8> {
        let mut base = vec![0u8; 4096];
        base[..4].copy_from_slice(b"regf");
        for (at, v) in [
            (4, 1),
            (8, 1),
            (0x14, 1),
            (0x18, 3),
            (0x20, 1),
            (0x24, 0x20),
        ] {
            put32(&mut base, at, v);
        }
        put32(&mut base, 0x28, 4096);
        put32(&mut base, 0x2c, 1);
        let sum = (0..0x1fc).step_by(4).fold(0u32, |x, i| {
            x ^ u32::from_le_bytes(base[i..i + 4].try_into().unwrap())
        });
        put32(&mut base, 0x1fc, sum.clamp(1, 0xffff_fffe));
        let mut bin = vec![0u8; 4096];
        bin[..4].copy_from_slice(b"hbin");
        put32(&mut bin, 8, 4096);
        let mut nk = vec![0u8; 0x50];
        nk[..2].copy_from_slice(b"nk");
        nk[2] = 0x2c;
        for at in [0x10, 0x1c, 0x20, 0x28, 0x30] {
            put32(&mut nk, at, u32::MAX);
        }
        put32(&mut nk, 0x14, 1);
        put32(&mut nk, 0x1c, subkeys);
        let sk_at = 0x20 + 0x58;
        put32(&mut nk, 0x2c, sk_at);
        nk[0x48] = 4;
        nk[0x4c..0x50].copy_from_slice(b"ROOT");
        let mut sk = vec![0u8; 0x14 + 20];
        sk[..2].copy_from_slice(b"sk");
        for (at, v) in [(4, sk_at), (8, sk_at), (12, 1), (16, 20)] {
            put32(&mut sk, at, v);
        }
        sk[0x14] = 1;
        sk[0x16..0x18].copy_from_slice(&0x8004u16.to_le_bytes());
        let mut at = 0x20;
        for cell in [&nk, &sk] {
            let size = (cell.len() + 4).div_ceil(8) * 8;
            put32(&mut bin, at, (-(size as i32)) as u32);
            bin[at + 4..at + 4 + cell.len()].copy_from_slice(cell);
            at += size;
        }
        put32(&mut bin, at, (4096 - at) as u32);
        [base, bin].concat()
    }

    #[test]
    fn the_empty_hive_passes() {
        assert_eq!(check(&hive_with_subkey_list_at(u32::MAX)), Ok(()));
    }

    /// What fuzz/fuzz_targets/bcd.rs found: a subkey list offset into the free space of
    /// a bin, where the "cell header" is zero. nt-hive computed `0 - 4` there.
    #[test]
    fn a_subkey_list_in_free_space_is_refused() {
        let hive = hive_with_subkey_list_at(0x200);
        let err = check(&hive).unwrap_err();
        assert!(
            err.contains("offset 0x200, which is no allocated cell"),
            "{err}"
        );
    }

    #[test]
    fn a_subkey_list_offset_of_none_in_a_list_is_refused() {
        // An lf list (in the security cell's place) naming cell 0xFFFFFFFF: nt-hive's
        // `assert!(data_offset != u32::MAX)`.
        let mut hive = hive_with_subkey_list_at(0x78);
        let list = BASE_BLOCK + 0x78 + 4;
        hive[list..list + 2].copy_from_slice(b"lf");
        hive[list + 2..list + 4].copy_from_slice(&1u16.to_le_bytes());
        put32(&mut hive, list + 4, u32::MAX);
        assert!(check(&hive).unwrap_err().contains("0xffffffff"));
    }

    #[test]
    fn a_cell_of_size_zero_in_a_bin_is_refused() {
        let mut hive = hive_with_subkey_list_at(u32::MAX);
        put32(&mut hive, BASE_BLOCK + 0x78, 0);
        assert!(check(&hive).unwrap_err().contains("has size 0"));
    }
}
