//! LUKS1 and LUKS2 headers: the LUKS1 `phdr` and the LUKS2 binary header with its JSON
//! area, decoded to what imaging needs: the version, UUID and label, and where the
//! encrypted data segment starts and how long it is. Everything before the data is
//! header and key slots (the "header area", copied as it is); the data is what
//! `cryptsetup open` decrypts. Field names follow cryptsetup's `luks1/luks.h` and
//! `luks2/luks2.h`. The headers come from a disk that may be damaged or crafted: each
//! field is read checked, and each error names the structure and the field.
//!
//! Hand-written: no crate decodes LUKS headers, and `cryptsetup luksDump` needs the
//! header on a device or file, not inside an image.

mod error;
pub mod hdr2;
pub mod json2;
pub mod phdr1;
mod text;

pub use error::LuksError;
pub use hdr2::BinHeader;
pub use json2::{Json, Segment};
pub use phdr1::Phdr;

use crate::bytes::be16;
use crate::device::BlockDevice;

const MAGIC: &[u8] = b"LUKS\xba\xbe";

/// A LUKS header, either version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LuksHeader {
    /// 1 or 2.
    pub version: u16,
    pub uuid: String,
    /// LUKS2 only.
    pub label: Option<String>,
    /// Where the encrypted data starts, in bytes from the device start.
    pub data_offset: u64,
    /// The data's length; `None` when it runs to the device's end (LUKS1 always, LUKS2
    /// `"dynamic"`), so it grows and shrinks with the partition.
    pub data_size: Option<u64>,
    /// The encryption sector size (512 for LUKS1).
    pub sector_size: u32,
    /// "aes-xts-plain64" and the like.
    pub cipher: String,
}

impl LuksHeader {
    /// Bytes of plaintext the open volume shows on a device of `device_size` bytes.
    pub fn data_len(&self, device_size: u64) -> Option<u64> {
        match self.data_size {
            Some(n) => Some(n),
            None => device_size.checked_sub(self.data_offset),
        }
    }
}

/// The version in a header's first 8 bytes, if it has the LUKS magic.
pub fn version(head: &[u8]) -> Option<u16> {
    (head.get(..6) == Some(MAGIC))
        .then(|| be16(head, 6))
        .flatten()
}

/// Reads and checks the LUKS header at the start of `dev`.
pub fn read_header(dev: &dyn BlockDevice) -> Result<LuksHeader, LuksError> {
    let size = dev.size();
    let head = dev.read_vec(
        0,
        hdr2::BIN_LEN.min(usize::try_from(size).unwrap_or(usize::MAX)),
    )?;
    let version = version(&head).ok_or(LuksError::NoMagic)?;
    let hdr = match version {
        1 => luks1(&head)?,
        2 => luks2(dev, &head)?,
        v => return Err(LuksError::Version(v)),
    };
    let data_end = hdr
        .data_size
        .map_or(Some(hdr.data_offset), |n| hdr.data_offset.checked_add(n));
    match data_end {
        Some(end) if end <= size && hdr.data_offset < size => Ok(hdr),
        _ => Err(LuksError::Beyond {
            version,
            what: format!("offset {}, size {:?}", hdr.data_offset, hdr.data_size),
            device: size,
        }),
    }
}

fn luks1(head: &[u8]) -> Result<LuksHeader, LuksError> {
    let p = Phdr::decode(head)?;
    Ok(LuksHeader {
        version: 1,
        data_offset: p.data_offset(),
        data_size: None,
        sector_size: 512,
        cipher: format!("{}-{}", p.cipher_name, p.cipher_mode),
        uuid: p.uuid,
        label: None,
    })
}

fn luks2(dev: &dyn BlockDevice, head: &[u8]) -> Result<LuksHeader, LuksError> {
    let bin = BinHeader::decode(head, 0)?;
    let json_len = bin.json_size();
    // hdr_size is at most 4 MiB (checked by the decode), so this read is bounded.
    let need = usize::try_from(bin.hdr_size).map_err(|_| LuksError::Json {
        len: json_len,
        what: "too large".into(),
    })?;
    if dev.size() < bin.hdr_size {
        return Err(LuksError::Json {
            len: json_len,
            what: format!("runs past the device's end ({} bytes)", dev.size()),
        });
    }
    let all = dev.read_vec(0, need)?;
    let area = all.get(hdr2::BIN_LEN..).unwrap_or_default();
    let json = Json::parse(area, json_len)?;
    // Both header copies lie before the data: restoring the header area restores both.
    if json.segment.offset < bin.hdr_size.saturating_mul(2) {
        return Err(LuksError::Segment {
            key: "0".into(),
            field: "offset",
            what: format!(
                "{} is inside the two {}-byte header copies",
                json.segment.offset, bin.hdr_size
            ),
        });
    }
    Ok(LuksHeader {
        version: 2,
        uuid: bin.uuid,
        label: bin.label,
        data_offset: json.segment.offset,
        data_size: json.segment.size,
        sector_size: json.segment.sector_size,
        cipher: json.segment.encryption,
    })
}
