//! Connection limits: in total and per client IP.
//!
//! IPv6 clients are counted per prefix (by default /64), not per address: a single host usually
//! holds a whole /64 and could otherwise open `max_per_ip` connections from each of its 2^64
//! addresses.
//!
//! A slot is taken before any work is done for a connection and released when its guard is
//! dropped, whichever way the connection ends. Streams per connection are limited inside the
//! multiplexer (`MuxOptions::max_streams`, refused with 0x49); timeouts live where they apply.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts open connections.
#[derive(Debug)]
pub struct Limiter {
    max_total: usize,
    max_per_ip: usize,
    /// IPv6 addresses sharing this many leading bits count as one client.
    ipv6_prefix_len: u8,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Holds one slot of the total; released on drop.
#[derive(Debug)]
pub struct TotalGuard(Arc<Limiter>);

/// Holds one slot of an IP's share; released on drop.
#[derive(Debug)]
pub struct IpGuard(Arc<Limiter>, IpAddr);

impl Limiter {
    /// A limiter with these maxima; IPv6 clients are grouped by their first `ipv6_prefix_len`
    /// bits (1 to 128).
    pub fn new(max_total: usize, max_per_ip: usize, ipv6_prefix_len: u8) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            ipv6_prefix_len,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot of the total, if one is free.
    pub fn try_total(self: &Arc<Self>) -> Option<TotalGuard> {
        let mut s = self.lock();
        if s.total >= self.max_total {
            return None;
        }
        s.total += 1;
        Some(TotalGuard(self.clone()))
    }

    /// The client `ip` is counted as: its canonical form, and for IPv6 its prefix.
    fn client_key(&self, ip: IpAddr) -> IpAddr {
        match crate::policy::canonical(ip) {
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.ipv6_prefix_len.min(128)))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            v4 => v4,
        }
    }

    /// Takes a slot of `ip`'s share, if one is free.
    pub fn try_ip(self: &Arc<Self>, ip: IpAddr) -> Option<IpGuard> {
        let ip = self.client_key(ip);
        let mut s = self.lock();
        let n = s.per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return None;
        }
        *n += 1;
        Some(IpGuard(self.clone(), ip))
    }

    /// Connections counted now.
    pub fn total(&self) -> usize {
        self.lock().total
    }
}

impl Drop for TotalGuard {
    fn drop(&mut self) {
        self.0.lock().total -= 1;
    }
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        if let Some(n) = s.per_ip.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                // Forget the IP so that the map does not grow with every client ever seen.
                s.per_ip.remove(&self.1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_taken_and_given_back() {
        let l = Limiter::new(2, 1, 64);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let g1 = l.try_total().unwrap();
        let _g2 = l.try_total().unwrap();
        assert!(l.try_total().is_none());
        drop(g1);
        assert!(l.try_total().is_some());
        let i1 = l.try_ip(a).unwrap();
        assert!(l.try_ip(a).is_none());
        assert!(l.try_ip("::ffff:192.0.2.1".parse().unwrap()).is_none());
        drop(i1);
        assert!(l.try_ip(a).is_some());
    }

    #[test]
    fn ipv6_clients_are_counted_per_prefix() {
        let l = Limiter::new(100, 2, 64);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let _a = l.try_ip(ip("2001:db8:1:2::1")).unwrap();
        let b = l.try_ip(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")).unwrap();
        // A third address of the same /64 is the same client.
        assert!(l.try_ip(ip("2001:db8:1:2:abcd::7")).is_none());
        // The neighbouring /64 is another client.
        assert!(l.try_ip(ip("2001:db8:1:3::1")).is_some());
        drop(b);
        assert!(l.try_ip(ip("2001:db8:1:2:abcd::7")).is_some());

        // /128 counts every address on its own; /48 groups whole sites.
        let exact = Limiter::new(100, 1, 128);
        let _c = exact.try_ip(ip("2001:db8::1")).unwrap();
        assert!(exact.try_ip(ip("2001:db8::2")).is_some());
        let site = Limiter::new(100, 1, 48);
        let _d = site.try_ip(ip("2001:db8:1:2::1")).unwrap();
        assert!(site.try_ip(ip("2001:db8:1:ffff::1")).is_none());
        assert!(site.try_ip(ip("2001:db8:2::1")).is_some());

        // IPv4, mapped or not, is never masked.
        let v4 = Limiter::new(100, 1, 64);
        let _e = v4.try_ip(ip("192.0.2.1")).unwrap();
        assert!(v4.try_ip(ip("192.0.2.2")).is_some());
        assert!(v4.try_ip(ip("::ffff:192.0.2.1")).is_none());
    }
}
