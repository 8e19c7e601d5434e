//! The serving interface's IPv4 address and network, as `ip` reports them. The DHCP
//! answers must name an address the clients can reach, and proxy-DHCP must be told
//! which subnet it serves; both come from the interface the person chose.

use super::NetbootError;
use crate::resize::run_tool;
use std::net::Ipv4Addr;

/// An address with its prefix length (`192.168.77.2/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    pub fn netmask(&self) -> Ipv4Addr {
        let bits = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        Ipv4Addr::from(bits)
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & u32::from(self.netmask()))
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & u32::from(self.netmask()) == u32::from(self.network())
    }
}

/// The first IPv4 address of `iface` (`ip -o -4 addr show dev IFACE`).
pub fn interface_ipv4(iface: &str) -> Result<Ipv4Net, NetbootError> {
    let bad = |what: String| NetbootError::Interface {
        iface: iface.to_string(),
        what,
    };
    if iface.is_empty() || iface.contains('/') || iface.len() > 15 {
        return Err(bad("not an interface name".into()));
    }
    if !std::path::Path::new("/sys/class/net").join(iface).exists() {
        return Err(bad("no such network interface".into()));
    }
    let out = run_tool(
        "ip",
        &["-o", "-4", "addr", "show", "dev", iface],
        None,
        &[0],
    )?;
    parse_ip_addr(&out.stdout)
        .ok_or_else(|| bad("has no IPv4 address (bring it up and give it one first)".into()))
}

/// The first `inet A.B.C.D/N` in `ip -o -4 addr` output.
pub fn parse_ip_addr(text: &str) -> Option<Ipv4Net> {
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w != "inet" {
            continue;
        }
        let (a, p) = words.next()?.split_once('/')?;
        let prefix: u8 = p.parse().ok().filter(|p| (1..=32).contains(p))?;
        return Some(Ipv4Net {
            addr: a.parse().ok()?,
            prefix,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_output_and_computes_the_network() {
        let t = "4: boot0    inet 192.168.77.2/24 brd 192.168.77.255 scope global boot0\\       valid_lft forever preferred_lft forever\n";
        let n = parse_ip_addr(t).unwrap();
        assert_eq!(n.addr, Ipv4Addr::new(192, 168, 77, 2));
        assert_eq!(n.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(n.network(), Ipv4Addr::new(192, 168, 77, 0));
        assert!(n.contains(Ipv4Addr::new(192, 168, 77, 200)));
        assert!(!n.contains(Ipv4Addr::new(192, 168, 78, 1)));
        let wide = parse_ip_addr("2: e inet 10.1.2.3/8 scope global").unwrap();
        assert_eq!(wide.network(), Ipv4Addr::new(10, 0, 0, 0));
    }

    #[test]
    fn garbage_has_no_address() {
        for t in [
            "",
            "inet",
            "inet 1.2.3.4",
            "inet 1.2.3.4/33",
            "inet x/24",
            "inet 1.2.3.4/0",
        ] {
            assert_eq!(parse_ip_addr(t), None, "{t:?}");
        }
    }
}
