//! `ironclone verify DIR IMAGE` where DIR holds Clonezilla image folders: the library's
//! `clonezilla::verify` checks the folder's checksum lists and decodes every image in
//! it (partitions, LVs, LUKS volumes' contents) with every checksum it carries, as a
//! restore's check does, with no target and nothing written. Exits non-zero naming the
//! first damage found (the file, the partition and, for a damaged block, the offset).

use super::progress::Renderer;
use anyhow::Context;
use ironclone::foreign::clonezilla::{self, ClonezillaImage};
use ironclone::units::human_bytes;
use std::path::Path;

pub fn run(folder: &Path, json: bool) -> anyhow::Result<()> {
    let img = ClonezillaImage::open(folder)?;
    let cancel = super::cancel::on_signals()?;
    let t = std::time::Instant::now();
    let r = Renderer::new(json);
    let done = clonezilla::verify::verify(&img, &r, &cancel);
    r.finish();
    let done = done.with_context(|| {
        format!(
            "Clonezilla image {} did not check out; restoring it would stop there",
            folder.display()
        )
    })?;
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
            serde_json::to_string(&serde_json::json!({
                "event": "result",
                "clonezilla": folder,
                "images": done,
                "checksum_lists": sums,
            }))?
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
    println!("ok");
    Ok(())
}
