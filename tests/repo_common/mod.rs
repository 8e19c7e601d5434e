//! Shared fixtures for the repository tests: deterministic mixed data (random, zeros,
//! text) and a hand-built plan with table areas and partitions with holes.
#![allow(dead_code)]

use ironclone::device::{BlockDevice, FileDevice};
use ironclone::repo::{AreaKind, BackupPlan, PlannedArea, SourceInfo};
use ironclone::usedmap::ByteExtent;
use std::path::Path;

pub const MIB: u64 = 1 << 20;

/// xorshift64*: reproducible "random" bytes without a rand dependency.
pub fn fill_random(buf: &mut [u8], mut seed: u64) {
    for c in buf.chunks_mut(8) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let v = seed.wrapping_mul(0x2545F4914F6CDD1D).to_le_bytes();
        c.copy_from_slice(&v[..c.len()]);
    }
}

pub fn fill_text(buf: &mut [u8], salt: u64) {
    let mut line = 0u64;
    let mut pos = 0;
    while pos < buf.len() {
        let s =
            format!("line {line} of file {salt}: the quick brown fox jumps over the lazy dog\n");
        let n = s.len().min(buf.len() - pos);
        buf[pos..pos + n].copy_from_slice(&s.as_bytes()[..n]);
        pos += n;
        line += 1;
    }
}

/// `size` bytes cycling through random, zero and text regions of uneven lengths.
pub fn mixed_data(size: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; size];
    let mut pos = 0usize;
    let mut i = 0u64;
    while pos < size {
        let len = (((i * 7919) % 5 + 1) as usize * 700_000).min(size - pos);
        let r = &mut v[pos..pos + len];
        match i % 3 {
            0 => fill_random(r, seed.wrapping_add(i) | 1),
            1 => {}
            _ => fill_text(r, seed.wrapping_add(i)),
        }
        pos += len;
        i += 1;
    }
    v
}

/// A GPT-like plan (size ≥ 32 MiB): table head (first MiB), two partitions with holes, GPT backup.
pub fn plan_for(size: u64) -> BackupPlan {
    let p1_len = (size - 2 * MIB) / 2;
    let p2_off = MIB + p1_len;
    let p2_len = size - MIB - p2_off;
    let area = |name: &str, kind, offset, len, extents: Vec<ByteExtent>| PlannedArea {
        name: name.into(),
        kind,
        offset,
        len,
        extents,
        meta: serde_json::json!({ "fs": "test", "name": name }),
        file_runs: Vec::new(),
    };
    BackupPlan {
        source: SourceInfo {
            path: "test-disk".into(),
            model: Some("TESTDISK".into()),
            serial: Some("SN123".into()),
            size,
            sector_size: 512,
        },
        areas: vec![
            area(
                "table-head",
                AreaKind::TableRaw,
                0,
                MIB,
                vec![ByteExtent {
                    offset: 0,
                    len: MIB,
                }],
            ),
            area(
                "p1",
                AreaKind::Partition,
                MIB,
                p1_len,
                vec![
                    ByteExtent {
                        offset: 0,
                        len: 3 * MIB + 4096,
                    },
                    ByteExtent {
                        offset: 5 * MIB + 512,
                        len: p1_len / 4,
                    },
                    ByteExtent {
                        offset: p1_len - 3 * MIB,
                        len: 3 * MIB,
                    },
                ],
            ),
            area(
                "p2",
                AreaKind::Partition,
                p2_off,
                p2_len,
                vec![ByteExtent {
                    offset: 0,
                    len: p2_len,
                }],
            ),
            area(
                "gpt-backup",
                AreaKind::TableRaw,
                size - 33 * 512,
                33 * 512,
                vec![ByteExtent {
                    offset: 0,
                    len: 33 * 512,
                }],
            ),
        ],
    }
}

/// Asserts that `target` holds the source's bytes on every planned extent (at the same
/// offsets) and zeros everywhere else.
pub fn assert_restored(src: &[u8], target: &[u8], plan: &BackupPlan) {
    let mut expect = vec![0u8; target.len()];
    for a in &plan.areas {
        for e in &a.extents {
            let s = (a.offset + e.offset) as usize;
            let n = e.len as usize;
            expect[s..s + n].copy_from_slice(&src[s..s + n]);
        }
    }
    assert!(
        expect == target,
        "restored bytes differ from the planned source extents"
    );
}

pub fn write_file(path: &Path, data: &[u8]) -> FileDevice {
    std::fs::write(path, data).unwrap();
    ironclone::device::open_path(path, ironclone::device::Access::ReadOnly).unwrap()
}

pub fn zero_target(path: &Path, size: u64) -> FileDevice {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    let d = ironclone::device::open_path(path, ironclone::device::Access::ReadWrite).unwrap();
    assert_eq!(d.size(), size);
    d
}
