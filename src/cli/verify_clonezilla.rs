//! `ironclone verify DIR [IMAGE]` where DIR holds Clonezilla image folders (or is one):
//! the library's `clonezilla::verify` checks each folder's checksum lists and decodes
//! every image in it (partitions, LVs, LUKS volumes' contents) with every checksum it
//! carries, as a restore's check does, with no target and nothing written. Without
//! IMAGE every image folder in DIR is checked, a damaged one not stopping the others.
//! Exits non-zero when one did not check out, naming its first damage (the file, the
//! partition and, for a damaged block, the offset). `verify FILE` checks a standalone
//! partclone or ntfsclone image file the same way.

use super::progress::Renderer;
use ironclone::foreign::clonezilla::{self, ClonezillaImage};
use ironclone::units::human_bytes;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// The Clonezilla image folders a `verify REPO [NAME]` names when REPO is no
/// repository: `DIR IMAGE`, `DIR` being one image folder, or every image folder in
/// `DIR`. None for a repository, or a folder with no Clonezilla image.
pub fn folders(repo: &Path, name: Option<&str>) -> Option<Vec<PathBuf>> {
    if repo.join("config").exists() {
        return None;
    }
    match name {
        Some(n) => clonezilla::names_image(repo, n).then(|| vec![repo.join(n)]),
        None if clonezilla::is_image_dir(repo) => Some(vec![repo.to_path_buf()]),
        None => {
            let all: Vec<PathBuf> = clonezilla::list(repo)
                .ok()?
                .into_iter()
                .map(|(d, _)| d)
                .collect();
            (!all.is_empty()).then_some(all)
        }
    }
}

/// `verify FILE`: a standalone partclone or ntfsclone image (`sda1.ext4-ptcl-img.zst`).
/// `None` when `path` is no such file.
pub fn run_file(path: &Path, json: bool) -> Option<anyhow::Result<()>> {
    let cancel = match super::cancel::on_signals() {
        Ok(c) => c,
        Err(e) => return Some(Err(e)),
    };
    let r = Renderer::new(json);
    let done = clonezilla::verify::verify_file(path, &r, &cancel);
    r.finish();
    let d = match done {
        Ok(None) => return None,
        Ok(Some(d)) => d,
        Err(e) => {
            return Some(Err(anyhow::Error::new(e).context(format!(
                "partition image {} did not check out",
                path.display()
            ))))
        }
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "event": "result", "image": path, "images": [d] })
        );
    } else {
        println!(
            "checked partition image {}: {} {} used\nok",
            path.display(),
            d.filesystem,
            human_bytes(d.used_bytes)
        );
    }
    Some(Ok(()))
}

pub fn run(folders: &[PathBuf], json: bool) -> anyhow::Result<()> {
    let cancel = super::cancel::on_signals()?;
    let mut damaged = Vec::new();
    for f in folders {
        let checked = one(f, json, &cancel);
        // Ctrl-C: what is left is not checked, and what stopped is not damage.
        if cancel.load(std::sync::atomic::Ordering::SeqCst) {
            anyhow::bail!("verify cancelled by the user at {}", f.display());
        }
        if let Err(e) = checked {
            let e = format!("{e:#}");
            match json {
                true => println!(
                    "{}",
                    serde_json::json!({ "event": "result", "clonezilla": f, "error": e })
                ),
                false => println!("DAMAGED Clonezilla image {}: {e}", f.display()),
            }
            damaged.push(f.display().to_string());
        }
    }
    if !damaged.is_empty() {
        anyhow::bail!(
            "{} of {} Clonezilla image(s) did not check out (restoring one would stop there): {}",
            damaged.len(),
            folders.len(),
            damaged.join(", ")
        );
    }
    if !json {
        println!("ok");
    }
    Ok(())
}

/// Checks the image folder `folder`; what it found, printed.
fn one(folder: &Path, json: bool, cancel: &AtomicBool) -> anyhow::Result<()> {
    let img = ClonezillaImage::open(folder)?;
    let t = std::time::Instant::now();
    let r = Renderer::new(json);
    let done = clonezilla::verify::verify(&img, &r, cancel);
    r.finish();
    let done = done?;
    let sums: Vec<String> = img
        .checksums
        .iter()
        .map(|c| {
            c.path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "event": "result",
                "clonezilla": folder,
                "images": done,
                "checksum_lists": sums,
            })
        );
        return Ok(());
    }
    println!(
        "checked Clonezilla image {} in {:.1} s: {} image(s), checksum lists: {}",
        folder.display(),
        t.elapsed().as_secs_f64(),
        done.len(),
        match sums.is_empty() {
            true => "none in the folder".to_string(),
            false => sums.join(", "),
        }
    );
    for d in &done {
        println!(
            "  {} {} {} used",
            d.part,
            d.filesystem,
            human_bytes(d.used_bytes)
        );
    }
    Ok(())
}
