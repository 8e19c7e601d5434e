//! EFI_LOAD_OPTION, the value of a `Boot####` variable (UEFI spec 3.1.3): attributes
//! u32, FilePathListLength u16, a NUL-terminated UCS-2 description, the device path
//! list, then optional data. A restored ESP gets a new start and size (and on new
//! hardware no entry at all), and the firmware matches entries by the HD() node's
//! partition number, start, size and GUID, so the restore must decode the old entries
//! to find stale ones and encode a new one the way efibootmgr does: HD()/File().

use super::{le_u32, le_u64, BootfixError};
use std::fmt;
use uuid::Uuid;

/// LOAD_OPTION_ACTIVE: the firmware only boots active options.
pub const LOAD_OPTION_ACTIVE: u32 = 0x0000_0001;

const MEDIA_DEVICE_PATH: u8 = 0x04;
const MEDIA_HARDDRIVE_DP: u8 = 0x01;
const MEDIA_FILEPATH_DP: u8 = 0x04;
const END_DEVICE_PATH_TYPE: u8 = 0x7F;
const END_ENTIRE_DEVICE_PATH_SUBTYPE: u8 = 0xFF;
const HD_NODE_LEN: usize = 42;
/// HARDDRIVE_DEVICE_PATH.MBRType / SignatureType values (UEFI spec 10.3.5.1).
pub const MBR_TYPE_PCAT: u8 = 0x01;
pub const MBR_TYPE_GPT: u8 = 0x02;
pub const SIGNATURE_TYPE_MBR: u8 = 0x01;
pub const SIGNATURE_TYPE_GUID: u8 = 0x02;
/// A load option bigger than this is not something a firmware stores.
const MAX_LOAD_OPTION: usize = 64 * 1024;

/// HARDDRIVE_DEVICE_PATH: which partition the loader lives on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HardDrive {
    pub partition_number: u32,
    /// Start LBA and size in logical blocks.
    pub partition_start: u64,
    pub partition_size: u64,
    /// The GPT unique partition GUID in its on-disk (mixed-endian) byte order, or the
    /// MBR disk signature in the first 4 bytes.
    pub signature: [u8; 16],
    pub mbr_type: u8,
    pub signature_type: u8,
}

impl HardDrive {
    /// A GPT partition, identified by its unique partition GUID.
    pub fn gpt(
        partition_number: u32,
        partition_start: u64,
        partition_size: u64,
        guid: Uuid,
    ) -> Self {
        HardDrive {
            partition_number,
            partition_start,
            partition_size,
            signature: guid.to_bytes_le(),
            mbr_type: MBR_TYPE_GPT,
            signature_type: SIGNATURE_TYPE_GUID,
        }
    }

    /// A partition of an MBR disk, identified by the disk's 32-bit signature (the
    /// u32 at MBR offset 0x1B8) and the partition's number, start and size: an MBR
    /// has no per-partition identifier, so the firmware needs all of them.
    pub fn mbr(
        partition_number: u32,
        partition_start: u64,
        partition_size: u64,
        disk_signature: u32,
    ) -> Self {
        let mut signature = [0u8; 16];
        signature[..4].copy_from_slice(&disk_signature.to_le_bytes());
        HardDrive {
            partition_number,
            partition_start,
            partition_size,
            signature,
            mbr_type: MBR_TYPE_PCAT,
            signature_type: SIGNATURE_TYPE_MBR,
        }
    }

    /// The partition's GUID when this node names a GPT partition.
    pub fn partition_guid(&self) -> Option<Uuid> {
        (self.signature_type == SIGNATURE_TYPE_GUID).then(|| Uuid::from_bytes_le(self.signature))
    }

    /// The disk signature when this node names a partition of an MBR disk.
    pub fn mbr_signature(&self) -> Option<u32> {
        (self.signature_type == SIGNATURE_TYPE_MBR).then(|| {
            u32::from_le_bytes([
                self.signature[0],
                self.signature[1],
                self.signature[2],
                self.signature[3],
            ])
        })
    }

    /// What identifies the partition's disk (GPT: the partition itself); `None` for a
    /// node without a signature, which nothing can match to a disk.
    pub fn partition_id(&self) -> Option<PartitionId> {
        self.partition_guid()
            .map(PartitionId::Gpt)
            .or_else(|| self.mbr_signature().map(PartitionId::Mbr))
    }
}

/// The identifier an HD() node carries: a GPT unique partition GUID, or an MBR
/// disk's signature (which names a disk, not a partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionId {
    Gpt(Uuid),
    Mbr(u32),
}

/// One device path node. Nodes this module does not interpret (ACPI, PCI, SATA, NVMe,
/// firmware volumes...) are kept byte for byte so an entry re-encodes identically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevicePathNode {
    HardDrive(HardDrive),
    /// A FILEPATH_DEVICE_PATH, e.g. `\EFI\debian\grubx64.efi`.
    FilePath(String),
    Other {
        node_type: u8,
        sub_type: u8,
        data: Vec<u8>,
    },
}

/// A decoded `Boot####` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOption {
    pub attributes: u32,
    pub description: String,
    /// The device path up to (not including) the End Entire node.
    pub file_path: Vec<DevicePathNode>,
    pub optional_data: Vec<u8>,
}

fn fmt_err(what: &'static str, why: impl Into<String>, at: usize) -> BootfixError {
    BootfixError::EfiFormat {
        what,
        why: why.into(),
        at,
    }
}

fn ucs2_encode(s: &str, what: &'static str) -> Result<Vec<u8>, BootfixError> {
    let mut out = Vec::with_capacity(s.len() * 2 + 2);
    for c in s.chars() {
        let v = u32::from(c);
        if v == 0 || v > 0xFFFF {
            return Err(fmt_err(
                what,
                format!("character U+{v:04X} is not UCS-2 (or is NUL)"),
                0,
            ));
        }
        out.extend_from_slice(&(v as u16).to_le_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    Ok(out)
}

/// Decodes a NUL-terminated UCS-2 string at the start of `buf`; returns it and the
/// bytes consumed (including the NUL).
fn ucs2_decode(
    buf: &[u8],
    what: &'static str,
    base: usize,
) -> Result<(String, usize), BootfixError> {
    let mut units = Vec::new();
    let mut i = 0;
    loop {
        let pair = buf
            .get(i..i + 2)
            .ok_or_else(|| fmt_err(what, "string without a NUL terminator", base + i))?;
        i += 2;
        let u = u16::from_le_bytes([pair[0], pair[1]]);
        if u == 0 {
            break;
        }
        units.push(u);
    }
    let s = String::from_utf16(&units).map_err(|_| fmt_err(what, "invalid UTF-16", base))?;
    Ok((s, i))
}

/// Encodes a device path list, End Entire node included.
pub fn encode_device_path(nodes: &[DevicePathNode]) -> Result<Vec<u8>, BootfixError> {
    let mut out = Vec::new();
    for node in nodes {
        let (t, st, data) = match node {
            DevicePathNode::HardDrive(hd) => {
                let mut d = Vec::with_capacity(HD_NODE_LEN - 4);
                d.extend_from_slice(&hd.partition_number.to_le_bytes());
                d.extend_from_slice(&hd.partition_start.to_le_bytes());
                d.extend_from_slice(&hd.partition_size.to_le_bytes());
                d.extend_from_slice(&hd.signature);
                d.push(hd.mbr_type);
                d.push(hd.signature_type);
                (MEDIA_DEVICE_PATH, MEDIA_HARDDRIVE_DP, d)
            }
            DevicePathNode::FilePath(p) => (
                MEDIA_DEVICE_PATH,
                MEDIA_FILEPATH_DP,
                ucs2_encode(p, "file path node")?,
            ),
            DevicePathNode::Other {
                node_type,
                sub_type,
                data,
            } => (*node_type, *sub_type, data.clone()),
        };
        let len = u16::try_from(data.len() + 4)
            .map_err(|_| fmt_err("device path node", "longer than 65535 bytes", out.len()))?;
        out.push(t);
        out.push(st);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&data);
    }
    out.extend_from_slice(&[END_DEVICE_PATH_TYPE, END_ENTIRE_DEVICE_PATH_SUBTYPE, 4, 0]);
    Ok(out)
}

/// Decodes a device path list that must end with exactly one End Entire node at its end.
pub fn decode_device_path(buf: &[u8], base: usize) -> Result<Vec<DevicePathNode>, BootfixError> {
    let mut nodes = Vec::new();
    let mut i = 0;
    loop {
        let hdr = buf
            .get(i..i + 4)
            .ok_or_else(|| fmt_err("device path", "ends without an End Entire node", base + i))?;
        let (t, st) = (hdr[0], hdr[1]);
        let len = usize::from(u16::from_le_bytes([hdr[2], hdr[3]]));
        if len < 4 {
            return Err(fmt_err(
                "device path node",
                format!("length {len} < 4"),
                base + i,
            ));
        }
        let data = buf.get(i + 4..i + len).ok_or_else(|| {
            fmt_err(
                "device path node",
                format!("length {len} runs past the list"),
                base + i,
            )
        })?;
        if t == END_DEVICE_PATH_TYPE && st == END_ENTIRE_DEVICE_PATH_SUBTYPE {
            if i + len != buf.len() {
                return Err(fmt_err(
                    "device path",
                    "bytes after the End Entire node",
                    base + i + len,
                ));
            }
            return Ok(nodes);
        }
        let node = match (t, st) {
            (MEDIA_DEVICE_PATH, MEDIA_HARDDRIVE_DP) if len == HD_NODE_LEN => {
                let mut signature = [0u8; 16];
                signature.copy_from_slice(&data[20..36]);
                DevicePathNode::HardDrive(HardDrive {
                    partition_number: le_u32(data, 0, "HardDrive partition number")?,
                    partition_start: le_u64(data, 4, "HardDrive partition start")?,
                    partition_size: le_u64(data, 12, "HardDrive partition size")?,
                    signature,
                    mbr_type: data[36],
                    signature_type: data[37],
                })
            }
            (MEDIA_DEVICE_PATH, MEDIA_FILEPATH_DP) => {
                let (s, used) = ucs2_decode(data, "file path node", base + i + 4)?;
                if used != data.len() {
                    // Padding after the NUL: keep the node verbatim so it round-trips.
                    DevicePathNode::Other {
                        node_type: t,
                        sub_type: st,
                        data: data.to_vec(),
                    }
                } else {
                    DevicePathNode::FilePath(s)
                }
            }
            _ => DevicePathNode::Other {
                node_type: t,
                sub_type: st,
                data: data.to_vec(),
            },
        };
        nodes.push(node);
        i += len;
    }
}

impl LoadOption {
    /// An active entry `description` -> HD(partition)/File(`path`), as efibootmgr writes it.
    pub fn new_hd_file(description: &str, hd: HardDrive, path: &str) -> Self {
        LoadOption {
            attributes: LOAD_OPTION_ACTIVE,
            description: description.to_string(),
            file_path: vec![
                DevicePathNode::HardDrive(hd),
                DevicePathNode::FilePath(path.to_string()),
            ],
            optional_data: Vec::new(),
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, BootfixError> {
        let desc = ucs2_encode(&self.description, "description")?;
        let path = encode_device_path(&self.file_path)?;
        let path_len = u16::try_from(path.len())
            .map_err(|_| fmt_err("FilePathList", "longer than 65535 bytes", 6 + desc.len()))?;
        let mut out = Vec::with_capacity(6 + desc.len() + path.len() + self.optional_data.len());
        out.extend_from_slice(&self.attributes.to_le_bytes());
        out.extend_from_slice(&path_len.to_le_bytes());
        out.extend_from_slice(&desc);
        out.extend_from_slice(&path);
        out.extend_from_slice(&self.optional_data);
        Ok(out)
    }

    pub fn decode(buf: &[u8]) -> Result<Self, BootfixError> {
        if buf.len() > MAX_LOAD_OPTION {
            return Err(fmt_err(
                "load option",
                format!("{} bytes is too large", buf.len()),
                0,
            ));
        }
        let head = buf
            .get(..6)
            .ok_or_else(|| fmt_err("load option", "shorter than 6 bytes", 0))?;
        let attributes = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let path_len = usize::from(u16::from_le_bytes([head[4], head[5]]));
        let (description, used) = ucs2_decode(&buf[6..], "description", 6)?;
        let path_start = 6 + used;
        let path_end = path_start + path_len;
        let path = buf.get(path_start..path_end).ok_or_else(|| {
            fmt_err(
                "FilePathList",
                format!("length {path_len} runs past the option"),
                path_start,
            )
        })?;
        let file_path = decode_device_path(path, path_start)?;
        Ok(LoadOption {
            attributes,
            description,
            file_path,
            optional_data: buf[path_end..].to_vec(),
        })
    }

    /// The first HD() node of the path.
    pub fn hard_drive(&self) -> Option<&HardDrive> {
        self.file_path.iter().find_map(|n| match n {
            DevicePathNode::HardDrive(hd) => Some(hd),
            _ => None,
        })
    }

    /// The File() path of the entry, if any.
    pub fn file(&self) -> Option<&str> {
        self.file_path.iter().find_map(|n| match n {
            DevicePathNode::FilePath(p) => Some(p.as_str()),
            _ => None,
        })
    }

    pub fn is_active(&self) -> bool {
        self.attributes & LOAD_OPTION_ACTIVE != 0
    }
}

impl fmt::Display for HardDrive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.partition_id() {
            Some(PartitionId::Gpt(g)) => write!(
                f,
                "HD({},GPT,{},0x{:x},0x{:x})",
                self.partition_number,
                g.hyphenated().to_string().to_uppercase(),
                self.partition_start,
                self.partition_size
            ),
            Some(PartitionId::Mbr(sig)) => write!(
                f,
                "HD({},MBR,0x{sig:08x},0x{:x},0x{:x})",
                self.partition_number, self.partition_start, self.partition_size
            ),
            None => write!(
                f,
                "HD({},format {},signature type {},0x{:x},0x{:x})",
                self.partition_number,
                self.mbr_type,
                self.signature_type,
                self.partition_start,
                self.partition_size
            ),
        }
    }
}

impl fmt::Display for DevicePathNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DevicePathNode::HardDrive(hd) => write!(f, "{hd}"),
            DevicePathNode::FilePath(p) => write!(f, "{p}"),
            DevicePathNode::Other {
                node_type,
                sub_type,
                data,
            } => write!(f, "Path({node_type},{sub_type},{} bytes)", data.len()),
        }
    }
}

impl fmt::Display for LoadOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}\t",
            if self.is_active() { "* " } else { "  " },
            self.description
        )?;
        for (i, n) in self.file_path.iter().enumerate() {
            if i > 0 {
                write!(f, "/")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Boot0003 as written by OVMF's UEFI shell (`bcfg boot add 0
    /// fs0:\EFI\ironclone\grubx64.efi "ironclone"`) into OVMF_VARS_4M.fd when
    /// qemu/machines/mk-gpt-uefi-nvram.sh built machine 3: the firmware's own bytes.
    const BCFG_BOOT0003: &str = "010000008400690072006f006e0063006c006f006e006500000002010c00d041030a0000000001010600021f03120a000000ffff000004012a000100000000080000000000000000020000000000a5c10e1c030000408000000000000001020204043a005c004500460049005c00690072006f006e0063006c006f006e0065005c0067007200750062007800360034002e0065006600690000007fff0400";
    /// Boot0001 from the same store: OVMF's auto-created disk entry, which carries optional data.
    const OVMF_BOOT0001: &str = "01000000200055004500460049002000510045004d005500200048004100520044004400490053004b00200051004d00300030003000300031002000000002010c00d041030a0000000001010600021f03120a000000ffff00007fff04004eac0881119f594d850ee21a522c59b2";

    #[test]
    fn decodes_firmware_written_entry() {
        let raw = hex(BCFG_BOOT0003);
        let opt = LoadOption::decode(&raw).unwrap();
        assert!(opt.is_active());
        assert_eq!(opt.description, "ironclone");
        let hd = opt.hard_drive().unwrap();
        assert_eq!(
            (hd.partition_number, hd.partition_start, hd.partition_size),
            (1, 0x800, 0x20000)
        );
        assert_eq!(
            hd.partition_guid().unwrap(),
            Uuid::parse_str("1C0EC1A5-0003-4000-8000-000000000001").unwrap()
        );
        assert_eq!(opt.file(), Some("\\EFI\\ironclone\\grubx64.efi"));
        assert_eq!(opt.file_path.len(), 5, "ACPI/PCI/SATA/HD/File");
        assert!(opt.optional_data.is_empty());
        assert_eq!(opt.encode().unwrap(), raw, "re-encodes byte for byte");
        assert!(opt
            .to_string()
            .contains("HD(1,GPT,1C0EC1A5-0003-4000-8000-000000000001,0x800,0x20000)"));
    }

    #[test]
    fn keeps_optional_data() {
        let raw = hex(OVMF_BOOT0001);
        let opt = LoadOption::decode(&raw).unwrap();
        assert_eq!(opt.description, "UEFI QEMU HARDDISK QM00001 ");
        assert_eq!(opt.optional_data.len(), 16);
        assert!(opt.hard_drive().is_none());
        assert_eq!(opt.encode().unwrap(), raw);
    }

    #[test]
    fn encodes_hd_file_like_the_firmware_tail() {
        // Our short-form entry must equal the HD()/File()/End tail of the firmware's.
        let guid = Uuid::parse_str("1C0EC1A5-0003-4000-8000-000000000001").unwrap();
        let ours = LoadOption::new_hd_file(
            "ironclone",
            HardDrive::gpt(1, 0x800, 0x20000, guid),
            "\\EFI\\ironclone\\grubx64.efi",
        )
        .encode()
        .unwrap();
        let fw = hex(BCFG_BOOT0003);
        let desc_end = 6 + 20;
        assert_eq!(ours[..4], fw[..4]);
        assert_eq!(ours[6..desc_end], fw[6..desc_end]);
        let tail = 42 + 58 + 4;
        assert_eq!(ours[desc_end..], fw[fw.len() - tail..]);
        assert_eq!(u16::from_le_bytes([ours[4], ours[5]]) as usize, tail);
        let back = LoadOption::decode(&ours).unwrap();
        assert_eq!(back.hard_drive().unwrap().partition_guid(), Some(guid));
    }

    #[test]
    fn encodes_mbr_hd_node_per_spec() {
        // UEFI spec 10.3.5.1, Hard Drive Media Device Path, for partition 1 of an MBR
        // disk whose 0x1B8 signature is 0x1234ABCD, start LBA 2048, 204800 sectors.
        let hd = HardDrive::mbr(1, 2048, 204_800, 0x1234_ABCD);
        let bytes = encode_device_path(&[DevicePathNode::HardDrive(hd.clone())]).unwrap();
        #[rustfmt::skip]
        let spec: [u8; 46] = [
            0x04, 0x01, 42, 0,                        // MEDIA_DEVICE_PATH, HARDDRIVE, length 42
            1, 0, 0, 0,                               // PartitionNumber
            0x00, 0x08, 0, 0, 0, 0, 0, 0,             // PartitionStart 2048
            0x00, 0x20, 0x03, 0, 0, 0, 0, 0,          // PartitionSize 204800
            0xCD, 0xAB, 0x34, 0x12, 0, 0, 0, 0,       // Signature: the u32, then zeros
            0, 0, 0, 0, 0, 0, 0, 0,
            0x01,                                     // MBRType: PC-AT MBR
            0x01,                                     // SignatureType: 32-bit MBR signature
            0x7F, 0xFF, 0x04, 0x00,                   // End Entire Device Path
        ];
        assert_eq!(bytes, spec);
        let back = decode_device_path(&bytes, 0).unwrap();
        assert_eq!(back, vec![DevicePathNode::HardDrive(hd.clone())]);
        assert_eq!(hd.partition_id(), Some(PartitionId::Mbr(0x1234_ABCD)));
        assert_eq!(hd.partition_guid(), None);
        assert_eq!(hd.to_string(), "HD(1,MBR,0x1234abcd,0x800,0x32000)");
        let opt = LoadOption::new_hd_file("x", hd, "\\EFI\\BOOT\\BOOTX64.EFI");
        let raw = opt.encode().unwrap();
        assert_eq!(LoadOption::decode(&raw).unwrap(), opt);
        // A GPT node names its GUID, a node without a signature names nothing.
        let g = Uuid::from_bytes([7; 16]);
        assert_eq!(
            HardDrive::gpt(1, 1, 1, g).partition_id(),
            Some(PartitionId::Gpt(g))
        );
        let mut none = HardDrive::mbr(2, 1, 1, 5);
        none.signature_type = 0;
        assert_eq!(none.partition_id(), None);
        assert!(none.to_string().contains("signature type 0"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let raw = hex(BCFG_BOOT0003);
        for cut in 0..raw.len() {
            assert!(LoadOption::decode(&raw[..cut]).is_err(), "cut at {cut}");
        }
        let mut zero_len = raw.clone();
        // Make the first device path node claim length 0.
        zero_len[28] = 0;
        zero_len[29] = 0;
        assert!(LoadOption::decode(&zero_len).is_err());
        let mut trailing = hex(BCFG_BOOT0003);
        trailing[4] = trailing[4].wrapping_add(4);
        trailing.extend_from_slice(&[1, 2, 3, 4]);
        assert!(LoadOption::decode(&trailing).is_err());
        assert!(LoadOption::decode(&vec![0u8; MAX_LOAD_OPTION + 1]).is_err());
        assert!(ucs2_encode("a\u{1F600}", "t").is_err());
    }
}
