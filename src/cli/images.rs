//! `ironclone images <REPO>`: what is in a repository, with sizes and dedup figures; a
//! folder of Clonezilla images is listed by `images_clonezilla`.

use clap::Args as ClapArgs;
use ironclone::units::{count, human_bytes};
use std::path::PathBuf;

#[derive(ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub secret: super::repo_open::Secret,
    /// The repository directory, or a folder of Clonezilla images (or one of them).
    pub repo: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if !a.repo.join("config").exists() && super::images_clonezilla::applies(&a.repo) {
        return super::images_clonezilla::run(&a.repo, a.json);
    }
    let repo = super::repo_open::open(&a.repo, &a.secret)?;
    let list = repo.list_images()?;
    if a.json {
        let v: Vec<serde_json::Value> = list
            .iter()
            .map(|r| match r {
                Ok(s) => serde_json::to_value(s).unwrap_or_default(),
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "images": v }))?
        );
        return Ok(());
    }
    if list.is_empty() {
        println!("no images in {}", a.repo.display());
    }
    for r in list {
        match r {
            Ok(s) => {
                println!(
                "{:<24} {:>10}  created {}  from {} ({}{})  areas {}  new {} stored {} dedup {} zero {}",
                s.name,
                human_bytes(s.data_bytes),
                super::time::utc_human(s.created_unix),
                s.source.path,
                human_bytes(s.source.size),
                s.source.serial.as_deref().map(|x| format!(", serial {x}")).unwrap_or_default(),
                s.areas.join(","),
                human_bytes(s.stats.new_bytes),
                human_bytes(s.stats.new_stored_bytes),
                human_bytes(s.stats.dedup_bytes),
                human_bytes(s.stats.zero_bytes),
                );
                if !s.plaintext_areas.is_empty() {
                    println!(
                        "  holds the PLAINTEXT of encrypted (LUKS) volumes: {}",
                        s.plaintext_areas.join(", ")
                    );
                }
                if s.stats.unreadable_bytes > 0 {
                    println!(
                        "  damaged: {} unreadable on the source, {} hit (images --json for the list)",
                        human_bytes(s.stats.unreadable_bytes),
                        count(
                            s.damage_reports
                                .iter()
                                .filter_map(|d| d.report.as_ref())
                                .map(|r| r.files.len() + r.metadata.len())
                                .sum::<usize>(),
                            "file or structure",
                            "files or structures"
                        )
                    );
                }
            }
            Err(e) => println!("DAMAGED: {e}"),
        }
    }
    Ok(())
}
