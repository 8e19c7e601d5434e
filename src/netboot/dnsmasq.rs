//! dnsmasq's configuration for serving boots: TFTP from the prepared root, and DHCP
//! answers that point BIOS clients at the PXE image and UEFI clients at the EFI one.
//! Proxy mode (the default) gives no addresses, so the site's DHCP server keeps that
//! job; `--range` makes this server the network's only DHCP server (an isolated lab).

use super::{BootFiles, Ipv4Net};
use std::net::Ipv4Addr;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhcpMode {
    /// Answer only the boot questions; addresses come from the site's server.
    Proxy,
    /// Hand out addresses from this range too.
    Range { start: Ipv4Addr, end: Ipv4Addr },
}

/// The whole configuration file. DNS is off (`port=0`): a boot server must not answer
/// name queries for a network it does not own. dnsmasq keeps root (`user=root`) because
/// the files it serves are symlinks into whatever root the person gave (a build tree,
/// the mounted medium), which the unprivileged user it would switch to cannot reach;
/// its TFTP server only reads, and only below `tftp-root`.
pub fn dnsmasq_config(
    iface: &str,
    net: &Ipv4Net,
    mode: &DhcpMode,
    root: &Path,
    files: &BootFiles,
    leases: &Path,
) -> String {
    let mut c = format!(
        "port=0\nuser=root\ninterface={iface}\nbind-interfaces\nenable-tftp\ntftp-root={}\n\
         dhcp-leasefile={}\nlog-dhcp\n",
        root.display(),
        leases.display()
    );
    match mode {
        DhcpMode::Proxy => {
            c += &format!(
                "dhcp-range={},proxy,{}\n\
                 pxe-prompt=\"ironclone\",0\n\
                 pxe-service=x86PC,\"ironclone (BIOS)\",{}\n\
                 pxe-service=X86-64_EFI,\"ironclone (UEFI)\",{}\n",
                net.network(),
                net.netmask(),
                // dnsmasq adds ".0" to a PXE service's file for BIOS clients.
                files.bios.trim_end_matches(".0"),
                files.uefi
            );
        }
        DhcpMode::Range { start, end } => {
            // Client architecture 7 and 9 are x86-64 UEFI (RFC 4578); 0 is BIOS.
            c += &format!(
                "dhcp-range={start},{end},{},1h\n\
                 dhcp-match=set:efi64,option:client-arch,7\n\
                 dhcp-match=set:efi64,option:client-arch,9\n\
                 dhcp-boot=tag:efi64,{},,{}\n\
                 dhcp-boot=tag:!efi64,{},,{}\n",
                net.netmask(),
                files.uefi,
                net.addr,
                files.bios,
                net.addr
            );
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> BootFiles {
        BootFiles {
            bios: "ironclone-bios.0".into(),
            uefi: "ironclone-uefi.efi".into(),
        }
    }

    #[test]
    fn proxy_mode_answers_boots_only() {
        let net = super::super::parse_ip_addr("inet 192.168.77.2/24").unwrap();
        let c = dnsmasq_config(
            "boot0",
            &net,
            &DhcpMode::Proxy,
            Path::new("/run/x"),
            &files(),
            Path::new("/run/x.leases"),
        );
        assert!(c.contains("port=0\n"));
        assert!(c.contains("dhcp-range=192.168.77.0,proxy,255.255.255.0\n"));
        assert!(c.contains("pxe-service=x86PC,\"ironclone (BIOS)\",ironclone-bios\n"));
        assert!(c.contains("pxe-service=X86-64_EFI,\"ironclone (UEFI)\",ironclone-uefi.efi\n"));
        assert!(c.contains("tftp-root=/run/x\n"));
        assert!(!c.contains("dhcp-boot"));
    }

    #[test]
    fn range_mode_gives_addresses_and_a_file_per_firmware() {
        let net = super::super::parse_ip_addr("inet 10.9.0.1/16").unwrap();
        let mode = DhcpMode::Range {
            start: Ipv4Addr::new(10, 9, 1, 10),
            end: Ipv4Addr::new(10, 9, 1, 99),
        };
        let c = dnsmasq_config(
            "lab",
            &net,
            &mode,
            Path::new("/r"),
            &files(),
            Path::new("/l"),
        );
        assert!(c.contains("dhcp-range=10.9.1.10,10.9.1.99,255.255.0.0,1h\n"));
        assert!(c.contains("dhcp-boot=tag:efi64,ironclone-uefi.efi,,10.9.0.1\n"));
        assert!(c.contains("dhcp-boot=tag:!efi64,ironclone-bios.0,,10.9.0.1\n"));
        assert!(!c.contains("proxy"));
    }
}
