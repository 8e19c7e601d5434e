//! The BIOS side of the rescue entry: a GRUB menu entry. It is an /etc/grub.d/
//! script (like the distribution's 40_custom) rather than a custom.cfg, so that the
//! entry is part of the grub.cfg that `update-grub` generates and checks with
//! grub-script-check, and so that `grub-reboot "ironclone rescue"` names an entry that
//! exists in that file. Kernel updates regenerate grub.cfg; the script regenerates
//! the entry with it. The entry finds its files with `search --file`, which works
//! whether /boot is its own filesystem or part of the root.
//!
//! One boot into it is grubenv's `next_entry`, which the header grub-mkconfig writes
//! (00_header) turns into the default for that boot and clears with `save_env`. It is
//! set with grub-editenv on the grubenv of the /boot the entry was installed under, as
//! grub-reboot does, rather than through grub-reboot itself: that way `--root DIR`
//! (and a live system standing in for the installed one) reaches DIR's grubenv, and
//! the rescue system, which has grub-editenv but not grub-reboot's shell library, can
//! clear a `next_entry` that GRUB could not (grubenv on LVM or RAID).

use crate::resize::{run_tool, ToolError, ToolOutput};
use std::path::{Path, PathBuf};

/// The script's name: after 40_custom/41_custom, so the entry ends the menu.
pub const SNIPPET: &str = "etc/grub.d/42_ironclone-rescue";

/// The /etc/grub.d script printing the menu entry `label` for the kernel and
/// initramfs in `dir` (relative to /boot, e.g. `ironclone`) with `cmdline`.
pub fn snippet(label: &str, dir: &str, cmdline: &str) -> String {
    // The command line is ours (no quotes, no `$`); the label too. GRUB's own quoting
    // is single quotes, which they never contain.
    format!(
        "#!/bin/sh\n\
         # Written by `ironclone rescue install`; removed by `ironclone rescue remove`.\n\
         exec tail -n +4 \"$0\"\n\
         menuentry '{label}' --id ironclone-rescue {{\n\
         \tif search --no-floppy --file --set=root /boot/{dir}/vmlinuz; then\n\
         \t\tset icdir=/boot/{dir}\n\
         \telse\n\
         \t\tsearch --no-floppy --file --set=root /{dir}/vmlinuz\n\
         \t\tset icdir=/{dir}\n\
         \tfi\n\
         \techo 'Loading the ironclone rescue system...'\n\
         \tlinux $icdir/vmlinuz {cmdline}\n\
         \tinitrd $icdir/initrd.img\n\
         }}\n"
    )
}

/// The first tool of `names` that runs, with `args` (Debian has update-grub, Fedora
/// grub2-mkconfig, others grub-mkconfig).
fn first_tool(names: &[&str], args: &[&str]) -> Result<ToolOutput, ToolError> {
    let mut last = None;
    for n in names {
        match run_tool(n, args, None, &[0]) {
            Ok(o) => return Ok(o),
            Err(e @ ToolError::Spawn { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(ToolError::Unsupported {
        what: "GRUB without update-grub or grub-mkconfig".into(),
    }))
}

/// Regenerates /boot/grub/grub.cfg of the running system.
pub fn update_config() -> Result<(), ToolError> {
    if Path::new("/boot/grub2").is_dir() && !Path::new("/boot/grub").is_dir() {
        return first_tool(&["grub2-mkconfig"], &["-o", "/boot/grub2/grub.cfg"]).map(drop);
    }
    match first_tool(&["update-grub"], &[]) {
        Err(ToolError::Spawn { .. }) => {
            first_tool(&["grub-mkconfig"], &["-o", "/boot/grub/grub.cfg"]).map(drop)
        }
        other => other.map(drop),
    }
}

/// GRUB's directory under `boot`: `grub`, or `grub2` where only that exists (Fedora,
/// openSUSE).
pub fn grub_dir(boot: &Path) -> PathBuf {
    let g2 = boot.join("grub2");
    if !boot.join("grub").is_dir() && g2.is_dir() {
        return g2;
    }
    boot.join("grub")
}

/// grub.cfg is generated text of some KiB; a larger one is not read.
const MAX_CFG: u64 = 16 << 20;

/// Why GRUB would not boot entry `id` once from the grub.cfg under `boot`, or `None`.
/// Without the entry in grub.cfg (update-grub not run since `rescue install`), GRUB
/// falls back to the first entry: the installed system boots, and the request would
/// only be found unanswered a day later. Without the header's `next_entry` handling
/// (a hand-written grub.cfg) next_entry does nothing.
pub fn config_problem(boot: &Path, id: &str) -> Option<String> {
    let cfg = grub_dir(boot).join("grub.cfg");
    let text = match std::fs::metadata(&cfg) {
        Ok(m) if m.len() > MAX_CFG => {
            return Some(format!("{} is larger than {MAX_CFG} bytes", cfg.display()))
        }
        Ok(_) => std::fs::read(&cfg).map(|b| String::from_utf8_lossy(&b).into_owned()),
        Err(e) => Err(e),
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => return Some(format!("{}: {e}", cfg.display())),
    };
    if !text.contains(&format!("--id {id} ")) {
        return Some(format!(
            "{} has no menu entry {id}: run update-grub (or grub-mkconfig -o {}) after `ironclone rescue install`",
            cfg.display(),
            cfg.display()
        ));
    }
    if !text.contains("${next_entry}") {
        return Some(format!(
            "{} does not honour grubenv's next_entry (not generated by grub-mkconfig?): GRUB would not boot {id} once",
            cfg.display()
        ));
    }
    None
}

/// `grub-editenv ENV ARGS` (Fedora: grub2-editenv).
fn editenv(env: &Path, args: &[&str]) -> Result<ToolOutput, ToolError> {
    let e = env.to_string_lossy();
    let mut a = vec![e.as_ref()];
    a.extend_from_slice(args);
    first_tool(&["grub-editenv", "grub2-editenv"], &a)
}

/// The value of `name` in grubenv's `list` output.
fn env_value<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    list.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
}

/// One boot into entry `id`: what `grub-reboot --boot-directory=BOOT id` does. A
/// `prev_saved_entry` left by grub-set-default's savedefault handling goes back to
/// `saved_entry` first; then `next_entry=id`. Returns the grubenv written.
pub fn reboot_into(boot: &Path, id: &str) -> Result<PathBuf, ToolError> {
    let env = grub_dir(boot).join("grubenv");
    if env.is_file() {
        let list = editenv(&env, &["list"])?.stdout;
        if let Some(prev) = env_value(&list, "prev_saved_entry").filter(|v| !v.is_empty()) {
            editenv(&env, &["set", &format!("saved_entry={prev}")])?;
            editenv(&env, &["unset", "prev_saved_entry"])?;
        }
    }
    editenv(&env, &["set", &format!("next_entry={id}")])?;
    Ok(env)
}

/// Clears `next_entry` in the grubenv under `boot` when it still names `id`: GRUB
/// clears it itself with `save_env` while booting the entry, but cannot where grubenv
/// is on LVM or RAID (grub-reboot warns of exactly this), and then every boot would
/// start the rescue entry. Returns true when it was still set.
pub fn clear_next_entry(boot: &Path, id: &str) -> Result<bool, ToolError> {
    let env = grub_dir(boot).join("grubenv");
    if !env.is_file() {
        return Ok(false);
    }
    let list = editenv(&env, &["list"])?.stdout;
    if env_value(&list, "next_entry") != Some(id) {
        return Ok(false);
    }
    editenv(&env, &["unset", "next_entry"])?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_prints_one_entry() {
        let s = snippet(
            "ironclone rescue",
            "ironclone",
            "ironclone.reboot=1 panic=10",
        );
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("menuentry 'ironclone rescue' --id ironclone-rescue {"));
        assert!(s.contains("\tlinux $icdir/vmlinuz ironclone.reboot=1 panic=10\n"));
        assert!(s.contains("search --no-floppy --file --set=root /boot/ironclone/vmlinuz"));
        // What the script prints (what update-grub puts in grub.cfg) starts at the
        // menuentry line: `tail -n +4` skips exactly the three script lines.
        let printed: Vec<&str> = s.lines().skip(3).collect();
        assert!(printed[0].starts_with("menuentry "), "{printed:?}");
        assert_eq!(printed.last(), Some(&"}"));
    }

    #[test]
    fn config_needs_the_entry_and_next_entry() {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path();
        let id = "ironclone-rescue";
        assert!(config_problem(boot, id).unwrap().contains("grub.cfg"));
        std::fs::create_dir(boot.join("grub")).unwrap();
        let header = "load_env\nif [ \"${next_entry}\" ] ; then\n set default=\"${next_entry}\"\n \
                      set next_entry=\n save_env next_entry\nfi\n";
        let entry = snippet("ironclone rescue", "ironclone", "quiet");
        let entry: String = entry.lines().skip(3).map(|l| format!("{l}\n")).collect();
        let cfg = boot.join("grub/grub.cfg");
        std::fs::write(&cfg, header).unwrap();
        let why = config_problem(boot, id).unwrap();
        assert!(why.contains("no menu entry ironclone-rescue") && why.contains("update-grub"));
        std::fs::write(&cfg, &entry).unwrap();
        assert!(config_problem(boot, id).unwrap().contains("next_entry"));
        std::fs::write(&cfg, format!("{header}{entry}")).unwrap();
        assert_eq!(config_problem(boot, id), None);
        // grub2 (Fedora) only where grub does not exist.
        std::fs::create_dir(boot.join("grub2")).unwrap();
        assert_eq!(grub_dir(boot), boot.join("grub"));
    }

    #[test]
    fn next_entry_set_and_cleared_with_grub_editenv() {
        if run_tool("grub-editenv", &["--version"], None, &[0]).is_err() {
            eprintln!("grub-editenv not installed (grub-common); skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path();
        std::fs::create_dir(boot.join("grub2")).unwrap();
        let env = boot.join("grub2/grubenv");
        assert_eq!(reboot_into(boot, "ironclone-rescue").unwrap(), env);
        let list = editenv(&env, &["list"]).unwrap().stdout;
        assert_eq!(env_value(&list, "next_entry"), Some("ironclone-rescue"));
        // grubenv is GRUB's fixed 1024-byte block (GRUB rewrites it in place).
        assert_eq!(std::fs::metadata(&env).unwrap().len(), 1024);
        // savedefault's prev_saved_entry goes back to saved_entry, as grub-reboot does.
        editenv(
            &env,
            &["set", "prev_saved_entry=2", "saved_entry=ironclone-rescue"],
        )
        .unwrap();
        reboot_into(boot, "ironclone-rescue").unwrap();
        let list = editenv(&env, &["list"]).unwrap().stdout;
        assert_eq!(env_value(&list, "saved_entry"), Some("2"));
        assert_eq!(env_value(&list, "prev_saved_entry"), None);
        assert!(clear_next_entry(boot, "ironclone-rescue").unwrap());
        let list = editenv(&env, &["list"]).unwrap().stdout;
        assert_eq!(env_value(&list, "next_entry"), None);
        assert_eq!(env_value(&list, "saved_entry"), Some("2"));
        assert!(!clear_next_entry(boot, "ironclone-rescue").unwrap());
        // Another entry's next_entry is the user's: left alone.
        editenv(&env, &["set", "next_entry=1"]).unwrap();
        assert!(!clear_next_entry(boot, "ironclone-rescue").unwrap());
        assert!(!clear_next_entry(&boot.join("none"), "ironclone-rescue").unwrap());
    }

    #[test]
    fn snippet_runs_as_a_script() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("42_x");
        std::fs::write(&p, snippet("ironclone rescue", "ironclone", "quiet")).unwrap();
        let out = std::process::Command::new("sh").arg(&p).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("menuentry 'ironclone rescue'"), "{text}");
        assert!(text.ends_with("}\n"));
    }
}
