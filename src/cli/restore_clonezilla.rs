//! `ironclone restore DIR IMAGE TARGET` where DIR holds Clonezilla image folders (or
//! `DIR/IMAGE` is one): the library's `clonezilla::restore::ClonezillaRestore` (the same
//! path the TUI takes) opens and plans the image, checks it whole before the plan is
//! shown (`--no-precheck` skips that: one streaming pass, and a damaged image then
//! stops a restore that has written part of the target), and writes it.

use super::progress::Renderer;
use super::restore::Args;
use ironclone::foreign::clonezilla::{self, restore::ClonezillaRestore, restore::Route};
use ironclone::units::human_bytes;

/// True when the command names a Clonezilla image rather than a repository image.
pub fn applies(a: &Args) -> bool {
    clonezilla::names_image(&a.repo, &a.name)
}

pub fn run(mut a: Args) -> anyhow::Result<u8> {
    let base = a.scratch.clone().unwrap_or_else(std::env::temp_dir);
    // Shrinks are staged there too (a repository restore uses the repository's tmp/;
    // the Clonezilla folder is only read).
    a.scratch = Some(base.clone());
    let folder = a.repo.join(&a.name);
    let t = std::time::Instant::now();
    let src = ClonezillaRestore::open(&folder, a.disk.as_deref(), &base)?;
    if let (false, None, Some(why)) = (a.unlock, &a.key_file, src.needs_key()) {
        anyhow::bail!(why);
    }
    if !a.json {
        eprintln!(
            "read the layout of {} in {:.1} s",
            folder.display(),
            t.elapsed().as_secs_f64()
        );
    }
    if a.no_precheck {
        if !a.json {
            eprintln!(
                "--no-precheck: the Clonezilla image {} is checked while it is written",
                folder.display()
            );
        }
    } else {
        if !a.json {
            eprintln!(
                "checking the Clonezilla image {} (every checksum, before the target is touched)",
                folder.display()
            );
        }
        // Before the plan is shown: a damaged image is told before anyone confirms.
        let c = std::time::Instant::now();
        let r = Renderer::new(a.json);
        let parts = src.check(&r)?;
        r.finish();
        if !a.json {
            eprintln!(
                "checked in {:.1} s: {}",
                c.elapsed().as_secs_f64(),
                parts
                    .iter()
                    .map(|p| format!("{} {} {}", p.part, p.filesystem, human_bytes(p.used_bytes)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let (kept, whole) = src.kept();
            eprintln!(
                "{} of decoded blocks kept in memory{}",
                human_bytes(kept),
                match whole {
                    true => ": the copy decodes nothing again",
                    false => " (the memory budget ran out: the rest is decoded again)",
                }
            );
        }
    }
    if !a.json {
        for w in src.warnings() {
            eprintln!("warning: {w}");
        }
    }
    let precheck = !a.no_precheck;
    let json = a.json;
    let done = super::restore::run_planned(&a, src.manifest(), &|plan, target, opts, r| {
        if let (Route::TempRepository(why), false) = (src.route(plan, opts), json) {
            eprintln!("{why}: restoring through a temporary repository");
        }
        Ok(src.restore(plan, target, &a.target, opts, precheck, r)?.0)
    });
    if !a.json && done.is_ok() {
        eprintln!(
            "a partition decode started over {} time(s) (the planner's metadata reads, then the copy)",
            src.restarts()
        );
    }
    done
}
