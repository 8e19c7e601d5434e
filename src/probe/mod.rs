//! Recognising what a partition holds from its superblock, without mounting it.
//!
//! The kind decides how a partition is imaged (used-block map or raw) and what a
//! person sees in the disk picker, so probes must never guess: each checks magic
//! numbers and basic sanity, and an unrecognised partition is `Unknown`, imaged raw.

mod bitlocker;
mod btrfs;
mod exfat;
mod ext;
mod fat;
mod luks;
mod lvm;
mod ntfs;
mod swap;
mod util;
mod xfs;

use crate::device::BlockDevice;
use serde::{Deserialize, Serialize};

type Probe = fn(&dyn BlockDevice) -> Option<FsInfo>;

/// The order matters: containers (LUKS, LVM) and BitLocker come before NTFS and FAT,
/// because BitLocker keeps a FAT-like boot sector and stale filesystem superblocks
/// can survive inside a container's header area; exFAT comes before FAT because
/// its boot sector shares the jump and 0x55AA.
const PROBES: [Probe; 10] = [
    luks::probe,
    lvm::probe,
    bitlocker::probe,
    ntfs::probe,
    exfat::probe,
    fat::probe,
    ext::probe,
    btrfs::probe,
    xfs::probe,
    swap::probe,
];

/// Filesystems recognised by their backup superblock or boot sector, when the primary
/// is unreadable or destroyed. They come last: a copy left behind by an earlier
/// filesystem must never outrank whatever was recognised at the start.
const BACKUP_PROBES: [Probe; 3] = [ext::probe_backup, ntfs::probe_backup, fat::probe_backup];

/// Recognises the filesystem or container at the start of `dev` (a whole disk or a
/// partition window). `None` means nothing recognised: the caller images it raw.
/// Read errors count as "not recognised"; they never panic.
pub fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    PROBES
        .iter()
        .find_map(|p| p(dev))
        .or_else(|| BACKUP_PROBES.iter().find_map(|p| p(dev)))
}

/// The filesystem (or container) kinds ironclone recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    Ext2,
    Ext3,
    Ext4,
    Ntfs,
    Fat12,
    Fat16,
    Fat32,
    Exfat,
    Swap,
    Luks,
    Lvm2,
    Btrfs,
    Xfs,
    Bitlocker,
    Unknown,
}

impl FsKind {
    pub fn is_ext(self) -> bool {
        matches!(self, FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4)
    }
    pub fn is_fat(self) -> bool {
        matches!(self, FsKind::Fat12 | FsKind::Fat16 | FsKind::Fat32)
    }
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext2 => "ext2",
            FsKind::Ext3 => "ext3",
            FsKind::Ext4 => "ext4",
            FsKind::Ntfs => "ntfs",
            FsKind::Fat12 => "fat12",
            FsKind::Fat16 => "fat16",
            FsKind::Fat32 => "fat32",
            FsKind::Exfat => "exfat",
            FsKind::Swap => "swap",
            FsKind::Luks => "luks",
            FsKind::Lvm2 => "lvm2",
            FsKind::Btrfs => "btrfs",
            FsKind::Xfs => "xfs",
            FsKind::Bitlocker => "bitlocker",
            FsKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for FsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a superblock probe learned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsInfo {
    pub kind: FsKind,
    pub label: Option<String>,
    /// In the form `blkid` prints (e.g. `1b2c...-...` for ext4, `A1B2C3D4E5F6A7B8` for NTFS,
    /// `ABCD-1234` for FAT).
    pub uuid: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    #[test]
    fn garbage_is_not_recognised() {
        for seed in 1..200u64 {
            let dev = MemDevice::from_vec(noise(128 << 10, seed), 512);
            assert_eq!(probe(&dev), None, "seed {seed}");
        }
        assert_eq!(probe(&MemDevice::new(1 << 20, 512)), None);
        assert_eq!(probe(&MemDevice::new(0, 512)), None);
        assert_eq!(probe(&MemDevice::new(100, 512)), None);
    }

    /// Magic numbers planted in noise (as a half-overwritten disk would have them)
    /// must not be enough, and must never panic whatever the other fields hold.
    #[test]
    fn magic_alone_in_noise_never_panics() {
        let plants: [(usize, &[u8]); 10] = [
            (3, b"NTFS    "),
            (3, b"EXFAT   "),
            (3, b"-FVE-FS-"),
            (0, b"LUKS\xba\xbe"),
            (0, b"LABELONE"),
            (1024 + 0x38, &[0x53, 0xEF]),
            (0x10040, b"_BHRfS_M"),
            (0, b"XFSB"),
            (4086, b"SWAPSPACE2"),
            (0, &[0xEB, 0x3C, 0x90]),
        ];
        let mut recognised = Vec::new();
        let mut trials = 0;
        for seed in 1..60u64 {
            let base = noise(72 << 10, seed);
            for (off, magic) in plants {
                let mut buf = base.clone();
                buf[off..off + magic.len()].copy_from_slice(magic);
                buf[510] = 0x55;
                buf[511] = 0xAA;
                trials += 1;
                if let Some(info) = probe(&MemDevice::from_vec(buf, 512)) {
                    recognised.push((seed, info));
                }
            }
        }
        assert!(recognised.len() * 100 <= trials, "{recognised:?}");
    }
}
