//! `ironclone prune <REPO>`: removes chunks no image uses (marks them first when
//! backups are running; a later prune sweeps them).

use super::progress::Renderer;
use clap::Args as ClapArgs;
use ironclone::repo::{self};
use ironclone::units::human_bytes;
use std::path::PathBuf;

#[derive(ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub secret: super::repo_open::Secret,
    /// The repository directory.
    pub repo: PathBuf,
    /// JSON-lines progress and a JSON report.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let repo = super::repo_open::open(&a.repo, &a.secret)?;
    let r = Renderer::new(a.json);
    let rep = repo::prune(&repo, &r)?;
    r.finish();
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({ "event": "result", "report": rep }))?
        );
    } else {
        println!(
            "{} image(s) kept; {} pack(s) deleted, {} rewritten, {} chunk(s) removed, {} freed",
            rep.images,
            rep.packs_deleted,
            rep.packs_rewritten,
            rep.chunks_removed,
            human_bytes(rep.bytes_freed)
        );
        // Two-phase prune beside running backups (docs/FORMAT.md): say what waits.
        println!(
            "{} pack(s) marked for deletion, {} swept, {} kept (needed again), {} waiting",
            rep.packs_marked, rep.packs_deleted, rep.packs_kept, rep.packs_waiting
        );
        for w in &rep.waiting_for {
            println!("waiting for running backup {w}; a later prune sweeps once it ends");
        }
        if let Some(u) = &rep.uploads {
            // S3: a killed backup's manifest upload (prune_uploads.rs).
            let freed = u.bytes_freed.map_or("size unknown".to_string(), |b| {
                format!("{} freed", human_bytes(b))
            });
            println!(
                "{} unfinished upload(s) aborted ({freed}), {} kept (running backups)",
                u.aborted, u.kept
            );
        }
        for w in &rep.warnings {
            println!("warning: {w}");
        }
    }
    Ok(())
}
