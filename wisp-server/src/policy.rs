//! Which targets a stream may reach.
//!
//! The checks run on the addresses a name resolved to, not on the text the client sent: a
//! client can spell loopback as `127.1`, `0x7f.1`, `[::ffff:127.0.0.1]` or a DNS name that
//! resolves to it, and every one of those lands on the same socket. IPv4-mapped (`::ffff:a.b.c.d`)
//! and IPv4-compatible (`::a.b.c.d`) IPv6 addresses are judged as the IPv4 address they carry,
//! and so are NAT64 (`64:ff9b::/96`) addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use wisp_core::{CloseReason, StreamType};

use crate::config::PolicyConfig;

/// An address range, `addr/len` or a bare address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| "not an IP address".to_string())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .map_err(|_| "bad prefix length".to_string())?,
        };
        if len > max {
            return Err(format!("prefix length over {max}"));
        }
        Ok(Self { addr, len })
    }
}

impl Cidr {
    /// Whether `ip` is inside the range. IPv4 ranges also match IPv4-mapped IPv6 addresses.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.len as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.len as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V4(ip)) => {
                // A v6 range written over mapped addresses (`::ffff:0:0/96`).
                let ip = u128::from(ip.to_ipv6_mapped());
                let mask = u128::MAX.checked_shl(128 - self.len as u32).unwrap_or(0);
                u128::from(net) & mask == ip & mask
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

/// A port or an inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange(u16, u16);

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let p = |t: &str| {
            t.trim()
                .parse::<u16>()
                .map_err(|_| "not a port".to_string())
        };
        let r = match s.split_once('-') {
            Some((a, b)) => Self(p(a)?, p(b)?),
            None => Self(p(s)?, p(s)?),
        };
        if r.0 > r.1 {
            return Err("range start above its end".into());
        }
        Ok(r)
    }
}

impl PortRange {
    fn contains(&self, port: u16) -> bool {
        (self.0..=self.1).contains(&port)
    }
}

/// The IPv4 address an IPv6 address carries, if it is an IPv4-mapped, IPv4-compatible or
/// NAT64 well-known-prefix form; otherwise the address itself.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    // IPv4-compatible (deprecated, ::a.b.c.d), but not :: and ::1 themselves.
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return IpAddr::V4(ipv4_tail(&v6));
    }
    // NAT64 well-known prefix: a gateway would translate it to the embedded IPv4 address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(ipv4_tail(&v6));
    }
    ip
}

fn ipv4_tail(v6: &Ipv6Addr) -> Ipv4Addr {
    let o = v6.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

/// The class of an address, as far as policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    /// Routable on the internet.
    Global,
    /// 127/8, ::1.
    Loopback,
    /// RFC 1918, CGNAT 100.64/10, unique local fc00::/7.
    Private,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// Multicast, unspecified, broadcast, documentation, benchmarking, reserved and other
    /// special-purpose ranges that are never a legitimate target.
    Special,
}

/// Classifies an address (after unwrapping IPv4 carried in IPv6).
pub fn classify(ip: IpAddr) -> AddrClass {
    match canonical(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddrClass {
    let o = ip.octets();
    let n = u32::from(ip);
    let in_range = |net: [u8; 4], len: u32| {
        let mask = u32::MAX << (32 - len);
        n & mask == u32::from(Ipv4Addr::from(net)) & mask
    };
    if o[0] == 127 {
        AddrClass::Loopback
    } else if o[0] == 10
        || in_range([172, 16, 0, 0], 12)
        || in_range([192, 168, 0, 0], 16)
        // CGNAT: the carrier's private side.
        || in_range([100, 64, 0, 0], 10)
    {
        AddrClass::Private
    } else if in_range([169, 254, 0, 0], 16) {
        AddrClass::LinkLocal
    } else if o[0] == 0 // "this network", including 0.0.0.0 which Linux treats as loopback
        || in_range([192, 0, 0, 0], 24) // IETF protocol assignments
        || in_range([192, 0, 2, 0], 24) // TEST-NET-1
        || in_range([198, 51, 100, 0], 24) // TEST-NET-2
        || in_range([203, 0, 113, 0], 24) // TEST-NET-3
        || in_range([198, 18, 0, 0], 15) // benchmarking
        || in_range([192, 88, 99, 0], 24) // 6to4 relay anycast (deprecated)
        || o[0] >= 224
    // multicast 224/4, reserved 240/4, broadcast
    {
        AddrClass::Special
    } else {
        AddrClass::Global
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddrClass {
    let s = ip.segments();
    if ip == Ipv6Addr::LOCALHOST {
        AddrClass::Loopback
    } else if s[0] & 0xfe00 == 0xfc00 {
        AddrClass::Private
    } else if s[0] & 0xffc0 == 0xfe80 {
        AddrClass::LinkLocal
    } else if ip.is_unspecified()
        || s[0] & 0xff00 == 0xff00 // multicast
        || s[0] & 0xffc0 == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x3fff && s[1] & 0xf000 == 0) // documentation 3fff::/20
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments (Teredo, ORCHID...)
        || s[0] == 0x2002 // 6to4: carries an IPv4 address we would have to judge
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only
        || (s[0] == 0x0064 && s[1] == 0xff9b) // local-use NAT64 64:ff9b:1::/48 and others
        || s[0] & 0xe000 != 0x2000
    // everything outside 2000::/3 is not global unicast
    {
        AddrClass::Special
    } else {
        AddrClass::Global
    }
}

/// The compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    allow_loopback: bool,
    allow_private: bool,
    allow_link_local: bool,
    allow_cidrs: Vec<Cidr>,
    block_cidrs: Vec<Cidr>,
    allow_hosts: Vec<String>,
    block_hosts: Vec<String>,
    allow_ports: Vec<PortRange>,
    block_ports: Vec<PortRange>,
    udp: bool,
}

impl Policy {
    /// Compiles a validated [`PolicyConfig`]. Malformed entries were rejected by validation and
    /// are skipped here.
    pub fn new(c: &PolicyConfig) -> Self {
        let cidrs = |v: &[String]| v.iter().filter_map(|s| s.parse().ok()).collect();
        let ports = |v: &[String]| v.iter().filter_map(|s| s.parse().ok()).collect();
        let hosts = |v: &[String]| v.iter().map(|h| normalize_host(h)).collect();
        Self {
            allow_loopback: c.allow_loopback,
            allow_private: c.allow_private,
            allow_link_local: c.allow_link_local,
            allow_cidrs: cidrs(&c.allow_cidrs),
            block_cidrs: cidrs(&c.block_cidrs),
            allow_hosts: hosts(&c.allow_hosts),
            block_hosts: hosts(&c.block_hosts),
            allow_ports: ports(&c.allow_ports),
            block_ports: ports(&c.block_ports),
            udp: c.udp,
        }
    }

    /// Checks what can be checked before resolving: stream type, port, host patterns.
    /// `Err` carries the close reason to send.
    pub fn check_request(
        &self,
        kind: StreamType,
        host: &str,
        port: u16,
    ) -> Result<(), CloseReason> {
        if port == 0 || host.is_empty() || host.len() > 253 + 2 || !well_formed_host(host) {
            return Err(CloseReason::ServerStreamInvalidInfo);
        }
        match kind {
            StreamType::Tcp => {}
            StreamType::Udp if self.udp => {}
            StreamType::Udp => return Err(CloseReason::ServerStreamBlockedAddress),
            StreamType::Unknown(_) => return Err(CloseReason::ServerStreamInvalidInfo),
        }
        if self.block_ports.iter().any(|r| r.contains(port))
            || (!self.allow_ports.is_empty() && !self.allow_ports.iter().any(|r| r.contains(port)))
        {
            return Err(CloseReason::ServerStreamBlockedAddress);
        }
        let host = normalize_host(host);
        if self.block_hosts.iter().any(|p| host_matches(p, &host)) {
            return Err(CloseReason::ServerStreamBlockedAddress);
        }
        Ok(())
    }

    /// Whether `host` skips the address checks (an `allow_hosts` match).
    pub fn host_exempt(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.allow_hosts.iter().any(|p| host_matches(p, &host))
    }

    /// Whether a resolved address may be connected to.
    pub fn allows_addr(&self, ip: IpAddr) -> bool {
        if self.block_cidrs.iter().any(|c| c.contains(ip)) {
            return false;
        }
        if self.allow_cidrs.iter().any(|c| c.contains(ip)) {
            return true;
        }
        match classify(ip) {
            AddrClass::Global => true,
            AddrClass::Loopback => self.allow_loopback,
            AddrClass::Private => self.allow_private,
            AddrClass::LinkLocal => self.allow_link_local,
            AddrClass::Special => {
                // 0.0.0.0 and :: connect to the local machine on Linux: loopback in effect.
                let ip = canonical(ip);
                self.allow_loopback && ip.is_unspecified()
            }
        }
    }
}

/// Whether `host` can name a target at all: an IP address (IPv6 with both brackets or none), or
/// a name whose labels are 1 to 63 bytes (one trailing dot allowed). Anything else is refused as
/// invalid (0x41) before the resolver sees it, rather than reported as unreachable (0x42) or read
/// leniently (`[::1` as `::1`).
fn well_formed_host(host: &str) -> bool {
    if host.starts_with('[') || host.ends_with(']') {
        return host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|inner| inner.parse::<std::net::Ipv6Addr>().is_ok());
    }
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    name.split('.').all(|label| (1..=63).contains(&label.len()))
}

/// Lower case, no trailing dot, no IPv6 brackets.
pub fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// `pattern` is an exact name or `*.suffix`, which matches the suffix's subdomains (not the
/// suffix itself).
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.ends_with('.')),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn strict() -> Policy {
        Policy::new(&PolicyConfig::default())
    }

    #[test]
    fn non_global_addresses_are_refused_by_default() {
        let p = strict();
        for a in [
            "127.0.0.1",
            "127.0.0.2",
            "0.0.0.0",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "fe80::1",
            "fd00::1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "198.18.0.1",
            "2001:db8::1",
            "ff02::1",
            "2002:7f00:1::1",
        ] {
            assert!(!p.allows_addr(ip(a)), "{a} must be refused");
        }
        for a in ["1.1.1.1", "8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert!(p.allows_addr(ip(a)), "{a} must be allowed");
        }
    }

    #[test]
    fn switches_open_their_classes_only() {
        let p = Policy::new(&PolicyConfig {
            allow_loopback: true,
            ..PolicyConfig::default()
        });
        for a in ["127.0.0.1", "::1", "::ffff:127.0.0.1", "0.0.0.0"] {
            assert!(p.allows_addr(ip(a)), "{a}");
        }
        assert!(!p.allows_addr(ip("10.0.0.1")));
        assert!(!p.allows_addr(ip("169.254.169.254")));
        let p = Policy::new(&PolicyConfig {
            allow_private: true,
            allow_link_local: true,
            ..PolicyConfig::default()
        });
        assert!(p.allows_addr(ip("10.0.0.1")));
        assert!(p.allows_addr(ip("169.254.169.254")));
        assert!(!p.allows_addr(ip("127.0.0.1")));
    }

    #[test]
    fn cidr_lists_open_and_close() {
        let p = Policy::new(&PolicyConfig {
            allow_cidrs: vec!["10.0.0.0/8".into(), "::1".into()],
            block_cidrs: vec!["1.1.1.0/24".into()],
            ..PolicyConfig::default()
        });
        assert!(p.allows_addr(ip("10.0.0.1")));
        assert!(p.allows_addr(ip("::ffff:10.0.0.1")));
        assert!(p.allows_addr(ip("::1")));
        assert!(!p.allows_addr(ip("1.1.1.1")));
        assert!(!p.allows_addr(ip("::ffff:1.1.1.1")));
        assert!(!p.allows_addr(ip("127.0.0.1")));
    }

    #[test]
    fn requests_checked_before_resolving() {
        let p = Policy::new(&PolicyConfig {
            block_hosts: vec!["*.evil.test".into(), "bad.test".into()],
            allow_ports: vec!["80".into(), "8000-8100".into()],
            udp: false,
            ..PolicyConfig::default()
        });
        let ok = p.check_request(StreamType::Tcp, "good.test", 8050);
        assert_eq!(ok, Ok(()));
        let blocked = Err(CloseReason::ServerStreamBlockedAddress);
        assert_eq!(p.check_request(StreamType::Tcp, "a.evil.test", 80), blocked);
        assert_eq!(p.check_request(StreamType::Tcp, "BAD.test.", 80), blocked);
        assert_eq!(p.check_request(StreamType::Tcp, "evil.test", 80), Ok(()));
        assert_eq!(p.check_request(StreamType::Tcp, "good.test", 443), blocked);
        assert_eq!(p.check_request(StreamType::Udp, "good.test", 80), blocked);
        assert_eq!(
            p.check_request(StreamType::Tcp, "good.test", 0),
            Err(CloseReason::ServerStreamInvalidInfo)
        );
        assert_eq!(
            strict().check_request(StreamType::Tcp, "example.com", 25),
            blocked
        );
    }

    #[test]
    fn malformed_hosts_are_invalid_before_resolving() {
        let p = Policy::new(&PolicyConfig::default());
        let invalid = Err(CloseReason::ServerStreamInvalidInfo);
        let label64 = "a".repeat(64);
        for host in [
            "[::1",
            "::1]",
            "[127.0.0.1]",
            "[]",
            "a..b",
            ".a",
            "..",
            label64.as_str(),
            &format!("x.{label64}.test"),
        ] {
            assert_eq!(
                p.check_request(StreamType::Tcp, host, 80),
                invalid,
                "{host}"
            );
        }
        let label63 = "a".repeat(63);
        for host in [
            "[::1]",
            "::1",
            "127.0.0.1",
            "example.com",
            "example.com.",
            "localhost",
            label63.as_str(),
        ] {
            assert_eq!(p.check_request(StreamType::Tcp, host, 80), Ok(()), "{host}");
        }
    }
}
