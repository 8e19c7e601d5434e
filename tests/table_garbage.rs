//! Garbage in, errors out: crafted and random sectors must give a `TableError` (or
//! "no table"), never a panic, a hang or a huge allocation.

mod common;

use common::Rng;
use ironclone::device::MemDevice;
use ironclone::table::{
    read_layout, write_layout, DiskLayout, TableError, TableKind, WriteOptions,
};

const MIB: usize = 1 << 20;

fn put(buf: &mut [u8], off: usize, v: &[u8]) {
    buf[off..off + v.len()].copy_from_slice(v);
}

fn mbr_entry(buf: &mut [u8], sector_off: usize, slot: usize, ptype: u8, start: u32, size: u32) {
    let o = sector_off + 0x1BE + slot * 16;
    buf[o + 4] = ptype;
    put(buf, o + 8, &start.to_le_bytes());
    put(buf, o + 12, &size.to_le_bytes());
    put(buf, sector_off + 0x1FE, &[0x55, 0xAA]);
}

/// A valid-CRC GPT header at `lba` with the given fields, so only our range checks
/// stand between it and an allocation.
fn gpt_header(buf: &mut [u8], lba: u64, entries_lba: u64, num: u32, esize: u32, last: u64) {
    let o = (lba * 512) as usize;
    let h = &mut buf[o..o + 512];
    h.fill(0);
    h[0..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&lba.to_le_bytes());
    h[32..40].copy_from_slice(&last.to_le_bytes());
    h[40..48].copy_from_slice(&34u64.to_le_bytes());
    h[48..56].copy_from_slice(&(last - 34).to_le_bytes());
    h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
    h[80..84].copy_from_slice(&num.to_le_bytes());
    h[84..88].copy_from_slice(&esize.to_le_bytes());
    let crc = crc32fast::hash(&h[..92]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
}

fn with_pmbr(size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size];
    mbr_entry(&mut b, 0, 0, 0xEE, 1, (size / 512 - 1) as u32);
    b
}

#[test]
fn looping_ebr_chain_is_refused() {
    let mut b = vec![0u8; 8 * MIB];
    mbr_entry(&mut b, 0, 0, 0x83, 2048, 2048);
    mbr_entry(&mut b, 0, 1, 0x05, 4096, 8192);
    // EBR at 4096: logical at +2048, next EBR at ext+2048 (LBA 6144), which points back.
    mbr_entry(&mut b, 4096 * 512, 0, 0x83, 1, 1000);
    mbr_entry(&mut b, 4096 * 512, 1, 0x05, 2048, 2000);
    mbr_entry(&mut b, 6144 * 512, 0, 0x83, 1, 1000);
    mbr_entry(&mut b, 6144 * 512, 1, 0x05, 0, 2000);
    let e = read_layout(&MemDevice::from_vec(b, 512)).unwrap_err();
    assert!(matches!(e, TableError::EbrChain { .. }), "{e}");
    assert!(e.to_string().contains("loops"), "{e}");
}

#[test]
fn ebr_outside_extended_is_refused() {
    let mut b = vec![0u8; 8 * MIB];
    mbr_entry(&mut b, 0, 1, 0x05, 4096, 4096);
    mbr_entry(&mut b, 4096 * 512, 0, 0x83, 1, 100);
    mbr_entry(&mut b, 4096 * 512, 1, 0x05, 9000, 100);
    let e = read_layout(&MemDevice::from_vec(b, 512)).unwrap_err();
    assert!(e.to_string().contains("outside the extended"), "{e}");
}

#[test]
fn absurd_entry_counts_and_sizes() {
    let size = 4 * MIB;
    let last = (size / 512 - 1) as u64;
    for (num, esize, what) in [
        (u32::MAX, 128, "NumberOfPartitionEntries"),
        (0, 128, "NumberOfPartitionEntries"),
        (128, 0, "SizeOfPartitionEntry"),
        (128, 100, "SizeOfPartitionEntry"),
        (128, 1 << 30, "SizeOfPartitionEntry"),
        (16384, 4096, "exceeds"),
    ] {
        let mut b = with_pmbr(size);
        gpt_header(&mut b, 1, 2, num, esize, last);
        let e = read_layout(&MemDevice::from_vec(b, 512)).unwrap_err();
        assert!(matches!(e, TableError::NoValidGpt { .. }), "{e}");
        assert!(e.to_string().contains(what), "{num}x{esize}: {e}");
    }
}

#[test]
fn entry_array_past_the_end() {
    let size = 4 * MIB;
    let last = (size / 512 - 1) as u64;
    let mut b = with_pmbr(size);
    gpt_header(&mut b, 1, last - 2, 128, 128, last);
    let e = read_layout(&MemDevice::from_vec(b, 512)).unwrap_err();
    assert!(e.to_string().contains("entry array at LBA"), "{e}");
    let mut b = with_pmbr(size);
    gpt_header(&mut b, 1, u64::MAX - 1, 128, 128, last);
    let e = read_layout(&MemDevice::from_vec(b, 512)).unwrap_err();
    assert!(e.to_string().contains("PartitionEntryLBA"), "{e}");
}

#[test]
fn truncated_images() {
    // A GPT written for 8 MiB, then cut: partitions and the backup fall off the end.
    let dev = MemDevice::new(8 * MIB, 512);
    let mut l = DiskLayout::none(512, 0);
    l.kind = TableKind::Gpt;
    l.partitions.push(ironclone::table::Partition {
        number: 1,
        start_lba: ironclone::units::Lba(2048),
        end_lba: ironclone::units::Lba(16000),
        size_bytes: 13953 * 512,
        ptype: ironclone::table::PartType::Gpt(ironclone::table::types::LINUX_FS),
        uuid: None,
        name: Some("x".into()),
        bootable: false,
        attributes: 0,
        logical: false,
        ebr_lba: None,
    });
    write_layout(&dev, &l, &WriteOptions::default()).unwrap();
    let full = dev.into_vec();
    for cut in [600, 1024, 4096, 17 * 1024, MIB, 4 * MIB] {
        let r = read_layout(&MemDevice::from_vec(full[..cut].to_vec(), 512));
        match r {
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok(l) => panic!("truncated to {cut} read as {l:?}"),
        }
    }
    // MBR partition past the end of a truncated image.
    let mut b = vec![0u8; MIB];
    mbr_entry(&mut b, 0, 0, 0x83, 2048, 100_000);
    let e = read_layout(&MemDevice::from_vec(b, 512)).unwrap_err();
    assert!(e.to_string().contains("past the device"), "{e}");
    // Tiny devices.
    for n in [0, 1, 100, 511] {
        let l = read_layout(&MemDevice::new(n, 512)).unwrap();
        assert_eq!(l.kind, TableKind::None);
        assert!(n < 512 || l.warnings.is_empty(), "{:?}", l.warnings);
    }
}

/// A fixed-seed fuzz loop over random and half-structured sectors.
#[test]
fn random_buffers_never_panic() {
    let mut rng = Rng::new(0x1c10_e5ed);
    let size = 64 * 1024;
    let mut outcomes = [0usize; 2];
    for i in 0..3000 {
        let mut b = vec![0u8; size];
        let n = (rng.below(4) as usize + 1) * 4096;
        rng.fill(&mut b[..n]);
        match i % 4 {
            0 => {}
            1 => put(&mut b, 0x1FE, &[0x55, 0xAA]),
            2 => {
                put(&mut b, 0x1FE, &[0x55, 0xAA]);
                for s in 0..4 {
                    b[0x1BE + s * 16] = 0;
                }
                b[0x1BE + 4] = [0x05, 0x0F, 0xEE, 0x83][rng.below(4) as usize];
                let start = rng.below(130) as u32;
                put(&mut b, 0x1BE + 8, &start.to_le_bytes());
            }
            _ => {
                let last = (size / 512 - 1) as u64;
                let el = rng.below(200);
                let num = rng.next_u64() as u32 % 512;
                let es = [128u32, 256, 0, 77][rng.below(4) as usize];
                mbr_entry(&mut b, 0, 0, 0xEE, 1, last as u32);
                gpt_header(&mut b, 1, el, num, es, last);
            }
        }
        let dev = MemDevice::from_vec(b, 512);
        outcomes[read_layout(&dev).is_ok() as usize] += 1;
        // 4K interpretation of the same bytes.
        let b = dev.into_vec();
        let _ = read_layout(&MemDevice::from_vec(b, 4096));
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn zeroed_mbr_with_damaged_gpt_is_reported() {
    let size = 4 * MIB;
    let last = (size / 512 - 1) as u64;
    let mut b = vec![0u8; size];
    gpt_header(&mut b, 1, 2, 128, 128, last);
    b[512 + 100] ^= 1; // outside the CRC'd 92 bytes: still valid header...
    b[512 + 50] ^= 1; // ...but this breaks HeaderCRC32
    let l = read_layout(&MemDevice::from_vec(b, 512)).unwrap();
    assert_eq!(l.kind, TableKind::None);
    assert!(
        l.warnings.iter().any(|w| w.contains("HeaderCRC32")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn write_refuses_bad_layouts() {
    // A patterned device, so that any write (even of zeros) would show.
    let before: Vec<u8> = (0..4 * MIB).map(|i| (i % 251) as u8 | 1).collect();
    let dev = MemDevice::from_vec(before.clone(), 512);
    let mut l = DiskLayout::none(4096, 4 * MIB as u64);
    l.kind = TableKind::Gpt;
    assert!(
        write_layout(&dev, &l, &WriteOptions::default()).is_err(),
        "sector size mismatch"
    );
    assert!(
        dev.snapshot() == before,
        "written before refusing a sector size mismatch"
    );
    let l = DiskLayout::none(512, 0);
    assert!(
        write_layout(&dev, &l, &WriteOptions::default()).is_err(),
        "kind none"
    );
    assert!(
        dev.snapshot() == before,
        "written before refusing a layout without a table"
    );
    let tiny = MemDevice::from_vec(before[..4096].to_vec(), 512);
    let mut g = DiskLayout::none(512, 0);
    g.kind = TableKind::Gpt;
    let e = write_layout(&tiny, &g, &WriteOptions::default()).unwrap_err();
    assert!(matches!(e, TableError::TooSmallDevice { .. }), "{e}");
    assert!(
        tiny.snapshot() == before[..4096],
        "written before refusing a too small device"
    );
}
