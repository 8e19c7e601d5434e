//! `ironclone repair-index <REPO>`: rebuilds the index files from the packs, which are
//! self-describing, after an index file was lost or damaged (verify names it).

use anyhow::Context;
use clap::Args as ClapArgs;
use std::path::PathBuf;

#[derive(ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub secret: super::repo_open::Secret,
    /// The repository directory.
    pub repo: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let repo = super::repo_open::open(&a.repo, &a.secret)?;
    let n = repo
        .repair_index()
        .with_context(|| format!("rebuilding the index of {}", a.repo.display()))?;
    println!("{n} pack(s) re-indexed; run `ironclone verify` to check the repository");
    Ok(())
}
