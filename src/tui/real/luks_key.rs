//! The LUKS passphrase of an image that holds plaintext areas, checked against the
//! image's own header before the plan (the TUI's restore flow asks it right after the
//! image is picked): a native image's header areas are restored into scratch files
//! and tested (`imaging::check_luks_key`, as the CLI's restore does), a Clonezilla
//! image's `<part>-luksHeader.bin` files are tested as they are. Nothing is written
//! to any disk; the key is never printed.

use super::open_repository;
use super::Unlocked;
use crate::foreign::clonezilla;
use crate::imaging::ImagingError;
use crate::share::Password;
use crate::tui::error::ServiceError;
use crate::tui::model::ImageView;
use crate::unlock::{test_key, UnlockError};
use std::path::Path;

/// A wrong key worded for the screen (asked again); other errors as they are.
fn worded(e: UnlockError) -> ServiceError {
    match e {
        UnlockError::WrongKey { .. } => ServiceError::Plain(
            "Wrong passphrase: no key slot of the image's LUKS header accepts it.".into(),
        ),
        other => ServiceError::Plain(format!("Checking the LUKS passphrase: {other}")),
    }
}

pub(super) fn check(
    unlocked: &Unlocked,
    repo: &Path,
    image: &ImageView,
    key: &Password,
) -> Result<(), ServiceError> {
    let key = key.luks_key();
    if image.clonezilla {
        let folder = super::clonezilla::folder_and_disk(&image.name).0;
        let img = clonezilla::list(repo)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|(_, r)| r.ok())
            .find(|i| i.name == folder)
            .ok_or_else(|| format!("The Clonezilla image {folder} is no longer there."))?;
        // One saved partition's row: its own header only (each LUKS partition of a
        // saveparts image may have its own passphrase).
        let part = image.partition.as_deref();
        for v in img.luks.iter().filter(|v| part.is_none_or(|p| p == v.part)) {
            test_key(&v.header, &key).map_err(worded)?;
        }
        return Ok(());
    }
    let r = open_repository(unlocked, repo)?;
    let scratch = super::jobs::scratch_root();
    match crate::imaging::check_luks_key(&r, &image.name, &key, &scratch) {
        Ok(()) => Ok(()),
        Err(ImagingError::Unlock(e)) => Err(worded(e)),
        Err(e) => Err(e.into()),
    }
}
