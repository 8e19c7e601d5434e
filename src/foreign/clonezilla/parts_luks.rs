//! A LUKS partition of a saveparts image restored onto a partition or an image file
//! (`restore DIR IMAGE --part sda3=DEV --unlock|--key-file F`). Clonezilla saved the
//! partition's header (`<part>-luksHeader.bin`) and the opened volume's image, as for
//! savedisk (luks.rs); the partition is read as a table-less disk that is the
//! partition alone (`ClonezillaRestore::open_luks`), planned as ironclone's native
//! image of a LUKS partition read with its key, and restored the way a savedisk
//! image's LUKS partitions are: through a temporary repository and the native LUKS
//! restore (imaging/luks_restore.rs): the same header written back, the volume opened
//! with the key through dm-crypt, the plaintext written through it and its
//! filesystem grown to the target (shrunk first in a scratch file onto a smaller one;
//! `--layout keep` keeps its saved size). Without a key it is refused naming the
//! partition and both options, and a key the header refuses is refused when tested
//! on the header, both before anything is written.

use super::parts_pv::copy_options;
use super::restore::{ClonezillaRestore, RestoreError};
use crate::device::BlockDevice;
use crate::imaging::{plan_restore, DiskRestorePlan, RestorePlanOptions};
use crate::plan::LayoutMode;
use crate::progress::Progress;
use crate::units::human_bytes;
use crate::unlock::LuksKey;
use std::path::Path;
use std::sync::Arc;

/// One LUKS partition opened and planned for a target.
pub struct PlannedLuks {
    pub part: String,
    pub src: ClonezillaRestore,
    pub plan: DiskRestorePlan,
    /// The partition's size as saved: the header area and the inner filesystem.
    pub saved_bytes: u64,
}

/// Opens LUKS partition `part` of the image `folder` (its header file, the inner
/// image's header) and plans it onto `target` of `target_bytes` in `mode`. Nothing is
/// written but `scratch`'s sparse files.
pub fn plan_luks(
    folder: &Path,
    part: &str,
    target: &str,
    target_bytes: u64,
    mode: LayoutMode,
    scratch: &Path,
) -> Result<PlannedLuks, RestoreError> {
    let src = ClonezillaRestore::open_luks(folder, part, scratch)?;
    let saved_bytes = src.manifest().source.size;
    let plan = plan_restore(
        src.manifest(),
        target_bytes,
        512,
        &RestorePlanOptions {
            mode,
            sizes: Default::default(),
        },
    )
    .map_err(|e| {
        crate::imaging::ImagingError::Other(format!(
            "partition {part} is LUKS, {} as saved ({saved_bytes} bytes); {target} holds {} \
             ({target_bytes} bytes): {e}; nothing was written",
            human_bytes(saved_bytes),
            human_bytes(target_bytes)
        ))
    })?;
    Ok(PlannedLuks {
        part: part.to_string(),
        src,
        plan,
        saved_bytes,
    })
}

impl PlannedLuks {
    /// Why the restore needs a key (naming the partition and both options).
    pub fn needs_key(&self) -> Option<String> {
        self.src.needs_key()
    }

    /// The partition's size on the target.
    pub fn new_bytes(&self) -> u64 {
        self.plan
            .parts
            .first()
            .map_or(self.saved_bytes, |p| p.new_size)
    }

    /// Decodes the inner image to its end, every checksum checked (before any
    /// write); one line per image decoded: `name fs used`, and the used bytes.
    pub fn check(&self, progress: &dyn Progress) -> Result<(Vec<String>, u64), RestoreError> {
        self.src.check_lines(progress)
    }

    /// Writes the checked partition onto `dev` (`target` names it) with `key`, then
    /// reads it back; the bytes written and what was done beyond copying.
    pub fn write(
        &self,
        dev: &dyn BlockDevice,
        target: &Path,
        scratch: &Path,
        key: Arc<LuksKey>,
        progress: &dyn Progress,
    ) -> Result<(u64, Vec<String>), RestoreError> {
        let mut opts = copy_options(scratch);
        opts.luks_key = Some(key);
        let (rep, _) = self
            .src
            .restore(&self.plan, dev, target, &opts, true, progress)?;
        Ok((rep.bytes_written, rep.steps))
    }
}
