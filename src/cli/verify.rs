//! `ironclone verify <REPO> [NAME]`: checks every chunk, reference and root hash and
//! names the image, area and byte range of any damage. Exits non-zero on damage. A
//! Clonezilla image folder (`verify /home/partimag [IMAGE]`): verify_clonezilla.rs.

use super::progress::Renderer;
use clap::Args as ClapArgs;
use ironclone::repo::{self};
use std::path::PathBuf;

#[derive(ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub secret: super::repo_open::Secret,
    /// The repository directory (or a folder of Clonezilla images, with IMAGE).
    pub repo: PathBuf,
    /// Only this image (default: the whole repository, or every Clonezilla image in
    /// the folder).
    pub name: Option<String>,
    /// JSON-lines progress and a JSON report.
    #[arg(long)]
    pub json: bool,
    /// Read only some packs' data: `n/m` (the packs in bucket n of m, by pack id;
    /// runs 1/m..m/m cover everything) or `x%` (a random share each run). The
    /// structure (manifests, indexes, pack existence and sizes) is always checked.
    #[arg(long, value_name = "n/m|x%")]
    pub read_data_subset: Option<repo::DataSubset>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    // Clonezilla images and partition image files are checked whole.
    let whole = || match a.read_data_subset {
        Some(_) => Err(anyhow::anyhow!(
            "--read-data-subset reads some of a repository's packs; {} holds Clonezilla \
             images or is a partition image, which are checked whole",
            a.repo.display()
        )),
        None => Ok(()),
    };
    // A file is no repository: a partition image, or nothing this reads.
    if a.name.is_none() && a.repo.is_file() {
        whole()?;
        if let Some(done) = super::verify_clonezilla::run_file(&a.repo, a.json) {
            return done;
        }
    }
    if let Some(folders) = super::verify_clonezilla::folders(&a.repo, a.name.as_deref()) {
        whole()?;
        return super::verify_clonezilla::run(&folders, a.json);
    }
    let repo = super::repo_open::open(&a.repo, &a.secret)?;
    let r = Renderer::new(a.json);
    let subset = a.read_data_subset.unwrap_or(repo::DataSubset::All);
    let rep = repo::verify_subset(&repo, a.name.as_deref(), subset, &r)?;
    r.finish();
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({ "event": "result", "report": rep }))?
        );
    } else {
        println!(
            "checked {} image(s), {} pack(s), {} chunk(s)",
            rep.images.len(),
            rep.packs_checked,
            rep.chunks_checked
        );
        if rep.packs_not_read > 0 {
            println!(
                "{} pack(s) not read (--read-data-subset): only their structure was checked",
                rep.packs_not_read
            );
        }
        for p in &rep.problems {
            println!("problem: {p}");
        }
        for d in &rep.damages {
            println!(
                "DAMAGE image {} area {} bytes [{}, {}) (disk byte {}): {}",
                d.image,
                d.area,
                d.area_offset,
                d.area_offset.saturating_add(d.len),
                d.disk_offset,
                d.what
            );
        }
    }
    if rep.ok() {
        if !a.json {
            println!("ok");
        }
        Ok(())
    } else {
        anyhow::bail!(
            "repository damaged: {} damaged range(s), {} other problem(s)",
            rep.damages.len(),
            rep.problems.len()
        )
    }
}
