//! The BIOS side of the rescue entry: a GRUB menu entry. It is an /etc/grub.d/
//! script (like the distribution's 40_custom) rather than a custom.cfg, so that the
//! entry is part of the grub.cfg that `update-grub` generates and checks with
//! grub-script-check, and so that `grub-reboot "ironclone rescue"` names an entry that
//! exists in that file. Kernel updates regenerate grub.cfg; the script regenerates
//! the entry with it. The entry finds its files with `search --file`, which works
//! whether /boot is its own filesystem or part of the root.

use crate::resize::run_tool;
use std::path::Path;

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
fn first_tool(names: &[&str], args: &[&str]) -> Result<(), crate::resize::ToolError> {
    let mut last = None;
    for n in names {
        match run_tool(n, args, None, &[0]) {
            Ok(_) => return Ok(()),
            Err(e @ crate::resize::ToolError::Spawn { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(crate::resize::ToolError::Unsupported {
        what: "GRUB without update-grub or grub-mkconfig".into(),
    }))
}

/// Regenerates /boot/grub/grub.cfg of the running system.
pub fn update_config() -> Result<(), crate::resize::ToolError> {
    if Path::new("/boot/grub2").is_dir() && !Path::new("/boot/grub").is_dir() {
        return first_tool(&["grub2-mkconfig"], &["-o", "/boot/grub2/grub.cfg"]);
    }
    match first_tool(&["update-grub"], &[]) {
        Err(crate::resize::ToolError::Spawn { .. }) => {
            first_tool(&["grub-mkconfig"], &["-o", "/boot/grub/grub.cfg"])
        }
        other => other,
    }
}

/// One boot into the entry (grub.cfg's header honours grubenv's next_entry).
pub fn reboot_into(id: &str) -> Result<(), crate::resize::ToolError> {
    first_tool(&["grub-reboot", "grub2-reboot"], &[id])
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
