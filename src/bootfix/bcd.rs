//! The Windows Boot Configuration Data store (`\Boot\BCD`): which partitions its
//! device elements name, and the same elements pointed at new offsets.
//!
//! On an MBR disk the BCD names a partition by the disk's MBR signature and the
//! partition's byte offset, so a Windows partition that moves (or a disk signature that
//! changes) stops the machine booting with 0xc000000e, the classic failure after a
//! restore that resizes "System Reserved". The store is a registry hive: it is read with
//! the `nt-hive` crate (by the author of `ntfs`) and edited with Debian's `hivexsh`,
//! the maintained hive writer, so no hive structure is written by hand here. This file
//! decodes only the element's device descriptor, whose layout is not part of the hive
//! format:
//!
//! ```text
//! element value "Element" (REG_BINARY) of a device element (type 0x1xxxxxxx):
//!   0x00 16  additional-options object GUID (zero when none)
//!   0x10     device descriptor:
//!     +0x00 u32 device type (6 = partition)     +0x08 u32 descriptor length (0x48)
//!     +0x10 u64 partition offset in bytes (MBR) +0x24 u32 partition style (1 = MBR)
//!     +0x28 u32 MBR disk signature
//! ```
//!
//! Descriptors can nest (a WinRE ramdisk names the partition holding `Winre.wim`
//! deeper in its element), so every 4-byte-aligned position of a device element is
//! tried, and a descriptor only counts when its signature is the disk's own: that keeps
//! a stray pattern in unrelated bytes from being taken for one.

use super::BootfixError;
use crate::bytes;
use nt_hive::{Hive, KeyNode};
use serde::{Deserialize, Serialize};

/// The BCD's path inside the partition that holds Windows' boot manager.
pub const BCD_PATH: &str = "/Boot/BCD";

const DEVICE_PARTITION: u32 = 6;
const DESCRIPTOR_LEN: u32 = 0x48;
const STYLE_MBR: u32 = 1;
const OFF_TYPE: usize = 0x00;
const OFF_LEN: usize = 0x08;
const OFF_OFFSET: usize = 0x10;
const OFF_STYLE: usize = 0x24;
const OFF_SIGNATURE: usize = 0x28;

/// One MBR partition descriptor inside a BCD device element.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BcdDeviceRef {
    /// The object's key name (`{9dea862c-5cdd-4e70-acc1-f32b344d4795}`).
    pub object: String,
    /// The element's key name (`11000001`, `21000001`, ...).
    pub element: String,
    /// Where the descriptor starts in the element's data.
    pub at: usize,
    /// The partition's offset on its disk, in bytes.
    pub offset: u64,
    pub signature: u32,
}

fn hive_err(what: impl std::fmt::Display) -> BootfixError {
    BootfixError::Bcd {
        what: what.to_string(),
    }
}

/// Opens the hive. nt-hive 0.3 asserts (panics) while reporting a bad signature at
/// offset 0 (`offset_of_field` wants a field past the start), and on cell references
/// that name no cell (hive_check.rs), and a BCD comes from an image that may be damaged,
/// so the signature and every reference are checked here first and any other assertion
/// is caught and turned into an error: a bad BCD must not abort a restore.
fn open_hive(bytes: &[u8]) -> Result<Hive<&[u8]>, BootfixError> {
    if bytes.get(..4) != Some(b"regf".as_slice()) {
        return Err(hive_err("not a registry hive (no \"regf\" signature)"));
    }
    let hive = Hive::new(bytes).map_err(|e| hive_err(format!("not a usable hive: {e}")))?;
    super::hive_check::check(bytes).map_err(|why| hive_err(format!("damaged hive: {why}")))?;
    Ok(hive)
}

fn guarded<T>(f: impl FnOnce() -> Result<T, BootfixError>) -> Result<T, BootfixError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(hive_err("the hive is malformed (its reader gave up)")))
}

/// Every MBR partition descriptor with disk signature `signature` in the hive's
/// device elements, in key order.
pub fn device_refs(hive: &[u8], signature: u32) -> Result<Vec<BcdDeviceRef>, BootfixError> {
    guarded(|| refs_in(hive, signature))
}

fn refs_in(hive: &[u8], signature: u32) -> Result<Vec<BcdDeviceRef>, BootfixError> {
    let hive = open_hive(hive)?;
    let root = hive.root_key_node().map_err(hive_err)?;
    let Some(objects) = root.subkey("Objects") else {
        return Err(hive_err("no Objects key: not a BCD store"));
    };
    let objects = objects.map_err(hive_err)?;
    let mut refs = Vec::new();
    for object in subkeys(&objects)? {
        let object = object?;
        let object_name = object.name().map_err(hive_err)?.to_string_lossy();
        let Some(elements) = object.subkey("Elements") else {
            continue;
        };
        for element in subkeys(&elements.map_err(hive_err)?)? {
            let element = element?;
            let name = element.name().map_err(hive_err)?.to_string_lossy();
            if !is_device_element(&name) {
                continue;
            }
            let Some(value) = element.value("Element") else {
                continue;
            };
            let data = value_data(value.map_err(hive_err)?)?;
            for (at, offset) in partition_descriptors(&data, signature) {
                refs.push(BcdDeviceRef {
                    object: object_name.clone(),
                    element: name.clone(),
                    at,
                    offset,
                    signature,
                });
            }
        }
    }
    Ok(refs)
}

type Key<'h> = KeyNode<'h, &'h [u8]>;

fn subkeys<'h>(key: &Key<'h>) -> Result<Vec<Result<Key<'h>, BootfixError>>, BootfixError> {
    match key.subkeys() {
        None => Ok(Vec::new()),
        Some(r) => Ok(r.map_err(hive_err)?.map(|k| k.map_err(hive_err)).collect()),
    }
}

/// BCD element types carry their format in bits 24-27; 1 is "device".
fn is_device_element(name: &str) -> bool {
    u32::from_str_radix(name, 16).is_ok_and(|t| (t >> 24) & 0xF == 1)
}

/// (position, partition offset) of each MBR partition descriptor of disk `signature`.
pub fn partition_descriptors(data: &[u8], signature: u32) -> Vec<(usize, u64)> {
    (0..data.len())
        .step_by(4)
        .filter_map(|at| {
            let field = |o: usize| at.checked_add(o).and_then(|p| bytes::le32(data, p));
            let is_it = field(OFF_TYPE) == Some(DEVICE_PARTITION)
                && field(OFF_LEN) == Some(DESCRIPTOR_LEN)
                && field(OFF_STYLE) == Some(STYLE_MBR)
                && field(OFF_SIGNATURE) == Some(signature);
            let offset = at
                .checked_add(OFF_OFFSET)
                .and_then(|p| bytes::le64(data, p))?;
            is_it.then_some((at, offset))
        })
        .collect()
}

/// `data` with the descriptor at `at` naming `offset` on disk `signature`.
pub fn repoint(
    data: &[u8],
    at: usize,
    offset: u64,
    signature: u32,
) -> Result<Vec<u8>, BootfixError> {
    let mut out = data.to_vec();
    let pos = |o: usize| at.saturating_add(o);
    super::put(
        &mut out,
        pos(OFF_OFFSET),
        &offset.to_le_bytes(),
        "BCD partition offset",
    )?;
    super::put(
        &mut out,
        pos(OFF_SIGNATURE),
        &signature.to_le_bytes(),
        "BCD disk signature",
    )?;
    Ok(out)
}

/// The element's data as `hivexsh` takes it: `hex:3:aa,bb,...` (3 = REG_BINARY).
pub fn hivexsh_binary(data: &[u8]) -> String {
    let hex: Vec<String> = data.iter().map(|b| format!("{b:02x}")).collect();
    format!("hex:3:{}", hex.join(","))
}

/// The raw "Element" value of one element, for rewriting it.
pub fn element_data(hive: &[u8], object: &str, element: &str) -> Result<Vec<u8>, BootfixError> {
    guarded(|| element_in(hive, object, element))
}

fn element_in(hive: &[u8], object: &str, element: &str) -> Result<Vec<u8>, BootfixError> {
    let hive = open_hive(hive)?;
    let root = hive.root_key_node().map_err(hive_err)?;
    let path = format!("Objects\\{object}\\Elements\\{element}");
    let key = root
        .subpath(&path)
        .ok_or_else(|| hive_err(format!("no key {path}")))?
        .map_err(hive_err)?;
    value_data(
        key.value("Element")
            .ok_or_else(|| hive_err(format!("{path}: no Element value")))?
            .map_err(hive_err)?,
    )
}

/// A value's bytes. An empty value is not asked for its data: nt-hive would follow its
/// data offset, which an empty value need not set (hive_check.rs skips it too).
fn value_data(value: nt_hive::KeyValue<&[u8]>) -> Result<Vec<u8>, BootfixError> {
    if value.data_size() == 0 {
        return Ok(Vec::new());
    }
    value.data().and_then(|d| d.into_vec()).map_err(hive_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hive fuzzing found (a root key whose subkey list points into free space),
    /// read without `guarded`: nt-hive must never be reached with it, so no panic, even
    /// with overflow checks on. The hive itself is built in hive_check.rs's tests.
    #[test]
    fn a_damaged_hive_is_an_error_before_nt_hive_reads_it() {
        let hive = crate::bootfix::hive_check::tests::hive_with_subkey_list_at(0x200);
        let err = refs_in(&hive, 1).unwrap_err().to_string();
        assert!(err.contains("damaged hive"), "{err}");
    }

    /// The descriptor of a Windows 8.1 osloader's device on an MBR disk, as bcdedit
    /// shows `partition=C:` (offset 0x15f00000, signature 0xb3eba8f1).
    fn sample() -> Vec<u8> {
        let mut d = vec![0u8; 0x58];
        d[0x10] = 6;
        d[0x18] = 0x48;
        d[0x20..0x28].copy_from_slice(&0x15f0_0000u64.to_le_bytes());
        d[0x34] = 1;
        d[0x38..0x3c].copy_from_slice(&0xb3eb_a8f1u32.to_le_bytes());
        d
    }

    #[test]
    fn finds_the_descriptor_of_its_own_disk_only() {
        let d = sample();
        assert_eq!(
            partition_descriptors(&d, 0xb3eb_a8f1),
            vec![(0x10, 0x15f0_0000)]
        );
        assert!(partition_descriptors(&d, 0x1234_5678).is_empty());
        assert!(partition_descriptors(&d[..0x3b], 0xb3eb_a8f1).is_empty());
    }

    #[test]
    fn repoints_offset_and_signature() {
        let d = repoint(&sample(), 0x10, 0x3230_0000, 0xdead_beef).unwrap();
        assert_eq!(
            partition_descriptors(&d, 0xdead_beef),
            vec![(0x10, 0x3230_0000)]
        );
        assert_eq!(d.len(), 0x58);
        assert!(repoint(&sample(), 0x50, 1, 2).is_err());
    }

    #[test]
    fn device_elements_by_their_type() {
        assert!(is_device_element("11000001"));
        assert!(is_device_element("21000001"));
        assert!(!is_device_element("12000004"));
        assert!(!is_device_element("zz"));
        assert_eq!(hivexsh_binary(&[0, 0xab]), "hex:3:00,ab");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(device_refs(&[0u8; 100], 1).is_err());
        assert!(device_refs(&vec![0x55u8; 8192], 1).is_err());
        let mut h = vec![0u8; 8192];
        h[..4].copy_from_slice(b"regf");
        assert!(device_refs(&h, 1).is_err());
    }
}
