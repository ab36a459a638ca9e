//! Resolving a stream's target and connecting to it under the policy.
//!
//! Names go through the system resolver (`getaddrinfo` on a blocking thread via tokio), which
//! honours `/etc/hosts` and the system's DNS configuration. Two special-use names of RFC 6761
//! are answered here without asking anyone: `*.invalid` never resolves, and `localhost` (and
//! `*.localhost`) is loopback. Every resolved address is judged by the policy; the allowed ones
//! are tried in order, each with the connect timeout.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpStream, UdpSocket};
use wisp_core::{CloseReason, StreamType};

use crate::policy::{normalize_host, Policy};

/// A connected target socket.
#[derive(Debug)]
pub enum Target {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A UDP socket connected to the target address.
    Udp(UdpSocket),
}

/// Resolves `host:port`. Literal addresses (also in brackets) skip the resolver.
pub async fn resolve(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, CloseReason> {
    let name = normalize_host(host);
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if name == "invalid" || name.ends_with(".invalid") {
        return Err(CloseReason::ServerStreamUnreachable);
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return Ok(vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        ]);
    }
    // Characters no host name has: refuse before handing the text to the system resolver.
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
    {
        return Err(CloseReason::ServerStreamInvalidInfo);
    }
    let lookup = async move {
        tokio::net::lookup_host((name.as_str(), port))
            .await
            .map(|a| a.collect::<Vec<SocketAddr>>())
    };
    match tokio::time::timeout(timeout, lookup).await {
        Ok(Ok(addrs)) => {
            if addrs.is_empty() {
                Err(CloseReason::ServerStreamUnreachable)
            } else {
                Ok(addrs)
            }
        }
        Ok(Err(_)) => Err(CloseReason::ServerStreamUnreachable),
        Err(_) => Err(CloseReason::ServerStreamConnectionTimedOut),
    }
}

/// Resolves, applies the address policy, and connects. `Err` is the close reason to send.
pub async fn connect(
    policy: &Policy,
    kind: StreamType,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<(Target, SocketAddr), CloseReason> {
    policy.check_request(kind, host, port)?;
    let addrs = resolve(host, port, timeout).await?;
    let exempt = policy.host_exempt(host);
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| exempt || policy.allows_addr(a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(CloseReason::ServerStreamBlockedAddress);
    }
    // The most telling failure wins: refused says more than timed out, which says more than
    // unreachable.
    let mut worst: Option<CloseReason> = None;
    for addr in allowed {
        let result = match kind {
            StreamType::Udp => connect_udp(addr).await.map(Target::Udp),
            _ => match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(r) => r.map(Target::Tcp),
                Err(_) => Err(io::Error::from(io::ErrorKind::TimedOut)),
            },
        };
        match result {
            Ok(t) => return Ok((t, addr)),
            Err(e) => {
                let reason = io_reason(&e);
                if worst.is_none_or(|w| rank(reason) > rank(w)) {
                    worst = Some(reason);
                }
            }
        }
    }
    Err(worst.unwrap_or(CloseReason::ServerStreamUnreachable))
}

fn rank(r: CloseReason) -> u8 {
    match r {
        CloseReason::ServerStreamConnectionRefused => 3,
        CloseReason::ServerStreamConnectionTimedOut => 2,
        _ => 1,
    }
}

async fn connect_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    Ok(socket)
}

/// The close reason for a socket error while connecting or while forwarding.
pub fn io_reason(e: &io::Error) -> CloseReason {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => CloseReason::ServerStreamConnectionRefused,
        io::ErrorKind::TimedOut => CloseReason::ServerStreamConnectionTimedOut,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            CloseReason::ServerStreamUnreachable
        }
        _ => CloseReason::Unexpected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn special_names_never_reach_a_resolver() {
        let t = Duration::from_secs(1);
        assert_eq!(
            resolve("nonexistent.invalid", 80, t).await,
            Err(CloseReason::ServerStreamUnreachable)
        );
        let local = resolve("LocalHost.", 80, t).await.unwrap();
        assert!(local.iter().all(|a| a.ip().is_loopback()));
        assert_eq!(
            resolve("[::1]", 80, t).await.unwrap(),
            vec!["[::1]:80".parse().unwrap()]
        );
        assert_eq!(
            resolve("a b", 80, t).await,
            Err(CloseReason::ServerStreamInvalidInfo)
        );
    }
}
