//! Clonezilla image folders (Clonezilla's /home/partimag) in the folder the user opened
//! as a repository, listed beside ironclone's images through the same reader as
//! `ironclone images DIR`. Folders that do not open are left out of the picker; the
//! CLI's listing names why.

use crate::foreign::clonezilla::{self, ClonezillaImage};
use crate::tui::model::ImageView;
use std::path::Path;

fn view(img: &ClonezillaImage) -> ImageView {
    let disks = match img.disks.is_empty() {
        true => img.parts.join(" "),
        false => img.disks.join(" "),
    };
    ImageView {
        name: img.name.clone(),
        date: img.created.clone().unwrap_or_default(),
        source_model: format!("clonezilla: {disks}"),
        source_serial: String::new(),
        source_size: img.disk_bytes().unwrap_or(0),
        stored_bytes: img.stored_bytes,
        data_bytes: img.stored_bytes,
        dedup_ratio: 1.0,
        clonezilla: true,
    }
}

/// The Clonezilla images directly under `dir` (none when it holds none or is unreadable).
pub(super) fn images(dir: &Path) -> Vec<ImageView> {
    if !dir.is_dir() {
        return Vec::new();
    }
    clonezilla::list(dir)
        .map(|l| {
            l.iter()
                .filter_map(|(_, r)| r.as_ref().ok())
                .map(view)
                .collect()
        })
        .unwrap_or_default()
}
