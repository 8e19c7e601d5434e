//! The TFTP root dnsmasq serves, assembled in a run directory of our own so that the
//! boot root it comes from (`make netboot`'s directory, or the read-only medium) is
//! never written: the kernel, initramfs, menu and GRUB modules are symlinks to it,
//! beside the generated site.cfg and the two GRUB network images that carry this
//! server's address.
//!
//! The images are made with grub-mkimage (the reference tool; the live system has it
//! and GRUB's platform files for boot repair) exactly as grub-mknetdir makes them, but
//! with `(tftp,ADDRESS)` as their prefix: behind a proxy-DHCP answer GRUB would
//! otherwise look for its modules on the site's DHCP server.

use super::NetbootError;
use crate::resize::run_tool;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Where the kernel, initramfs, menu and GRUB modules come from.
#[derive(Clone, Debug)]
pub struct BootSource {
    /// A directory laid out like the ISO and `make netboot`: boot/vmlinuz,
    /// boot/initrd.img, boot/grub/grub.cfg.
    pub root: PathBuf,
    /// GRUB's platform files (/usr/lib/grub): the images are made from them and
    /// their modules served.
    pub grub_lib: PathBuf,
}

/// The DHCP boot file names, relative to the TFTP root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootFiles {
    pub bios: String,
    pub uefi: String,
}

/// (GRUB platform, grub-mkimage format, network modules, our file name)
const PLATFORMS: [(&str, &str, &str, &str); 2] = [
    ("i386-pc", "i386-pc-pxe", "pxe", "ironclone-bios.0"),
    ("x86_64-efi", "x86_64-efi", "efinet", "ironclone-uefi.efi"),
];

/// Builds the TFTP root in `run` (made empty first) for a server at `addr`.
pub fn prepare_root(
    src: &BootSource,
    run: &Path,
    addr: Ipv4Addr,
    site_cfg: &str,
) -> Result<BootFiles, NetbootError> {
    let bad = |what: String| NetbootError::Root {
        root: src.root.clone(),
        what,
    };
    let need = |rel: &str| -> Result<PathBuf, NetbootError> {
        let p = src.root.join(rel);
        if p.is_file() {
            Ok(p)
        } else {
            Err(bad(format!("has no {rel} (make netboot builds one)")))
        }
    };
    let kernel = need("boot/vmlinuz")?;
    let initrd = need("boot/initrd.img")?;
    let menu = need("boot/grub/grub.cfg")?;
    if run.exists() {
        std::fs::remove_dir_all(run).map_err(NetbootError::io(run))?;
    }
    let grub = run.join("boot/grub");
    std::fs::create_dir_all(&grub).map_err(NetbootError::io(&grub))?;
    link(&kernel, &run.join("boot/vmlinuz"))?;
    link(&initrd, &run.join("boot/initrd.img"))?;
    link(&menu, &grub.join("grub.cfg"))?;
    let site = grub.join("site.cfg");
    std::fs::write(&site, site_cfg).map_err(NetbootError::io(&site))?;
    // Outside the TFTP root: clients have no use for it.
    let early = run.with_extension("early.cfg");
    // GRUB's menu reads site.cfg only when it knows it was booted from the network.
    let prefix = format!("(tftp,{addr})/boot/grub");
    let text = format!("set net_default_server={addr}\nset prefix={prefix}\n");
    std::fs::write(&early, text).map_err(NetbootError::io(&early))?;
    for (plat, format, net, name) in PLATFORMS {
        // The modules served must be the image's own version, so both come from the
        // same GRUB platform directory (a root's copies may be another build's).
        let dir = src.grub_lib.join(plat);
        if !dir.join("kernel.img").is_file() || !dir.join("normal.mod").is_file() {
            return Err(NetbootError::Root {
                root: dir,
                what: format!("no GRUB {plat} platform files (grub-pc-bin / grub-efi-amd64-bin)"),
            });
        }
        link(&dir, &grub.join(plat))?;
        let out = run.join(name);
        run_tool(
            "grub-mkimage",
            &[
                "-O",
                format,
                "-d",
                path_str(&dir)?,
                "-c",
                path_str(&early)?,
                "-p",
                &prefix,
                "-o",
                path_str(&out)?,
                net,
                "tftp",
            ],
            None,
            &[0],
        )?;
    }
    Ok(BootFiles {
        bios: PLATFORMS[0].3.to_string(),
        uefi: PLATFORMS[1].3.to_string(),
    })
}

fn link(target: &Path, at: &Path) -> Result<(), NetbootError> {
    let target = target.canonicalize().map_err(NetbootError::io(target))?;
    std::os::unix::fs::symlink(&target, at).map_err(NetbootError::io(at))
}

fn path_str(p: &Path) -> Result<&str, NetbootError> {
    p.to_str().ok_or_else(|| NetbootError::Root {
        root: p.to_path_buf(),
        what: "the path is not UTF-8".into(),
    })
}
