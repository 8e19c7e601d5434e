//! `ironclone repair-index <REPO>`: rebuilds the index files from the packs, which are
//! self-describing, after an index file was lost or damaged (verify names it).

use anyhow::Context;
use clap::Args as ClapArgs;
use ironclone::repo::Repository;
use std::path::PathBuf;

#[derive(ClapArgs)]
pub struct Args {
    /// The repository directory.
    pub repo: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let repo =
        Repository::open(&a.repo).with_context(|| format!("opening {}", a.repo.display()))?;
    let n = repo
        .repair_index()
        .with_context(|| format!("rebuilding the index of {}", a.repo.display()))?;
    println!("{n} pack(s) re-indexed; run `ironclone verify` to check the repository");
    Ok(())
}
