//! The UEFI side of the rescue entry: a `Boot####` load option that starts the live
//! kernel's EFI stub straight from the ESP (no boot loader in between), with the
//! kernel command line in the option's optional data as UCS-2, the way `efibootmgr
//! --unicode` writes it and the stub reads it. It is deliberately not in BootOrder: a
//! normal boot never reaches it; the firmware's boot menu does, and so does `BootNext`,
//! which the firmware deletes as it uses it, so one request is one rescue boot.

use crate::bootfix::efi_load_option::{HardDrive, LoadOption};
use crate::bootfix::efivars::EfiVars;
use crate::bootfix::BootfixError;

/// The load option for the rescue entry: HD(ESP)/File(`loader`) + UCS-2 `cmdline`.
pub fn load_option(
    label: &str,
    esp: HardDrive,
    loader: &str,
    cmdline: &str,
) -> Result<LoadOption, BootfixError> {
    let mut opt = LoadOption::new_hd_file(label, esp, loader);
    opt.optional_data = ucs2(cmdline)?;
    Ok(opt)
}

/// `text` as UCS-2 with a NUL terminator (the stub stops at the NUL).
fn ucs2(text: &str) -> Result<Vec<u8>, BootfixError> {
    let mut out = Vec::with_capacity(text.len() * 2 + 2);
    for c in text.chars() {
        let v = u32::from(c);
        if v == 0 || v > 0xFFFF {
            return Err(BootfixError::EfiFormat {
                what: "kernel command line",
                why: format!("character U+{v:04X} is not UCS-2"),
                at: 0,
            });
        }
        out.extend_from_slice(&(v as u16).to_le_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    Ok(out)
}

/// The command line stored in a load option's optional data (UCS-2, up to a NUL).
pub fn cmdline_of(opt: &LoadOption) -> Option<String> {
    let units: Vec<u16> = opt
        .optional_data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16(&units).ok()
}

/// The number of the entry whose loader is `loader` (our files: a user's own entry
/// for another kernel is never taken for ours).
pub fn find(vars: &EfiVars, loader: &str) -> Result<Option<(u16, LoadOption)>, BootfixError> {
    Ok(vars
        .boot_entries()?
        .into_iter()
        .find_map(|e| match e.option {
            Ok(o) if o.file() == Some(loader) => Some((e.number, o)),
            _ => None,
        }))
}

/// Writes the entry (reusing the number of an existing one with the same loader) and
/// leaves BootOrder as it is.
pub fn write(vars: &EfiVars, opt: &LoadOption, loader: &str) -> Result<u16, BootfixError> {
    let number = match find(vars, loader)? {
        Some((n, _)) => n,
        None => vars.free_boot_number()?,
    };
    vars.write_var(&format!("Boot{number:04X}"), &opt.encode()?)?;
    Ok(number)
}

/// Removes the entry with `loader`, from BootOrder too (a user may have added it),
/// and a BootNext still pointing at it. Returns the number removed.
pub fn remove(vars: &EfiVars, loader: &str) -> Result<Option<u16>, BootfixError> {
    let Some((n, _)) = find(vars, loader)? else {
        return Ok(None);
    };
    vars.delete_var(&format!("Boot{n:04X}"))?;
    let order = vars.boot_order()?;
    if order.contains(&n) {
        let kept: Vec<u16> = order.into_iter().filter(|&x| x != n).collect();
        vars.set_boot_order(&kept)?;
    }
    if boot_next(vars)? == Some(n) {
        vars.delete_var("BootNext")?;
    }
    Ok(Some(n))
}

/// Asks the firmware to boot entry `n` once, at the next boot.
pub fn set_boot_next(vars: &EfiVars, n: u16) -> Result<(), BootfixError> {
    vars.write_var("BootNext", &n.to_le_bytes())
}

pub fn boot_next(vars: &EfiVars) -> Result<Option<u16>, BootfixError> {
    match vars.read_var("BootNext")? {
        None => Ok(None),
        Some(v) if v.len() == 2 => Ok(Some(u16::from_le_bytes([v[0], v[1]]))),
        Some(v) => Err(BootfixError::EfiFormat {
            what: "BootNext",
            why: format!("{} bytes, not 2", v.len()),
            at: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const LOADER: &str = "\\EFI\\ironclone\\vmlinuz";

    fn esp() -> HardDrive {
        HardDrive::gpt(1, 2048, 81920, Uuid::from_bytes([0x11; 16]))
    }

    #[test]
    fn load_option_bytes() {
        let opt = load_option("ironclone rescue", esp(), LOADER, "initrd=\\a b").unwrap();
        let b = opt.encode().unwrap();
        // attributes ACTIVE, FilePathListLength = HD (42) + File + End (4).
        let file_len = 4 + (LOADER.len() + 1) * 2;
        assert_eq!(&b[0..4], &[1, 0, 0, 0]);
        assert_eq!(u16::from_le_bytes([b[4], b[5]]) as usize, 42 + file_len + 4);
        // The description "ironclone rescue" in UCS-2 with its NUL.
        let desc: Vec<u8> = "ironclone rescue\0"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert_eq!(&b[6..6 + desc.len()], &desc[..]);
        // The optional data is the command line in UCS-2, NUL-terminated, at the end.
        let tail: Vec<u8> = "initrd=\\a b\0"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert!(b.ends_with(&tail));
        assert_eq!(b.len(), 6 + desc.len() + 42 + file_len + 4 + tail.len());
        let back = LoadOption::decode(&b).unwrap();
        assert_eq!(back.file(), Some(LOADER));
        assert_eq!(cmdline_of(&back).as_deref(), Some("initrd=\\a b"));
        assert!(load_option("x", esp(), LOADER, "a\u{1F600}").is_err());
    }

    #[test]
    fn entry_stays_out_of_boot_order_and_boot_next_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let vars = EfiVars::new(dir.path());
        vars.write_var(
            "Boot0000",
            &LoadOption::new_hd_file("debian", esp(), "\\EFI\\debian\\shimx64.efi")
                .encode()
                .unwrap(),
        )
        .unwrap();
        vars.set_boot_order(&[0]).unwrap();
        let opt = load_option("ironclone rescue", esp(), LOADER, "quiet").unwrap();
        let n = write(&vars, &opt, LOADER).unwrap();
        assert_eq!(n, 1);
        assert_eq!(vars.boot_order().unwrap(), vec![0]);
        // Installing again reuses the number.
        assert_eq!(write(&vars, &opt, LOADER).unwrap(), 1);
        assert_eq!(boot_next(&vars).unwrap(), None);
        set_boot_next(&vars, n).unwrap();
        assert_eq!(boot_next(&vars).unwrap(), Some(1));
        let raw = std::fs::read(dir.path().join(format!(
            "BootNext-{}",
            crate::bootfix::efivars::EFI_GLOBAL_VARIABLE
        )))
        .unwrap();
        assert_eq!(raw, vec![7, 0, 0, 0, 1, 0]);
        // Remove takes the entry, a BootOrder mention and the pending BootNext along.
        vars.set_boot_order(&[0, 1]).unwrap();
        assert_eq!(remove(&vars, LOADER).unwrap(), Some(1));
        assert_eq!(vars.boot_order().unwrap(), vec![0]);
        assert_eq!(boot_next(&vars).unwrap(), None);
        assert_eq!(find(&vars, LOADER).unwrap(), None);
        assert_eq!(remove(&vars, LOADER).unwrap(), None);
        assert_eq!(vars.boot_entries().unwrap().len(), 1, "the OS entry stays");
        vars.write_var("BootNext", &[1]).unwrap();
        assert!(boot_next(&vars).is_err());
    }
}
