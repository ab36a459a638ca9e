//! Connection limits: in total and per client IP.
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
    /// A limiter with these maxima.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
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

    /// Takes a slot of `ip`'s share, if one is free.
    pub fn try_ip(self: &Arc<Self>, ip: IpAddr) -> Option<IpGuard> {
        let ip = crate::policy::canonical(ip);
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
        let l = Limiter::new(2, 1);
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
}
