//! Linux swap: only the header page matters.
//!
//! Swap contents are meaningless after a reboot, so a restore needs only the header
//! page (signature, version, size, UUID and label), which keeps `/etc/fstab`'s
//! `UUID=` entry and resume configuration valid. The page size is where the
//! signature ends: the last 10 bytes of the first page.

use crate::bytes::le32;
use crate::device::{BlockDevice, DeviceError};
use crate::usedmap::UsedMap;
use thiserror::Error;

const PAGE_SIZES: [u64; 4] = [4096, 8192, 16384, 65536];

#[derive(Debug, Error)]
pub enum SwapError {
    #[error("no SWAPSPACE2 / SWAP-SPACE signature at the end of a 4/8/16/64 KiB page")]
    NotSwap,
    #[error("reading swap header at byte {offset}: {source}")]
    Device {
        offset: u64,
        #[source]
        source: DeviceError,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapHeader {
    pub page_size: u64,
    pub version: u32,
    pub last_page: u32,
    pub uuid: [u8; 16],
    pub label: String,
}

/// Finds and parses the swap header.
pub fn read_swap_header(dev: &dyn BlockDevice) -> Result<SwapHeader, SwapError> {
    for ps in PAGE_SIZES {
        if ps > dev.size() {
            break;
        }
        let mut sig = [0u8; 10];
        dev.read_at(ps - 10, &mut sig)
            .map_err(|source| SwapError::Device {
                offset: ps - 10,
                source,
            })?;
        if &sig != b"SWAPSPACE2" && &sig != b"SWAP-SPACE" {
            continue;
        }
        // swap_header.info: version, last_page, nr_badpages, sws_uuid[16], sws_volume[16].
        let mut info = [0u8; 44];
        dev.read_at(1024, &mut info)
            .map_err(|source| SwapError::Device {
                offset: 1024,
                source,
            })?;
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&info[12..28]);
        let vol = &info[28..44];
        let n = vol.iter().position(|&c| c == 0).unwrap_or(vol.len());
        return Ok(SwapHeader {
            page_size: ps,
            version: le32(&info, 0).unwrap_or(0),
            last_page: le32(&info, 4).unwrap_or(0),
            uuid,
            label: String::from_utf8_lossy(&vol[..n]).into_owned(),
        });
    }
    Err(SwapError::NotSwap)
}

/// The used map of a swap area: its header page.
pub fn map_swap(dev: &dyn BlockDevice) -> Result<UsedMap, SwapError> {
    let h = read_swap_header(dev)?;
    let declared = u64::from(h.last_page)
        .saturating_add(1)
        .saturating_mul(h.page_size);
    let total = if declared == 0 || declared > dev.size() {
        dev.size()
    } else {
        declared
    };
    Ok(UsedMap {
        block_size: h.page_size,
        total_bytes: total,
        used_bytes: h.page_size,
        extents: vec![crate::usedmap::ByteExtent {
            offset: 0,
            len: h.page_size,
        }],
        raw: false,
        raw_reason: None,
        warnings: vec![],
        primary_lost: None,
        lvm: None,
        fs_sector: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    #[test]
    fn finds_header_and_label() {
        let mut v = vec![0u8; 1 << 20];
        v[4086..4096].copy_from_slice(b"SWAPSPACE2");
        v[1024..1028].copy_from_slice(&1u32.to_le_bytes());
        v[1028..1032].copy_from_slice(&255u32.to_le_bytes());
        v[1036] = 0xAB;
        v[1052..1056].copy_from_slice(b"swp1");
        let m = map_swap(&MemDevice::from_vec(v.clone(), 512)).unwrap();
        assert_eq!(
            m.extents,
            vec![crate::usedmap::ByteExtent {
                offset: 0,
                len: 4096
            }]
        );
        assert_eq!(m.total_bytes, 1 << 20);
        let h = read_swap_header(&MemDevice::from_vec(v, 512)).unwrap();
        assert_eq!((h.label.as_str(), h.uuid[0]), ("swp1", 0xAB));
        assert!(matches!(
            map_swap(&MemDevice::new(100, 512)),
            Err(SwapError::NotSwap)
        ));
        assert!(map_swap(&MemDevice::new(1 << 20, 512)).is_err());
    }
}
