//! A lost primary superblock or boot sector, and the backup copy read instead.
//!
//! ext, NTFS and FAT32 each keep a copy of the structure every other read depends
//! on (ext: a superblock in group 1 and further groups, NTFS: the volume's last
//! sector, FAT32: `BPB_BkBootSec`). When the primary is unreadable or holds no valid
//! structure, the map is read through the copy, as `e2fsck -b` and `ntfsfix` do (and
//! as the FAT specification means the FAT32 copy to be used); this record says so in
//! the manifest, so that the person is told and a restore knows to rebuild the
//! primary from that copy.

use crate::device::BlockDevice;
use crate::probe::FsKind;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimaryLost {
    /// What was lost, said plainly: "superblock" or "boot sector".
    pub what: String,
    /// Byte offset and length of the lost primary, from the filesystem's start.
    pub offset: u64,
    pub len: u64,
    /// Why it could not be used (the read error, or what failed validation).
    pub why: String,
    /// Byte offset of the backup copy the map was read through.
    pub backup_offset: u64,
    /// The filesystem's block (ext) or sector (NTFS, FAT) size: with the offset it
    /// names the copy the way the tools do (`e2fsck -b 32768 -B 4096`).
    pub unit: u64,
}

impl PrimaryLost {
    /// The backup's position in `unit`s (ext: the block number `e2fsck -b` takes).
    pub fn backup_unit(&self) -> u64 {
        self.backup_offset / self.unit.max(1)
    }

    /// One line for a person: what was lost, why, and what was used instead.
    pub fn line(&self) -> String {
        let unit = if self.what == "superblock" {
            "block"
        } else {
            "sector"
        };
        format!(
            "the primary {} (byte {}) is lost ({}); the used blocks were read through its \
             backup at {unit} {} (byte {}), and a restore rebuilds the primary from that backup",
            self.what,
            self.offset,
            self.why,
            self.backup_unit(),
            self.backup_offset
        )
    }
}

/// When the primary of the `kind` filesystem on `dev` is lost: the primary rebuilt in
/// memory from the backup the map is read through, as (byte offset, bytes) patches.
/// Readers that need it in place (browsing an image) read through them; the restore
/// rebuilds it on disk instead (`imaging::rebuild_primary`), where ext's counts are
/// corrected too. ext: the backup superblock with `s_block_group_nr` 0 and its
/// checksum recomputed; NTFS and FAT32: the backup sector as it is (FAT32: with the
/// FSInfo sector when that was lost too, its free count unknown).
pub fn primary_from_backup(dev: &dyn BlockDevice, kind: FsKind) -> Vec<(u64, Vec<u8>)> {
    match kind {
        k if k.is_ext() => super::ext::primary_from_backup(dev).into_iter().collect(),
        FsKind::Ntfs => super::ntfs::backup::open(dev)
            .ok()
            .and_then(|(_, lost)| copy(dev, lost?))
            .into_iter()
            .collect(),
        FsKind::Fat32 => match super::fat::backup::open(dev) {
            Ok((bpb, Some(lost))) => copy(dev, lost.clone())
                .into_iter()
                .chain(super::fat::backup::fsinfo_from_backup(
                    dev, &bpb, &lost, None,
                ))
                .collect(),
            _ => vec![],
        },
        _ => vec![],
    }
}

fn copy(dev: &dyn BlockDevice, lost: PrimaryLost) -> Option<(u64, Vec<u8>)> {
    let raw = dev
        .read_vec(lost.backup_offset, usize::try_from(lost.len).ok()?)
        .ok()?;
    Some((lost.offset, raw))
}
