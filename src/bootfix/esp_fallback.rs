//! The UEFI fallback loader `\EFI\BOOT\BOOTX64.EFI`: with no usable `Boot####` entry
//! (a new machine, fresh NVRAM, or an entry whose HD() no longer matches the moved
//! ESP) this is the only file the firmware will start. Distributions install their
//! loader at `\EFI\<name>\` and often no fallback, so a restored disk boots on the old
//! machine and not on its replacement. This module copies the loader it finds to the
//! fallback path. It edits the FAT through mtools (`-i image@@offset`), which the live
//! system ships and which needs no mount; that is why it takes a path and an offset
//! rather than a `BlockDevice`. The choice of loader is a pure function, tested alone.

use super::BootfixError;
use std::path::Path;
use std::process::Command;

pub const FALLBACK_DIR: &str = "/EFI/BOOT";
pub const FALLBACK_LOADER: &str = "/EFI/BOOT/BOOTX64.EFI";
/// Loaders by preference: shim first (Secure Boot needs it, and it chains to the
/// grubx64.efi next to it), then GRUB, then Windows Boot Manager.
const LOADERS: [&str; 3] = ["shimx64.efi", "grubx64.efi", "bootmgfw.efi"];
/// Files shim loads from its own directory, copied along with it.
const SHIM_COMPANIONS: [&str; 2] = ["grubx64.efi", "mmx64.efi"];

/// What should happen to an ESP, from its file list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FallbackPlan {
    /// `\EFI\BOOT\BOOTX64.EFI` exists: nothing to do.
    AlreadyPresent,
    /// Copy each (source, destination) pair; the first one is the loader.
    Copy {
        loader: String,
        copies: Vec<(String, String)>,
    },
    /// No known loader on the ESP.
    NoLoader,
}

fn file_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

fn parent(p: &str) -> &str {
    p.rsplit_once('/').map_or("", |(d, _)| d)
}

/// Decides what to copy, given every file on the ESP as an absolute '/'-separated
/// path (`/EFI/debian/grubx64.efi`). FAT names are case-insensitive, so matching is
/// too. `prefer` (e.g. the file of the entry that used to be first in BootOrder) wins
/// when it is on the ESP; otherwise the best loader by kind, then by directory name.
pub fn plan_fallback(files: &[String], prefer: Option<&str>) -> FallbackPlan {
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if files.iter().any(|f| eq(f, FALLBACK_LOADER)) {
        return FallbackPlan::AlreadyPresent;
    }
    let not_in_boot_dir = |f: &&String| !eq(parent(f), FALLBACK_DIR);
    let preferred = prefer.map(|p| p.replace('\\', "/")).and_then(|p| {
        files
            .iter()
            .filter(not_in_boot_dir)
            .find(|f| eq(f, &p))
            .cloned()
    });
    let chosen = preferred.or_else(|| {
        LOADERS.iter().find_map(|name| {
            let mut hits: Vec<&String> = files
                .iter()
                .filter(not_in_boot_dir)
                .filter(|f| eq(file_name(f), name))
                .collect();
            hits.sort();
            hits.first().map(|s| (*s).clone())
        })
    });
    let Some(loader) = chosen else {
        return FallbackPlan::NoLoader;
    };
    let mut copies = vec![(loader.clone(), FALLBACK_LOADER.to_string())];
    if eq(file_name(&loader), "shimx64.efi") {
        let dir = parent(&loader);
        for comp in SHIM_COMPANIONS {
            if let Some(src) = files
                .iter()
                .find(|f| eq(parent(f), dir) && eq(file_name(f), comp))
            {
                copies.push((src.clone(), format!("{FALLBACK_DIR}/{comp}")));
            }
        }
    }
    FallbackPlan::Copy { loader, copies }
}

/// The loader a `Boot####` entry should name when the fallback path is to be left
/// as it is (`--no-fallback`: a multi-boot ESP whose `\EFI\BOOT\BOOTX64.EFI` belongs
/// to another system, or is deliberately absent): the loader `plan_fallback` would
/// have copied, else the fallback itself when it is the only loader, else none.
pub fn entry_loader(files: &[String], prefer: Option<&str>) -> Option<String> {
    let others: Vec<String> = files
        .iter()
        .filter(|f| !f.eq_ignore_ascii_case(FALLBACK_LOADER))
        .cloned()
        .collect();
    match plan_fallback(&others, prefer) {
        FallbackPlan::Copy { loader, .. } => Some(loader),
        _ => files
            .iter()
            .any(|f| f.eq_ignore_ascii_case(FALLBACK_LOADER))
            .then(|| FALLBACK_LOADER.to_string()),
    }
}

/// Runs one mtools command on the FAT at `offset` bytes into `image`.
fn mtools(
    tool: &'static str,
    image: &Path,
    offset: u64,
    args: &[&str],
) -> Result<String, BootfixError> {
    let target = format!("{}@@{offset}", image.display());
    let out = Command::new(tool)
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(&target)
        .args(args)
        .output()
        .map_err(|e| BootfixError::Tool {
            tool,
            args: format!("-i {target} {}", args.join(" ")),
            status: "could not run (is mtools installed?)".into(),
            stderr: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(BootfixError::Tool {
            tool,
            args: format!("-i {target} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A file's bytes, read back with mtype to check a copy.
fn mtools_bytes(image: &Path, offset: u64, path: &str) -> Result<Vec<u8>, BootfixError> {
    let target = format!("{}@@{offset}", image.display());
    let out = Command::new("mtype")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-i", &target, &format!("::{path}")])
        .output()
        .map_err(|e| BootfixError::Tool {
            tool: "mtype",
            args: format!("-i {target} ::{path}"),
            status: "could not run (is mtools installed?)".into(),
            stderr: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(BootfixError::Tool {
            tool: "mtype",
            args: format!("-i {target} ::{path}"),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// Every file (not directory) on the FAT at `offset` in `image`, as `/EFI/x/y.efi`.
pub fn list_esp(image: &Path, offset: u64) -> Result<Vec<String>, BootfixError> {
    let out = mtools("mdir", image, offset, &["-/", "-b", "::/"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("::"))
        .filter(|l| !l.ends_with('/'))
        .map(str::to_string)
        .collect())
}

/// What `ensure_fallback` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FallbackOutcome {
    pub plan: FallbackPlan,
    /// The ESP's files after the repair.
    pub files_after: Vec<String>,
}

/// Makes sure `\EFI\BOOT\BOOTX64.EFI` exists on the ESP at `offset` bytes into
/// `image` (a disk image or a block device), copying the loader `plan_fallback`
/// picks. An ESP with no loader is an error: there is nothing to boot.
pub fn ensure_fallback(
    image: &Path,
    offset: u64,
    prefer: Option<&str>,
) -> Result<FallbackOutcome, BootfixError> {
    let files = list_esp(image, offset)?;
    let plan = plan_fallback(&files, prefer);
    match &plan {
        FallbackPlan::AlreadyPresent => {}
        FallbackPlan::NoLoader => {
            return Err(BootfixError::Refused {
                device: format!("{}@{offset}", image.display()),
                what: "ESP fallback loader",
                why: format!(
                    "no {} on the ESP ({})",
                    LOADERS.join("/"),
                    crate::units::count(files.len(), "file", "files")
                ),
            })
        }
        FallbackPlan::Copy { copies, .. } => {
            // mmd fails on a directory that exists (possibly empty, so not in the
            // file list); a real failure shows up as mcopy's error just below.
            let _ = mtools("mmd", image, offset, &["::/EFI"]);
            let _ = mtools("mmd", image, offset, &["::/EFI/BOOT"]);
            for (src, dst) in copies {
                // mtools copies FAT to FAT directly inside one image.
                mtools(
                    "mcopy",
                    image,
                    offset,
                    &["-o", &format!("::{src}"), &format!("::{dst}")],
                )?;
                let a = mtools_bytes(image, offset, src)?;
                let b = mtools_bytes(image, offset, dst)?;
                if a != b || a.is_empty() {
                    return Err(BootfixError::Refused {
                        device: format!("{}@{offset}", image.display()),
                        what: "ESP fallback loader",
                        why: format!("{dst} does not read back equal to {src} after the copy"),
                    });
                }
            }
        }
    }
    let files_after = list_esp(image, offset)?;
    if !files_after
        .iter()
        .any(|f| f.eq_ignore_ascii_case(FALLBACK_LOADER))
    {
        return Err(BootfixError::Refused {
            device: format!("{}@{offset}", image.display()),
            what: "ESP fallback loader",
            why: format!("{FALLBACK_LOADER} still missing after the copy"),
        });
    }
    Ok(FallbackOutcome { plan, files_after })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn present_fallback_is_left_alone() {
        let files = v(&["/EFI/boot/bootx64.efi", "/EFI/debian/grubx64.efi"]);
        assert_eq!(plan_fallback(&files, None), FallbackPlan::AlreadyPresent);
    }

    #[test]
    fn picks_grub_then_shim_with_companions() {
        let files = v(&["/EFI/ironclone/grubx64.efi"]);
        assert_eq!(
            plan_fallback(&files, None),
            FallbackPlan::Copy {
                loader: "/EFI/ironclone/grubx64.efi".into(),
                copies: vec![("/EFI/ironclone/grubx64.efi".into(), FALLBACK_LOADER.into())],
            }
        );
        let files = v(&[
            "/EFI/Microsoft/Boot/bootmgfw.efi",
            "/EFI/debian/grubx64.efi",
            "/EFI/debian/shimx64.efi",
            "/EFI/debian/mmx64.efi",
            "/EFI/debian/fbx64.efi",
        ]);
        let FallbackPlan::Copy { loader, copies } = plan_fallback(&files, None) else {
            panic!("expected a copy plan")
        };
        assert_eq!(loader, "/EFI/debian/shimx64.efi");
        assert_eq!(
            copies,
            vec![
                (
                    "/EFI/debian/shimx64.efi".to_string(),
                    FALLBACK_LOADER.to_string()
                ),
                (
                    "/EFI/debian/grubx64.efi".to_string(),
                    "/EFI/BOOT/grubx64.efi".to_string()
                ),
                (
                    "/EFI/debian/mmx64.efi".to_string(),
                    "/EFI/BOOT/mmx64.efi".to_string()
                ),
            ]
        );
    }

    #[test]
    fn entry_loader_prefers_the_distribution_loader() {
        let files = v(&["/EFI/BOOT/BOOTX64.EFI", "/EFI/debian/grubx64.efi"]);
        assert_eq!(
            entry_loader(&files, None).as_deref(),
            Some("/EFI/debian/grubx64.efi")
        );
        let files = v(&["/efi/boot/bootx64.efi"]);
        assert_eq!(entry_loader(&files, None).as_deref(), Some(FALLBACK_LOADER));
        assert_eq!(entry_loader(&v(&["/EFI/BOOT/x.efi"]), None), None);
    }

    #[test]
    fn windows_only_and_preference_and_nothing() {
        let files = v(&["/EFI/Microsoft/Boot/bootmgfw.efi"]);
        assert!(
            matches!(plan_fallback(&files, None), FallbackPlan::Copy { loader, .. } if loader == "/EFI/Microsoft/Boot/bootmgfw.efi")
        );
        let files = v(&["/EFI/debian/grubx64.efi", "/EFI/arch/grubx64.efi"]);
        assert!(
            matches!(plan_fallback(&files, None), FallbackPlan::Copy { loader, .. } if loader == "/EFI/arch/grubx64.efi")
        );
        assert!(
            matches!(plan_fallback(&files, Some("\\EFI\\DEBIAN\\GRUBX64.EFI")), FallbackPlan::Copy { loader, .. } if loader == "/EFI/debian/grubx64.efi")
        );
        assert_eq!(
            plan_fallback(&v(&["/readme.txt", "/EFI/BOOT/other.efi"]), None),
            FallbackPlan::NoLoader
        );
        assert_eq!(plan_fallback(&[], None), FallbackPlan::NoLoader);
    }
}
