//! What a backup should read, independent of partition tables: a list of areas of the
//! source device, each with the byte extents to copy and opaque metadata the caller
//! wants kept (table entry, filesystem kind, used-block map). The table and used-map
//! code builds a plan; this engine only stores and restores bytes.

use crate::usedmap::{ByteExtent, FileRun};
use serde::{Deserialize, Serialize};

/// The disk an image was taken from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub path: String,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub size: u64,
    pub sector_size: u32,
}

impl SourceInfo {
    /// `dev` as the disk at `path`, with no model or serial known (a scheduled run
    /// reads the disk by path; discovery is the front ends').
    pub fn of_device(path: &std::path::Path, dev: &dyn crate::device::BlockDevice) -> Self {
        SourceInfo {
            path: path.display().to_string(),
            model: None,
            serial: None,
            size: dev.size(),
            sector_size: dev.logical_sector_size(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaKind {
    /// Partition-table bytes copied as they are (LBA 0.. first partition, GPT backup).
    TableRaw,
    Partition,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedArea {
    /// Unique within the plan: "table-head", "gpt-backup", "p1", ...
    pub name: String,
    pub kind: AreaKind,
    /// Byte offset of the area on the source device.
    pub offset: u64,
    pub len: u64,
    /// What to read, relative to `offset`; sorted, non-overlapping, inside `len`.
    pub extents: Vec<ByteExtent>,
    /// Kept verbatim in the manifest.
    pub meta: serde_json::Value,
    /// Where files' data lies (area-relative, sorted, non-overlapping), when the
    /// filesystem was walked: chunks follow each file's own offsets there. Not kept in
    /// the manifest; empty means every extent is cut on the area's grid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_runs: Vec<FileRun>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackupPlan {
    pub source: SourceInfo,
    pub areas: Vec<PlannedArea>,
}

impl BackupPlan {
    /// Bytes the backup will read.
    pub fn total_bytes(&self) -> u64 {
        self.areas
            .iter()
            .flat_map(|a| a.extents.iter())
            .fold(0u64, |acc, e| acc.saturating_add(e.len))
    }

    /// A plan for one whole device read raw (tests, unknown disks).
    pub fn whole_device(source: SourceInfo) -> Self {
        let len = source.size;
        BackupPlan {
            areas: vec![PlannedArea {
                name: "disk".into(),
                kind: AreaKind::TableRaw,
                offset: 0,
                len,
                extents: if len > 0 {
                    vec![ByteExtent { offset: 0, len }]
                } else {
                    vec![]
                },
                meta: serde_json::Value::Null,
                file_runs: Vec::new(),
            }],
            source,
        }
    }
}
