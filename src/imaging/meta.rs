//! What an image remembers about the disk, kept in the manifest areas' `meta` so a
//! restore can rebuild the partition table and resize each filesystem. Versioned,
//! because images outlive the code that wrote them.

use super::ImagingError;
use crate::bootfix::bcd::BcdDeviceRef;
use crate::probe::FsInfo;
use crate::repo::{AreaManifest, Manifest};
use crate::table::{DiskLayout, Partition};
use crate::usedmap::UsedMap;
use serde::{Deserialize, Serialize};

pub const META_VERSION: u32 = 1;
/// The area holding LBA 0 up to the first partition (MBR, GPT, post-MBR gap).
pub const HEAD_AREA: &str = "table-head";
/// The area of a disk that holds one filesystem and no partition table.
pub const WHOLE_FS_AREA: &str = "disk-fs";

/// Stored on the `table-head` area: the source's layout as read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TableMeta {
    pub version: u32,
    pub layout: DiskLayout,
}

/// Stored on each partition area (and on the whole-disk filesystem area).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartitionMeta {
    pub version: u32,
    /// `None` for a filesystem on a disk without a partition table.
    pub partition: Option<Partition>,
    pub filesystem: Option<FsInfo>,
    /// The used-block map without its extents (the chunk list is the truth for data).
    pub map: UsedMap,
    /// Windows' boot store on this partition (MBR disks), absent on older images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_boot: Option<WindowsBoot>,
    /// A LUKS partition imaged with its key: on its header area and on its plaintext
    /// area (absent otherwise, and on a LUKS partition imaged raw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub luks: Option<LuksMeta>,
}

/// What this area is of a LUKS partition imaged with its key, and how its two areas
/// belong together (docs/FORMAT.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LuksMeta {
    /// `"header"`: the partition's bytes before the data segment, as they are (header
    /// copies and key slots); `"plaintext"`: the decrypted data segment.
    pub role: LuksRole,
    /// The header area's name ("p3") and the plaintext area's ("p3-plaintext").
    pub header_area: String,
    pub plaintext_area: String,
    /// 1 or 2, and the header's UUID.
    pub version: u16,
    pub uuid: String,
    /// Where the encrypted data starts in the partition, in bytes.
    pub data_offset: u64,
    /// The data segment's fixed size; absent when it runs to the partition's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_size: Option<u64>,
    pub sector_size: u32,
    pub cipher: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LuksRole {
    Header,
    Plaintext,
}

/// A partition holding Windows' boot manager and its BCD, and the partitions (by
/// source byte offset) that the BCD names: on MBR disks those must keep their start,
/// or the BCD must be rewritten, for the machine to boot (0xc000000e otherwise).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowsBoot {
    /// The partition also holds `\Windows` (boot files on the system partition):
    /// a data partition, not a "System Reserved" one.
    pub has_windows_dir: bool,
    pub bcd: Vec<BcdDeviceRef>,
    /// Why the BCD could not be decoded, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

impl PartitionMeta {
    pub fn new(partition: Option<Partition>, filesystem: Option<FsInfo>, mut map: UsedMap) -> Self {
        map.extents.clear();
        PartitionMeta {
            version: META_VERSION,
            partition,
            filesystem,
            map,
            windows_boot: None,
            luks: None,
        }
    }

    pub fn fs_name(&self) -> String {
        if self.map.raw {
            return "raw".into();
        }
        self.filesystem
            .as_ref()
            .map_or("unknown".into(), |f| f.kind.to_string())
    }
}

/// The source layout of an image, if it had a partition table.
pub fn table_meta(m: &Manifest) -> Result<Option<TableMeta>, ImagingError> {
    let Some(a) = m.areas.iter().find(|a| a.name == HEAD_AREA) else {
        return Ok(None);
    };
    let t: TableMeta = parse(m, a)?;
    Ok(Some(t))
}

pub fn partition_meta(m: &Manifest, a: &AreaManifest) -> Result<PartitionMeta, ImagingError> {
    parse(m, a)
}

fn parse<T: serde::de::DeserializeOwned>(
    m: &Manifest,
    a: &AreaManifest,
) -> Result<T, ImagingError> {
    let version = a.meta.get("version").and_then(|v| v.as_u64());
    if version != Some(u64::from(META_VERSION)) {
        return Err(ImagingError::Meta {
            image: m.name.clone(),
            area: a.name.clone(),
            what: format!("metadata version {version:?}, this ironclone reads {META_VERSION}"),
        });
    }
    serde_json::from_value(a.meta.clone()).map_err(|e| ImagingError::Meta {
        image: m.name.clone(),
        area: a.name.clone(),
        what: e.to_string(),
    })
}
