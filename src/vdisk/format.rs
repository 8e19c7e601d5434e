//! Which virtual-disk container a file is, from its own magic numbers.
//!
//! Read here rather than by asking `qemu-img info` to guess: qemu's probing of a raw
//! file that happens to start like a qcow2 header is a known trap (a guest can write
//! such a header into its raw disk), so the format is decided once, from the fields
//! below, and then passed to qemu explicitly. A file matching none of them is raw.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::VdiskError;

/// A container format qemu's block layer reads, named as its driver is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmFormat {
    /// QEMU copy-on-write v2/v3 (`QFI\xfb`, version 2 or 3).
    Qcow2,
    /// QEMU copy-on-write v1 (`QFI\xfb`, version 1).
    Qcow,
    /// QEMU enhanced disk (`QED\0`).
    Qed,
    /// VMware: a sparse extent (`KDMV`), an ESX sparse extent (`COWD`) or a text descriptor.
    Vmdk,
    /// Hyper-V VHDX (`vhdxfile`).
    Vhdx,
    /// Virtual PC / Hyper-V VHD (`conectix` cookie at the start, or in the footer of a
    /// fixed VHD's last 512 bytes).
    Vpc,
    /// VirtualBox VDI (signature 0xbeda107f at byte 0x40).
    Vdi,
}

impl VmFormat {
    /// qemu's driver name for the format.
    pub fn driver(self) -> &'static str {
        match self {
            VmFormat::Qcow2 => "qcow2",
            VmFormat::Qcow => "qcow",
            VmFormat::Qed => "qed",
            VmFormat::Vmdk => "vmdk",
            VmFormat::Vhdx => "vhdx",
            VmFormat::Vpc => "vpc",
            VmFormat::Vdi => "vdi",
        }
    }

    /// What users call it.
    pub fn label(self) -> &'static str {
        match self {
            VmFormat::Qcow2 => "qcow2",
            VmFormat::Qcow => "qcow (v1)",
            VmFormat::Qed => "QED",
            VmFormat::Vmdk => "VMDK",
            VmFormat::Vhdx => "VHDX",
            VmFormat::Vpc => "VHD",
            VmFormat::Vdi => "VDI",
        }
    }

    /// The format an export writes for a file name's extension (`None`: raw).
    pub fn for_extension(path: &Path) -> Result<Option<VmFormat>, VdiskError> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        Ok(match ext.as_str() {
            "qcow2" => Some(VmFormat::Qcow2),
            "vmdk" => Some(VmFormat::Vmdk),
            "vhdx" => Some(VmFormat::Vhdx),
            "vhd" => Some(VmFormat::Vpc),
            "vdi" => Some(VmFormat::Vdi),
            "img" | "raw" | "bin" => None,
            _ => {
                return Err(VdiskError::UnknownExtension {
                    path: path.to_path_buf(),
                })
            }
        })
    }
}

/// The container format of `path`, or `None` for raw data (and block devices).
pub fn sniff(path: &Path) -> Result<Option<VmFormat>, VdiskError> {
    let io = |source| VdiskError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Ok(None);
    }
    let mut head = [0u8; 512];
    let n = read_up_to(&file, &mut head, 0).map_err(io)?;
    let mut tail = [0u8; 512];
    let tail_len = if meta.len() >= 1024 {
        read_up_to(&file, &mut tail, meta.len() - 512).map_err(io)?
    } else {
        0
    };
    Ok(classify(&head[..n], &tail[..tail_len]))
}

/// The decision itself, on the first and last 512 bytes (kept apart from the I/O so the
/// fuzz-free unit tests can feed it headers).
pub fn classify(head: &[u8], tail: &[u8]) -> Option<VmFormat> {
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    if at(0, b"QFI\xfb") {
        // The version is big-endian at byte 4; qemu reads 1 with its `qcow` driver.
        let version = head
            .get(4..8)
            .map(|v| u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
        return Some(if version == Some(1) {
            VmFormat::Qcow
        } else {
            VmFormat::Qcow2
        });
    }
    if at(0, b"QED\0") {
        return Some(VmFormat::Qed);
    }
    if at(0, b"KDMV") || at(0, b"COWD") || at(0, b"# Disk DescriptorFile") {
        return Some(VmFormat::Vmdk);
    }
    if at(0, b"vhdxfile") {
        return Some(VmFormat::Vhdx);
    }
    if at(0x40, &0xbeda_107f_u32.to_le_bytes()) {
        return Some(VmFormat::Vdi);
    }
    if at(0, b"conectix") || tail.get(..8) == Some(b"conectix") {
        return Some(VmFormat::Vpc);
    }
    None
}

fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let pos = offset.saturating_add(done as u64);
        match file.read_at(&mut buf[done..], pos) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_with(off: usize, magic: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[off..off + magic.len()].copy_from_slice(magic);
        h
    }

    #[test]
    fn each_magic_is_recognised() {
        let mut q2 = head_with(0, b"QFI\xfb");
        q2[7] = 3;
        assert_eq!(classify(&q2, &[]), Some(VmFormat::Qcow2));
        let mut q1 = head_with(0, b"QFI\xfb");
        q1[7] = 1;
        assert_eq!(classify(&q1, &[]), Some(VmFormat::Qcow));
        assert_eq!(classify(&head_with(0, b"KDMV"), &[]), Some(VmFormat::Vmdk));
        assert_eq!(
            classify(b"# Disk DescriptorFile\nversion=1\n", &[]),
            Some(VmFormat::Vmdk)
        );
        assert_eq!(
            classify(&head_with(0, b"vhdxfile"), &[]),
            Some(VmFormat::Vhdx)
        );
        assert_eq!(
            classify(&head_with(0x40, &[0x7f, 0x10, 0xda, 0xbe]), &[]),
            Some(VmFormat::Vdi)
        );
        assert_eq!(
            classify(&[0u8; 512], &head_with(0, b"conectix")),
            Some(VmFormat::Vpc)
        );
    }

    #[test]
    fn anything_else_is_raw() {
        // An MBR disk: boot code, then 0x55aa.
        let mut mbr = vec![0u8; 512];
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        assert_eq!(classify(&mbr, &[]), None);
        assert_eq!(classify(&[], &[]), None);
        assert_eq!(
            classify(b"QFI", &[]),
            None,
            "a truncated magic is not a match"
        );
    }

    #[test]
    fn export_extensions() {
        let f = |s: &str| VmFormat::for_extension(Path::new(s));
        assert_eq!(f("a.qcow2").ok().flatten(), Some(VmFormat::Qcow2));
        assert_eq!(f("a.VHDX").ok().flatten(), Some(VmFormat::Vhdx));
        assert!(f("a.img").is_ok_and(|v| v.is_none()));
        assert!(f("a.iso").is_err());
    }
}
