//! The server's settings for its clients: `boot/grub/site.cfg`, which the live
//! system's GRUB menu (image/grub.cfg) reads on network boots after its defaults. It
//! chooses the menu entry, the menu's timeout and extra kernel arguments, so one
//! command decides how every client starts.

use super::NetbootError;

/// The menu entry clients start (image/grub.cfg's ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BootMode {
    /// The TUI on the client's screen.
    Tui,
    /// The TUI on the client's first serial port.
    Serial,
    /// The job from the client's disk labelled IRONCLONE-JOB, then power off.
    Unattended,
    /// A shell only.
    Shell,
    /// Only the command `--append` gives as `ironclone.run=...` (e.g. `deploy-client`),
    /// then power off: for clients with nothing on their disks, where `unattended`
    /// would fail looking for its job disk.
    Run,
}

impl BootMode {
    fn menu_id(self) -> &'static str {
        match self {
            BootMode::Tui => "normal",
            BootMode::Serial => "serial",
            BootMode::Unattended => "unattended",
            BootMode::Shell => "shell",
            BootMode::Run => "run",
        }
    }
}

/// site.cfg's text. `append` becomes kernel arguments inside a GRUB string, so
/// anything GRUB's script would read as more than text there is refused.
pub fn site_cfg(mode: BootMode, timeout: u32, append: &str) -> Result<String, NetbootError> {
    if mode == BootMode::Run
        && !append
            .split_whitespace()
            .any(|w| w.starts_with("ironclone.run="))
    {
        return Err(NetbootError::Append {
            what: "--mode run needs the command in --append, as ironclone.run=ARGS \
                   (e.g. ironclone.run=deploy-client+--server+192.168.1.5)"
                .into(),
        });
    }
    if let Some(c) = append.chars().find(|c| {
        !(c.is_ascii_graphic() || *c == ' ') || matches!(c, '"' | '\'' | '\\' | '$' | ';')
    }) {
        return Err(NetbootError::Append {
            what: format!(
                "{c:?} cannot be passed through GRUB's menu; kernel arguments are plain words"
            ),
        });
    }
    Ok(format!(
        "# Written by `ironclone serve-boot`: how this server's clients start.\n\
         set default={}\nset ic_timeout={timeout}\nset ic_extra=\"{}\"\n",
        mode.menu_id(),
        append.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_mode_timeout_and_arguments() {
        let t = site_cfg(BootMode::Unattended, 2, "ironclone.site=lab42 quiet").unwrap();
        assert!(t.contains("set default=unattended\n"));
        assert!(t.contains("set ic_timeout=2\n"));
        assert!(t.contains("set ic_extra=\"ironclone.site=lab42 quiet\"\n"));
    }

    #[test]
    fn run_mode_needs_a_command() {
        assert!(site_cfg(BootMode::Run, 2, "ironclone.site=lab42").is_err());
        let t = site_cfg(
            BootMode::Run,
            2,
            "ironclone.run=deploy-client+--server+10.0.0.1",
        )
        .unwrap();
        assert!(t.contains("set default=run\n"));
    }

    #[test]
    fn every_mode_is_an_entry_of_the_menu() {
        use clap::ValueEnum;
        let menu = include_str!("../../image/grub.cfg");
        for m in BootMode::value_variants() {
            let id = format!("--id {} {{", m.menu_id());
            assert!(menu.contains(&id), "image/grub.cfg has no entry {id:?}");
        }
    }

    #[test]
    fn refuses_what_grub_would_interpret() {
        for bad in ["a\"b", "x; reboot", "$root", "a\\b", "a\nb", "it's"] {
            assert!(site_cfg(BootMode::Tui, 5, bad).is_err(), "{bad:?}");
        }
    }
}
