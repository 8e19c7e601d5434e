//! ironclone: image a disk by its filesystems' used blocks, store it compressed,
//! checksummed and deduplicated, and restore it onto a disk of any size, repaired so
//! it boots.
//!
//! The modules follow the data: a `device` is read through its partition `table`,
//! each partition's filesystem is recognised by `probe` and mapped by `usedmap`, the
//! used blocks go into the image `repo`, and a restore is planned, written and
//! repaired. The CLI and TUI in the binary sit on top and only call into here.

pub mod bootfix;
pub mod browse;
pub mod bytes;
pub mod deploy;
pub mod device;
pub mod discover;
pub mod foreign;
pub mod hostname;
pub mod imaging;
pub mod meminfo;
pub mod netboot;
pub mod ondisk;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod repo;
pub mod rescue;
pub mod resize;
pub mod schedule;
pub mod share;
pub mod slab;
pub mod table;
pub mod timefmt;
pub mod tui;
pub mod units;
pub mod unlock;
pub mod usedmap;
pub mod vdisk;
