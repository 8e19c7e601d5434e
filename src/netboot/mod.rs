//! Serving the live system to machines that boot from the network (PXE on BIOS, the
//! UEFI network stack): a boot root (`make netboot`'s, or the medium this system
//! booted from), GRUB network images that know this server's address, the site's
//! settings for its clients, and dnsmasq answering their DHCP and TFTP requests.
//!
//! Why dnsmasq: it is the maintained tool labs already run for this (Clonezilla SE and
//! FOG use it), and its proxy-DHCP mode answers only the boot questions, so it runs
//! beside the site's own DHCP server instead of fighting it. Why images made here:
//! GRUB takes its TFTP server from the DHCP acknowledgement, which in proxy mode comes
//! from the site's server, not from us; an image with our address in its prefix loads
//! its modules and menu from the right machine either way.

mod dnsmasq;
mod iface;
mod root;
pub mod serve;
mod site;

pub use dnsmasq::{dnsmasq_config, DhcpMode};
pub use iface::{interface_ipv4, parse_ip_addr, Ipv4Net};
pub use root::{prepare_root, BootFiles, BootSource};
pub use site::{site_cfg, BootMode};

use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NetbootError {
    #[error("interface {iface}: {what}")]
    Interface { iface: String, what: String },
    #[error("the boot root {root}: {what}")]
    Root { root: PathBuf, what: String },
    #[error("--append: {what}")]
    Append { what: String },
    #[error("--range {range}: {what}")]
    Range { range: String, what: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tool(#[from] crate::resize::ToolError),
}

impl NetbootError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| NetbootError::Io { path, source }
    }
}
