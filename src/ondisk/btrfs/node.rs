//! Tree blocks: `btrfs_header` (checksum, fsid, bytenr, level, item count) followed
//! by either leaf items (`btrfs_item`: key, data offset and size, the data at the
//! block's end) or node pointers (`btrfs_key_ptr`: key, child block, generation).
//! A block is accepted only when its checksum, its own address, its fsid and its
//! level are what the parent said, so a stale or misdirected block is an error.

use super::csum;
use super::key::{Key, LEN as KEY_LEN};
use super::DecodeError;
use crate::bytes::{array, le32, le64, u8_at};

const HEADER_LEN: usize = 101;
const FSID: usize = 32;
const BYTENR: usize = 48;
const OWNER: usize = 88;
const NRITEMS: usize = 96;
const LEVEL: usize = 100;
const ITEM_LEN: usize = KEY_LEN + 8;
const KEY_PTR_LEN: usize = KEY_LEN + 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeBody {
    /// Leaf: each item's key and its data.
    Leaf(Vec<(Key, Vec<u8>)>),
    /// Internal node: each child's first key and logical address.
    Node(Vec<(Key, u64)>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub bytenr: u64,
    pub owner: u64,
    pub level: u8,
    pub body: NodeBody,
}

impl Node {
    /// Decodes the block read for logical `bytenr`, which must be at `level` and
    /// carry `fsid` (the superblock's metadata fsid).
    pub fn parse(b: &[u8], bytenr: u64, level: u8, fsid: &[u8; 16]) -> Result<Self, DecodeError> {
        let bad = |field, value, why| DecodeError::Node {
            bytenr,
            field,
            value,
            why,
        };
        if b.len() < HEADER_LEN {
            return Err(bad("size", b.len() as u64, "shorter than the header"));
        }
        csum::verify(b, "tree block", bytenr)?;
        let short = |field| bad(field, b.len() as u64, "past the end of the block");
        let own = le64(b, BYTENR).ok_or_else(|| short("bytenr"))?;
        if own != bytenr {
            return Err(bad("bytenr", own, "not the address it was read from"));
        }
        let block_fsid: [u8; 16] = array(b, FSID).ok_or_else(|| short("fsid"))?;
        if &block_fsid != fsid {
            return Err(bad("fsid", 0, "not this filesystem's"));
        }
        let got = u8_at(b, LEVEL).ok_or_else(|| short("level"))?;
        if got != level {
            return Err(bad(
                "level",
                u64::from(got),
                "not the level its parent gave",
            ));
        }
        let owner = le64(b, OWNER).ok_or_else(|| short("owner"))?;
        let nritems = le32(b, NRITEMS).ok_or_else(|| short("nritems"))? as usize;
        let per = if level == 0 { ITEM_LEN } else { KEY_PTR_LEN };
        if nritems
            .checked_mul(per)
            .is_none_or(|n| HEADER_LEN + n > b.len())
        {
            return Err(bad(
                "nritems",
                nritems as u64,
                "more entries than the block holds",
            ));
        }
        let body = if level == 0 {
            let data_area = &b[HEADER_LEN..];
            let mut items = Vec::with_capacity(nritems);
            for i in 0..nritems {
                let at = HEADER_LEN + i * ITEM_LEN;
                let key = Key::parse(b, at).ok_or_else(|| short("item key"))?;
                let off = le32(b, at + KEY_LEN).ok_or_else(|| short("item offset"))? as usize;
                let size = le32(b, at + KEY_LEN + 4).ok_or_else(|| short("item size"))? as usize;
                let data = off
                    .checked_add(size)
                    .and_then(|end| data_area.get(off..end))
                    .ok_or_else(|| bad("item data", off as u64, "runs past the block"))?;
                items.push((key, data.to_vec()));
            }
            NodeBody::Leaf(items)
        } else {
            let mut ptrs = Vec::with_capacity(nritems);
            for i in 0..nritems {
                let at = HEADER_LEN + i * KEY_PTR_LEN;
                let key = Key::parse(b, at).ok_or_else(|| short("key_ptr key"))?;
                let child = le64(b, at + KEY_LEN).ok_or_else(|| short("blockptr"))?;
                ptrs.push((key, child));
            }
            NodeBody::Node(ptrs)
        };
        Ok(Node {
            bytenr,
            owner,
            level,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(bytenr: u64, fsid: [u8; 16], items: &[(Key, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[FSID..FSID + 16].copy_from_slice(&fsid);
        b[BYTENR..BYTENR + 8].copy_from_slice(&bytenr.to_le_bytes());
        b[NRITEMS..NRITEMS + 4].copy_from_slice(&(items.len() as u32).to_le_bytes());
        let mut end = 4096 - HEADER_LEN;
        for (i, (k, data)) in items.iter().enumerate() {
            let at = HEADER_LEN + i * ITEM_LEN;
            end -= data.len();
            b[at..at + 8].copy_from_slice(&k.objectid.to_le_bytes());
            b[at + 8] = k.item_type;
            b[at + 9..at + 17].copy_from_slice(&k.offset.to_le_bytes());
            b[at + 17..at + 21].copy_from_slice(&(end as u32).to_le_bytes());
            b[at + 21..at + 25].copy_from_slice(&(data.len() as u32).to_le_bytes());
            b[HEADER_LEN + end..HEADER_LEN + end + data.len()].copy_from_slice(data);
        }
        csum::seal(&mut b);
        b
    }

    #[test]
    fn decodes_a_leaf_and_checks_what_the_parent_said() {
        let k = Key {
            objectid: 5,
            item_type: 168,
            offset: 4096,
        };
        let b = leaf(1 << 20, [9; 16], &[(k, b"abc")]);
        let n = Node::parse(&b, 1 << 20, 0, &[9; 16]).unwrap();
        assert_eq!(n.body, NodeBody::Leaf(vec![(k, b"abc".to_vec())]));
        let field = |r: Result<Node, DecodeError>| match r {
            Err(DecodeError::Node { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(Node::parse(&b, 2 << 20, 0, &[9; 16])), "bytenr");
        assert_eq!(field(Node::parse(&b, 1 << 20, 1, &[9; 16])), "level");
        assert_eq!(field(Node::parse(&b, 1 << 20, 0, &[8; 16])), "fsid");
        let mut c = b.clone();
        c[NRITEMS..NRITEMS + 4].copy_from_slice(&1000u32.to_le_bytes());
        csum::seal(&mut c);
        assert_eq!(field(Node::parse(&c, 1 << 20, 0, &[9; 16])), "nritems");
        let mut c = b.clone();
        c[HEADER_LEN + 17..HEADER_LEN + 21].copy_from_slice(&4000u32.to_le_bytes());
        csum::seal(&mut c);
        assert_eq!(field(Node::parse(&c, 1 << 20, 0, &[9; 16])), "item data");
        let mut c = b;
        c[200] ^= 1;
        assert!(matches!(
            Node::parse(&c, 1 << 20, 0, &[9; 16]),
            Err(DecodeError::Csum { .. })
        ));
    }
}
