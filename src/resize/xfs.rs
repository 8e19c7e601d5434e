//! XFS through xfsprogs: `xfs_growfs -d` grows the data section to fill its device;
//! onto less space it is re-created (`mkfs.xfs` with the source's UUID, label and
//! features) and filled with `xfsdump | xfsrestore`, as XFS cannot shrink.
//!
//! XFS only grows, and only while mounted, so the restored partition is mounted on a
//! private temporary directory for the duration. `nouuid`: the live system may have the
//! source filesystem (same UUID) mounted, and XFS refuses a second mount of one UUID.

use super::mount::TempMount;
use super::tool::{run_tool, ToolError};
use crate::ondisk::xfs::superblock::{
    XFS_SB_FEAT_RO_COMPAT_FINOBT, XFS_SB_FEAT_RO_COMPAT_REFLINK, XFS_SB_FEAT_RO_COMPAT_RMAPBT,
};
use crate::ondisk::xfs::Superblock;
use std::path::Path;

/// Grows the XFS on `dev` (a block device: the restored partition's loop device) to
/// fill it.
pub fn xfs_grow(dev: &Path) -> Result<(), ToolError> {
    let m = TempMount::mount("xfs", dev, "nouuid")?;
    run_tool("xfs_growfs", &["-d", &m.path()], None, &[0])?;
    m.unmount()
}

/// What a re-created XFS keeps of the source: identity (UUID, label) and the format
/// choices that tools and the kernel see (block and sector size, v5 features).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XfsSpec {
    pub uuid: String,
    pub label: Option<String>,
    pub block_size: u64,
    pub sector_size: u64,
    pub reflink: bool,
    pub rmapbt: bool,
    pub finobt: bool,
}

impl XfsSpec {
    /// From a v5 superblock; v4 cannot be re-created here (current kernels, this
    /// live system's included, no longer mount it, and xfsdump needs a mount).
    pub fn from_superblock(sb: &Superblock) -> Result<Self, ToolError> {
        if !sb.is_v5() {
            return Err(ToolError::Unsupported {
                what: "re-creating a v4 (crc=0) XFS, which the kernel cannot mount,".into(),
            });
        }
        let u = sb.sb_uuid;
        let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
        let uuid = format!(
            "{}-{}-{}-{}-{}",
            hex.get(0..8).unwrap_or(""),
            hex.get(8..12).unwrap_or(""),
            hex.get(12..16).unwrap_or(""),
            hex.get(16..20).unwrap_or(""),
            hex.get(20..32).unwrap_or("")
        );
        let end = sb.sb_fname.iter().position(|&b| b == 0).unwrap_or(12);
        let label = String::from_utf8_lossy(sb.sb_fname.get(..end).unwrap_or(&[])).into_owned();
        Ok(XfsSpec {
            uuid,
            label: (!label.is_empty()).then_some(label),
            block_size: sb.block_size(),
            sector_size: sb.sector_size(),
            reflink: sb.has_feature_ro(XFS_SB_FEAT_RO_COMPAT_REFLINK),
            rmapbt: sb.has_feature_ro(XFS_SB_FEAT_RO_COMPAT_RMAPBT),
            finobt: sb.has_feature_ro(XFS_SB_FEAT_RO_COMPAT_FINOBT),
        })
    }
}

/// `mkfs.xfs` on `path` (a sparse file of the new size) with `spec`'s UUID, label,
/// block and sector size and features.
pub fn xfs_mkfs(path: &Path, spec: &XfsSpec) -> Result<(), ToolError> {
    let b = |v: bool| if v { "1" } else { "0" };
    let m = format!(
        "crc=1,uuid={},reflink={},rmapbt={},finobt={}",
        spec.uuid,
        b(spec.reflink),
        b(spec.rmapbt),
        b(spec.finobt)
    );
    let bs = format!("size={}", spec.block_size);
    let ss = format!("size={}", spec.sector_size);
    let p = path.display().to_string();
    let mut args = vec!["-q", "-f", "-m", &m, "-b", &bs, "-s", &ss];
    if let Some(l) = &spec.label {
        args.extend_from_slice(&["-L", l]);
    }
    args.push(&p);
    run_tool("mkfs.xfs", &args, None, &[0]).map(|_| ())
}

/// Copies every file of the XFS on `src` into the (new, empty) XFS on `dst` with
/// `xfsdump | xfsrestore`, which keep owners, modes, times, extended attributes (ACLs
/// and SELinux labels among them) and hard links. `src` is mounted read-only. Both
/// are block devices (loop devices over the scratch files).
pub fn xfs_dump_restore(src: &Path, dst: &Path) -> Result<(), ToolError> {
    let s = TempMount::mount("xfs", src, "ro,nouuid")?;
    let d = TempMount::mount("xfs", dst, "nouuid")?;
    // A pipe of two tools: bash's pipefail makes either one's failure the exit code,
    // and both write their messages to the stderr carried into the error.
    let script = "xfsdump -J -L ironclone -M ironclone -l 0 - \"$1\" | xfsrestore -J - \"$2\"";
    let (sp, dp) = (s.path(), d.path());
    run_tool(
        "bash",
        &["-o", "pipefail", "-c", script, "xfs-copy", &sp, &dp],
        None,
        &[0],
    )?;
    d.unmount()?;
    s.unmount()
}

/// `xfs_repair -n`: exit 0 only for a clean filesystem.
pub fn xfs_check(path: &Path) -> Result<(), ToolError> {
    let p = path.display().to_string();
    run_tool("xfs_repair", &["-n", "-f", &p], None, &[0]).map(|_| ())
}
