//! Errors of whole-disk imaging: they wrap the layer that failed and say which image,
//! area or partition was being handled.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ImagingError {
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error(transparent)]
    Table(#[from] crate::table::TableError),
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error(transparent)]
    Tool(#[from] crate::resize::ToolError),
    #[error(transparent)]
    Bootfix(#[from] crate::bootfix::BootfixError),
    #[error(transparent)]
    Unlock(#[from] crate::unlock::UnlockError),
    #[error(transparent)]
    Luks(#[from] crate::ondisk::luks::LuksError),
    #[error("image {image}, area {area}: {what}")]
    Meta {
        image: String,
        area: String,
        what: String,
    },
    #[error(
        "partition {number}: its {fs} filesystem needs at least {min} bytes (said its resize tool) \
         but the plan gives it {planned}; {} bytes missing. Nothing was written to the target",
        min - planned
    )]
    ShrinkTooSmall {
        number: u32,
        fs: String,
        min: u64,
        planned: u64,
    },
    #[error(
        "partition {number} holds XFS, which cannot shrink: re-created, it needs at least {} \
         (its used blocks with slack, and mkfs.xfs's 300 MiB minimum), and the layout does \
         not fit. Nothing was written to the target",
        crate::units::human_bytes(*min)
    )]
    XfsNoRoom {
        #[source]
        source: crate::plan::PlanError,
        number: u32,
        min: u64,
    },
    #[error(
        "partition {number} holds an LVM2 PV with LVs whose filesystems cannot shrink: {lvs}. \
         Kept at their size, the PV needs at least {}, and the layout does not fit ({source}). \
         Nothing was written to the target",
        crate::units::human_bytes(*min)
    )]
    LvmNoRoom {
        source: crate::plan::PlanError,
        number: u32,
        min: u64,
        lvs: String,
    },
    #[error("partition {number}: re-creating its XFS: {source}")]
    RecreateXfs {
        number: u32,
        #[source]
        source: crate::usedmap::XfsError,
    },
    #[error(
        "partition {number} (ESP) cannot be re-created with {sector}-byte sectors: {why}. \
         Nothing was written to the target"
    )]
    Recreate {
        number: u32,
        sector: u32,
        why: super::recreate_esp::RecreateError,
    },
    #[error("{part}: marking its never-used inode tables for the kernel to initialise: {source}")]
    ExtTails {
        /// "partition N", or "the filesystem" on a disk without a table.
        part: String,
        /// Boxed: an ExtError is large and this variant is rare.
        #[source]
        source: Box<crate::usedmap::ExtError>,
    },
    #[error(
        "the disk is an LVM2 PV (VG {vg}) whose LVs need at least {} as a whole, the target \
         holds {}; each LV's least size: {lvs}. Nothing was written to the target",
        crate::units::human_bytes(*min),
        crate::units::human_bytes(*target)
    )]
    WholePvNoRoom {
        vg: String,
        min: u64,
        target: u64,
        lvs: String,
    },
    #[error("partition {number} (LVM2 PV): {what}. Nothing was written to the target")]
    Lvm { number: u32, what: String },
    #[error("partition {number} (LVM2 PV), LV {lv}: {source}. Nothing was written to the target")]
    LvmLv {
        number: u32,
        lv: String,
        /// Boxed: it is large and this variant is rare.
        #[source]
        source: Box<super::restore_lvm::LvStageError>,
    },
    #[error(transparent)]
    LvmMetadata(#[from] crate::ondisk::lvm::LvmError),
    #[error("scratch file {path}: {source}")]
    Scratch {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "area {area} ({what} off the target, then copied in): byte {offset} of it \
         (target byte {target_offset}) reads back different from what was written; the \
         target disk does not hold what it was given"
    )]
    StagedReadBack {
        area: String,
        what: &'static str,
        offset: u64,
        target_offset: u64,
    },
    #[error("{0}")]
    Other(String),
}
