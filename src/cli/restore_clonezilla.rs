//! `ironclone restore DIR IMAGE TARGET` where DIR holds Clonezilla image folders (or
//! `DIR/IMAGE` is one): the image is first imported into a temporary repository
//! (`ironclone import`, so every partclone checksum is checked before the target is
//! touched), then restored from it like any image, with the same planner, grow/shrink,
//! boot repair and verify. The cost over a native restore: one extra decode of the
//! partition images and a zstd level-1 compression of their used blocks, and room for
//! both the sparse scratch disk (used bytes, removed before the restore starts) and the
//! temporary repository (removed at the end) under --scratch or the temp directory.

use super::restore::Args;
use ironclone::foreign::clonezilla;
use std::path::PathBuf;

/// True when the command names a Clonezilla image rather than a repository image.
pub fn applies(a: &Args) -> bool {
    clonezilla::names_image(&a.repo, &a.name)
}

/// Removes the temporary repository however the restore ends.
struct TempRepo(PathBuf);

impl Drop for TempRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(mut a: Args) -> anyhow::Result<u8> {
    let base = a.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let repo = TempRepo(base.join(format!("ironclone-clonezilla-{}", std::process::id())));
    let folder = a.repo.join(&a.name);
    if !a.json {
        eprintln!(
            "importing the Clonezilla image {} (all checksums checked first)",
            folder.display()
        );
    }
    let temp = ironclone::repo::Repository::open_or_init(&repo.0)?;
    super::import::import(&folder, &temp, &a.name, 1, &base, a.json)?;
    drop(temp);
    a.repo = repo.0.clone();
    super::restore::run(a)
}
