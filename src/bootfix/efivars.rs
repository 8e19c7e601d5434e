//! Boot entries in the firmware's NVRAM, through Linux's efivarfs: each variable is a
//! file `Name-GUID` holding 4 bytes of attributes (little-endian) and then the value.
//! After a restore onto other hardware (or a moved ESP) the old `Boot####` entries
//! point at partitions that no longer exist; the restore removes those and adds one
//! for the new ESP, first in BootOrder. The directory is injectable so tests run on a
//! tempdir. The kernel creates efivarfs files immutable, so the flag is cleared (and a
//! filesystem that has no such flag is fine) before a file is rewritten or removed;
//! a value is rewritten as efivar does: remove, then create with one write().

use super::efi_load_option::{HardDrive, LoadOption, PartitionId};
use super::BootfixError;
use std::fs;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// EFI_GLOBAL_VARIABLE: the vendor GUID of Boot#### and BootOrder.
pub const EFI_GLOBAL_VARIABLE: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS.
pub const BOOT_VAR_ATTRIBUTES: u32 = 0x7;
pub const DEFAULT_EFIVARS_DIR: &str = "/sys/firmware/efi/efivars";
/// No firmware variable is anywhere near this big; bounds what we read.
const MAX_VAR_SIZE: u64 = 1 << 20;

/// One `Boot####` entry as found in NVRAM.
#[derive(Debug)]
pub struct BootEntry {
    pub number: u16,
    /// `Err` keeps an entry whose value does not decode: it is reported, never deleted.
    pub option: Result<LoadOption, BootfixError>,
}

/// efivarfs (or a directory laid out like it).
pub struct EfiVars {
    dir: PathBuf,
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> BootfixError + 'a {
    move |source| BootfixError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

// FS_IOC_GETFLAGS / FS_IOC_SETFLAGS take a pointer to an int-sized flag word.
nix::ioctl_read!(fs_ioc_getflags, b'f', 1, libc_long);
nix::ioctl_write_ptr!(fs_ioc_setflags, b'f', 2, libc_long);
#[allow(non_camel_case_types)]
type libc_long = std::ffi::c_long;
const FS_IMMUTABLE_FL: libc_long = 0x10;

/// Clears the immutable flag of `path` if it has one. Filesystems without inode
/// flags (tmpfs in tests) answer ENOTTY/EOPNOTSUPP: nothing to clear.
fn clear_immutable(path: &Path) -> Result<(), BootfixError> {
    let f = fs::File::open(path).map_err(io(path, "open to clear immutable flag"))?;
    let mut flags: libc_long = 0;
    // SAFETY: the fd is open for the duration of the call and `flags` is a valid
    // pointer to a flag word of the size the ioctl expects.
    match unsafe { fs_ioc_getflags(f.as_raw_fd(), &mut flags) } {
        Ok(_) => {}
        Err(nix::errno::Errno::ENOTTY)
        | Err(nix::errno::Errno::EOPNOTSUPP)
        | Err(nix::errno::Errno::EINVAL) => return Ok(()),
        Err(e) => return Err(io(path, "FS_IOC_GETFLAGS")(e.into())),
    }
    if flags & FS_IMMUTABLE_FL == 0 {
        return Ok(());
    }
    flags &= !FS_IMMUTABLE_FL;
    // SAFETY: as above.
    unsafe { fs_ioc_setflags(f.as_raw_fd(), &flags) }
        .map_err(|e| io(path, "FS_IOC_SETFLAGS")(e.into()))?;
    Ok(())
}

impl EfiVars {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        EfiVars { dir: dir.into() }
    }

    /// The running system's efivarfs, if it is mounted (i.e. we booted with UEFI).
    pub fn system() -> Option<Self> {
        let dir = Path::new(DEFAULT_EFIVARS_DIR);
        dir.is_dir().then(|| EfiVars::new(dir))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-{EFI_GLOBAL_VARIABLE}"))
    }

    /// A global variable's value (attributes stripped), `None` when it does not exist.
    pub fn read_var(&self, name: &str) -> Result<Option<Vec<u8>>, BootfixError> {
        let path = self.path(name);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, "stat")(e)),
        };
        if meta.len() > MAX_VAR_SIZE {
            return Err(BootfixError::EfiFormat {
                what: "EFI variable",
                why: format!("{} is {} bytes", path.display(), meta.len()),
                at: 0,
            });
        }
        let raw = fs::read(&path).map_err(io(&path, "read"))?;
        if raw.len() < 4 {
            return Err(BootfixError::EfiFormat {
                what: "EFI variable",
                why: format!("{} has no 4-byte attribute prefix", path.display()),
                at: 0,
            });
        }
        Ok(Some(raw[4..].to_vec()))
    }

    /// Writes a global variable with NV|BS|RT, replacing any old value.
    pub fn write_var(&self, name: &str, value: &[u8]) -> Result<(), BootfixError> {
        let path = self.path(name);
        self.delete_var(name)?;
        let mut buf = Vec::with_capacity(4 + value.len());
        buf.extend_from_slice(&BOOT_VAR_ATTRIBUTES.to_le_bytes());
        buf.extend_from_slice(value);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io(&path, "create"))?;
        // efivarfs takes the whole variable in a single write.
        let n = f.write(&buf).map_err(io(&path, "write"))?;
        if n != buf.len() {
            return Err(io(&path, "write")(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("short write: {n} of {} bytes", buf.len()),
            )));
        }
        Ok(())
    }

    /// Removes a global variable; a missing one is not an error.
    pub fn delete_var(&self, name: &str) -> Result<bool, BootfixError> {
        let path = self.path(name);
        if !path.exists() {
            return Ok(false);
        }
        clear_immutable(&path)?;
        fs::remove_file(&path).map_err(io(&path, "remove"))?;
        Ok(true)
    }

    pub fn boot_order(&self) -> Result<Vec<u16>, BootfixError> {
        let Some(v) = self.read_var("BootOrder")? else {
            return Ok(Vec::new());
        };
        if v.len() % 2 != 0 {
            return Err(BootfixError::EfiFormat {
                what: "BootOrder",
                why: format!("odd length {}", v.len()),
                at: 0,
            });
        }
        Ok(v.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect())
    }

    pub fn set_boot_order(&self, order: &[u16]) -> Result<(), BootfixError> {
        let bytes: Vec<u8> = order.iter().flat_map(|n| n.to_le_bytes()).collect();
        self.write_var("BootOrder", &bytes)
    }

    /// Every `Boot####` variable in the directory, sorted by number.
    pub fn boot_entries(&self) -> Result<Vec<BootEntry>, BootfixError> {
        let suffix = format!("-{EFI_GLOBAL_VARIABLE}");
        let mut out = Vec::new();
        for ent in fs::read_dir(&self.dir).map_err(io(&self.dir, "read_dir"))? {
            let ent = ent.map_err(io(&self.dir, "read_dir"))?;
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(var) = name.strip_suffix(&suffix) else {
                continue;
            };
            let Some(hex) = var.strip_prefix("Boot") else {
                continue;
            };
            if hex.len() != 4 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let Ok(number) = u16::from_str_radix(hex, 16) else {
                continue;
            };
            let value = self.read_var(var)?.unwrap_or_default();
            out.push(BootEntry {
                number,
                option: LoadOption::decode(&value),
            });
        }
        out.sort_by_key(|e| e.number);
        Ok(out)
    }

    /// The lowest `Boot####` number not in use.
    pub fn free_boot_number(&self) -> Result<u16, BootfixError> {
        let used: Vec<u16> = self.boot_entries()?.iter().map(|e| e.number).collect();
        (0..=u16::MAX)
            .find(|n| !used.contains(n))
            .ok_or(BootfixError::EfiFormat {
                what: "Boot####",
                why: "all 65536 numbers in use".into(),
                at: 0,
            })
    }

    /// Writes `option` as a `Boot####` entry and puts it first in BootOrder. An
    /// existing entry with the same device path and file is reused, not duplicated.
    pub fn add_first(&self, option: &LoadOption) -> Result<u16, BootfixError> {
        let existing = self.boot_entries()?.into_iter().find(|e| {
            e.option
                .as_ref()
                .is_ok_and(|o| o.file_path == option.file_path)
        });
        let number = match existing {
            Some(e) => e.number,
            None => self.free_boot_number()?,
        };
        self.write_var(&format!("Boot{number:04X}"), &option.encode()?)?;
        let mut order = self.boot_order()?;
        order.retain(|&n| n != number);
        order.insert(0, number);
        self.set_boot_order(&order)?;
        Ok(number)
    }

    /// Removes the `Boot####` entries whose HD() names a GPT partition GUID that is
    /// not in `existing_partitions`, and drops them from BootOrder. Entries without an
    /// HD() node (firmware apps, network, removable media), MBR ones and undecodable
    /// ones stay.
    pub fn remove_stale(
        &self,
        existing_partitions: &[Uuid],
    ) -> Result<Vec<(u16, LoadOption)>, BootfixError> {
        self.remove_stale_where(
            |_, id| matches!(id, PartitionId::Gpt(g) if !existing_partitions.contains(&g)),
        )
    }

    /// Removes the `Boot####` entries with an HD() node naming a GPT partition or an
    /// MBR disk for which `stale(hd, id)` holds, and drops them from BootOrder.
    /// Entries without an HD() node or without a signature, and undecodable ones,
    /// always stay.
    pub fn remove_stale_where(
        &self,
        stale: impl Fn(&HardDrive, PartitionId) -> bool,
    ) -> Result<Vec<(u16, LoadOption)>, BootfixError> {
        let mut removed = Vec::new();
        for e in self.boot_entries()? {
            let Ok(opt) = e.option else { continue };
            let Some(hd) = opt.hard_drive() else {
                continue;
            };
            let Some(id) = hd.partition_id() else {
                continue;
            };
            if !stale(hd, id) {
                continue;
            }
            self.delete_var(&format!("Boot{:04X}", e.number))?;
            removed.push((e.number, opt));
        }
        if !removed.is_empty() {
            let mut order = self.boot_order()?;
            order.retain(|n| !removed.iter().any(|(r, _)| r == n));
            self.set_boot_order(&order)?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guid(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn entry(desc: &str, g: Uuid, start: u64) -> LoadOption {
        LoadOption::new_hd_file(
            desc,
            HardDrive::gpt(1, start, 2048, g),
            "\\EFI\\x\\grubx64.efi",
        )
    }

    #[test]
    fn variables_have_the_attribute_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let vars = EfiVars::new(dir.path());
        assert_eq!(vars.read_var("BootOrder").unwrap(), None);
        vars.set_boot_order(&[3, 1]).unwrap();
        let raw = fs::read(dir.path().join(format!("BootOrder-{EFI_GLOBAL_VARIABLE}"))).unwrap();
        assert_eq!(raw, vec![7, 0, 0, 0, 3, 0, 1, 0]);
        assert_eq!(vars.boot_order().unwrap(), vec![3, 1]);
        vars.set_boot_order(&[9]).unwrap();
        assert_eq!(vars.boot_order().unwrap(), vec![9]);
        fs::write(
            dir.path().join(format!("BootOrder-{EFI_GLOBAL_VARIABLE}")),
            [7, 0, 0, 0, 1],
        )
        .unwrap();
        assert!(vars.boot_order().is_err());
        fs::write(
            dir.path().join(format!("BootOrder-{EFI_GLOBAL_VARIABLE}")),
            [7, 0],
        )
        .unwrap();
        assert!(vars.boot_order().is_err());
    }

    #[test]
    fn add_first_and_remove_stale() {
        let dir = tempfile::tempdir().unwrap();
        let vars = EfiVars::new(dir.path());
        // An old entry for a partition that is gone, one for a live one, and a
        // firmware entry without HD() plus an undecodable one that must survive.
        vars.write_var("Boot0000", &entry("old", guid(1), 2048).encode().unwrap())
            .unwrap();
        vars.write_var("Boot0001", &entry("live", guid(2), 4096).encode().unwrap())
            .unwrap();
        let shell = LoadOption {
            attributes: 1,
            description: "EFI Internal Shell".into(),
            file_path: vec![],
            optional_data: vec![],
        };
        vars.write_var("Boot0002", &shell.encode().unwrap())
            .unwrap();
        vars.write_var("Boot0003", &[1, 2, 3]).unwrap();
        fs::write(
            dir.path()
                .join("Boot0004-00000000-0000-0000-0000-000000000000"),
            [7, 0, 0, 0],
        )
        .unwrap();
        vars.set_boot_order(&[0, 1, 2, 3]).unwrap();

        let n = vars.add_first(&entry("ironclone", guid(3), 8192)).unwrap();
        assert_eq!(n, 4);
        assert_eq!(vars.boot_order().unwrap(), vec![4, 0, 1, 2, 3]);
        // Adding the same path again reuses the number.
        assert_eq!(
            vars.add_first(&entry("ironclone", guid(3), 8192)).unwrap(),
            4
        );
        assert_eq!(vars.boot_order().unwrap(), vec![4, 0, 1, 2, 3]);

        // remove_stale judges GPT entries only: an MBR one is never its business.
        let mbr = LoadOption::new_hd_file(
            "mbr",
            HardDrive::mbr(1, 2048, 2048, 0xDEAD_BEEF),
            "\\EFI\\x\\grubx64.efi",
        );
        vars.write_var("Boot0005", &mbr.encode().unwrap()).unwrap();
        let removed = vars.remove_stale(&[guid(2), guid(3)]).unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].0, 0);
        assert_eq!(vars.boot_order().unwrap(), vec![4, 1, 2, 3]);
        let left: Vec<u16> = vars
            .boot_entries()
            .unwrap()
            .iter()
            .map(|e| e.number)
            .collect();
        assert_eq!(left, vec![1, 2, 3, 4, 5]);
        assert!(vars.boot_entries().unwrap()[2].option.is_err());
        let first = vars.read_var("Boot0004").unwrap().unwrap();
        assert_eq!(LoadOption::decode(&first).unwrap().description, "ironclone");
    }

    #[test]
    #[ignore = "needs root"]
    fn rewrites_an_immutable_variable() {
        // efivarfs marks new files immutable; an ext4 tempdir with chattr +i stands in.
        let dir = tempfile::tempdir().unwrap();
        let vars = EfiVars::new(dir.path());
        vars.set_boot_order(&[1]).unwrap();
        let path = dir.path().join(format!("BootOrder-{EFI_GLOBAL_VARIABLE}"));
        let st = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .status();
        assert!(
            st.is_ok_and(|s| s.success()),
            "chattr +i failed: this test needs root and a filesystem with inode flags for {}",
            path.display()
        );
        assert!(
            fs::remove_file(&path).is_err(),
            "immutable file should resist removal"
        );
        vars.set_boot_order(&[2, 1]).unwrap();
        assert_eq!(vars.boot_order().unwrap(), vec![2, 1]);
        assert!(vars.delete_var("BootOrder").unwrap());
        assert!(!vars.delete_var("BootOrder").unwrap());
    }
}
