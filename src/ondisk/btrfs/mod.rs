//! btrfs on-disk structures, named as in the kernel's `include/uapi/linux/btrfs_tree.h`:
//! the superblock with its bootstrap chunk array, tree block headers, keys, leaf
//! items and node pointers, and the items the used map reads (CHUNK_ITEM with its
//! stripes, ROOT_ITEM, EXTENT_ITEM / METADATA_ITEM, BLOCK_GROUP_ITEM). Every field
//! comes from a possibly damaged or crafted disk, so every read is checked and every
//! error names the structure, the field and where it was.
//!
//! Hand-written rather than taken from a crate: the btrfs crates on crates.io either
//! wrap the kernel's ioctls (a mounted filesystem) or are unmaintained readers that
//! index slices unchecked; imaging needs a few read-only decoders that never trust a
//! length.

pub mod chunk_item;
pub mod csum;
mod error;
pub mod items;
pub mod key;
pub mod node;
pub mod superblock;

pub use chunk_item::{ChunkItem, Stripe};
pub use error::DecodeError;
pub use key::Key;
pub use node::{Node, NodeBody};
pub use superblock::Superblock;
