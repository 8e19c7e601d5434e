//! `restore DIR IMAGE --part sda3=TARGET --unlock|--key-file F` where `sda3` is a LUKS
//! partition of a saveparts image: planned, checked and written by
//! `foreign::clonezilla::parts_luks` (the savedisk LUKS route: a temporary repository,
//! the same header written back, the plaintext written through the volume opened
//! with the key); here only what the CLI keeps between staging and writing.

use ironclone::device::{open_path, Access};
use ironclone::foreign::clonezilla::parts_luks::{plan_luks, PlannedLuks};
use ironclone::plan::LayoutMode;
use ironclone::progress::NoProgress;
use ironclone::unlock::LuksKey;
use std::path::Path;
use std::sync::Arc;

/// One LUKS partition checked and planned, ready to be written.
pub(super) struct StagedLuks {
    pub luks: PlannedLuks,
    /// Bytes of used blocks the inner image holds.
    pub used_bytes: u64,
    /// One line per image decoded: `name fs used`.
    pub images: Vec<String>,
}

/// Reads LUKS partition `part` of the image `folder` and plans it onto `target` of
/// `target_bytes` in `mode`; refused without a key (`key` None) before the inner
/// image is decoded, else decodes it to its end (every checksum checked). Nothing
/// is written anywhere but `scratch`'s sparse files.
pub(super) fn stage(
    folder: &Path,
    part: &str,
    target: &Path,
    target_bytes: u64,
    mode: LayoutMode,
    key: Option<&LuksKey>,
    scratch: &Path,
) -> anyhow::Result<StagedLuks> {
    let luks = plan_luks(
        folder,
        part,
        &target.display().to_string(),
        target_bytes,
        mode,
        scratch,
    )?;
    if let (None, Some(why)) = (key, luks.needs_key()) {
        anyhow::bail!(why);
    }
    let (images, used_bytes) = luks.check(&NoProgress)?;
    Ok(StagedLuks {
        luks,
        used_bytes,
        images,
    })
}

/// Writes the staged partition onto `target` (a partition or an image file) with
/// `key`, then reads it back; the bytes written and the steps done.
pub(super) fn write(
    s: &StagedLuks,
    target: &Path,
    scratch: &Path,
    key: Arc<LuksKey>,
) -> anyhow::Result<(u64, Vec<String>)> {
    let dev = open_path(target, Access::ReadWrite)?;
    Ok(s.luks.write(&dev, target, scratch, key, &NoProgress)?)
}
