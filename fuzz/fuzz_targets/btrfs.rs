//! Fuzzes the btrfs decoders and used map: any bytes must give a map or an error,
//! never a panic, hang or huge allocation. Checksums stop almost every mutation at
//! the door, so the target also re-seals the primary superblock (its fields then
//! reach the chunk and tree walks) and decodes a re-sealed copy of the input's first
//! bytes as a tree block whose address, fsid and level are taken from it (the item
//! and pointer parsing then sees the mutations).
#![no_main]

use ironclone::device::MemDevice;
use ironclone::ondisk::btrfs::{csum, ChunkItem, Node, Superblock};
use libfuzzer_sys::fuzz_target;

const SB: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let _ = ChunkItem::parse(data, 1 << 20);
    let mut node = data[..data.len().min(16384)].to_vec();
    if node.len() > 101 {
        csum::seal(&mut node);
        let bytenr = u64::from_le_bytes(node[48..56].try_into().unwrap_or([0; 8]));
        let fsid: [u8; 16] = node[32..48].try_into().unwrap_or([0; 16]);
        let _ = Node::parse(&node, bytenr, node[100], &fsid);
    }
    let mut d = data.to_vec();
    if let Some(sb) = d.get_mut(SB..SB + 4096) {
        let _ = Superblock::parse(sb, SB as u64);
        csum::seal(sb);
    }
    let dev = MemDevice::from_vec(d, 512);
    let _ = ironclone::usedmap::map_btrfs(&dev);
    let _ = ironclone::probe::probe(&dev);
});
