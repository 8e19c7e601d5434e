//! Walking a btrfs tree from its root block, depth first, reading each block at the
//! first of its copies that passes the checks (a DUP copy stands in for a torn one).
//! Levels must go down by one per step, which bounds the depth at 8; a block reached
//! twice is an error (within one tree no block has two parents: snapshots share
//! blocks between trees, not inside the chunk, root or extent tree), and the number
//! of blocks is bounded by how many fit on the device.

use super::chunk_map::ChunkMap;
use super::{read, BtrfsError};
use crate::device::BlockDevice;
use crate::ondisk::btrfs::key::Key;
use crate::ondisk::btrfs::superblock::BTRFS_MAX_LEVEL;
use crate::ondisk::btrfs::{DecodeError, Node, NodeBody, Superblock};
use crate::usedmap::ExtentBuilder;
use std::collections::HashSet;

#[derive(Clone, Copy)]
pub struct Limits {
    max_blocks: u64,
}

impl Limits {
    pub fn new(sb: &Superblock) -> Self {
        Limits {
            max_blocks: (sb.dev_item_total_bytes / u64::from(sb.nodesize.max(1))).max(1),
        }
    }
}

pub struct Walker<'a> {
    pub dev: &'a dyn BlockDevice,
    pub sb: &'a Superblock,
    pub limits: Limits,
}

impl Walker<'_> {
    /// Calls `leaf` with each leaf's address and items; adds every block read to `b`
    /// (at all its copies: the tree blocks are also in the extent tree, but the chunk
    /// and root trees are walked before it is known).
    pub fn walk(
        &self,
        tree: &'static str,
        chunks: &ChunkMap,
        root: u64,
        level: u8,
        b: &mut ExtentBuilder,
        mut leaf: impl FnMut(u64, &[(Key, Vec<u8>)]) -> Result<(), BtrfsError>,
    ) -> Result<(), BtrfsError> {
        if level >= BTRFS_MAX_LEVEL {
            return Err(BtrfsError::Tree {
                tree,
                why: "root level not below 8",
            });
        }
        let mut stack = vec![(root, level)];
        let mut seen = HashSet::new();
        while let Some((bytenr, level)) = stack.pop() {
            if !seen.insert(bytenr) {
                return Err(BtrfsError::Tree {
                    tree,
                    why: "a block reached twice (a cycle or a shared block)",
                });
            }
            if seen.len() as u64 > self.limits.max_blocks {
                return Err(BtrfsError::Tree {
                    tree,
                    why: "more blocks than fit on the device",
                });
            }
            let node = self.read_node(chunks, bytenr, level, b)?;
            match node.body {
                NodeBody::Leaf(items) => leaf(bytenr, &items)?,
                NodeBody::Node(ptrs) => {
                    if level == 0 {
                        return Err(BtrfsError::Tree {
                            tree,
                            why: "an internal node at level 0",
                        });
                    }
                    // Reversed so that the walk visits children in key order.
                    for (_, child) in ptrs.into_iter().rev() {
                        stack.push((child, level - 1));
                    }
                }
            }
        }
        Ok(())
    }

    fn read_node(
        &self,
        chunks: &ChunkMap,
        bytenr: u64,
        level: u8,
        b: &mut ExtentBuilder,
    ) -> Result<Node, BtrfsError> {
        let ns = u64::from(self.sb.nodesize);
        let copies = chunks.physical(bytenr, ns)?;
        let mut first_err: Option<DecodeError> = None;
        for &p in &copies {
            let raw = read(self.dev, p, ns as usize, "tree block")?;
            match Node::parse(&raw, bytenr, level, &self.sb.metadata_fsid) {
                Ok(n) => {
                    for &q in &copies {
                        b.add(q, ns);
                    }
                    return Ok(n);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err
            .map(BtrfsError::from)
            .unwrap_or(BtrfsError::Unmapped { bytenr, len: ns }))
    }
}
