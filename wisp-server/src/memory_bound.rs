//! The most memory the configured limits let the server's buffers hold, and a comparison with
//! the machine's memory at startup.
//!
//! Every queue is bounded, but the bounds multiply: with the defaults one connection may hold
//! about 60 MiB (a client that never reads, 128 streams from targets that send without end, and
//! targets that never read while the client sends), and 1,024 connections about 60 GiB, more
//! than most machines have. Reaching it takes a deliberate attacker with many addresses, yet an
//! operator should know the figure and size the limits to the machine; the server logs it at
//! startup and warns when it exceeds the machine's memory. The arithmetic is spelled out in
//! `docs/SECURITY.md` ("Memory arithmetic").

use crate::config::Config;
use crate::forward::CHUNK;

/// Bytes from the client queued toward all targets of one connection before the mux stops
/// reading it (`MuxOptions::connection_receive_buffer`): room for a few streams at full credit
/// of 64 KiB packets.
pub const CONNECTION_RECEIVE_BUFFER: usize = 16 * 1024 * 1024;

/// tokio-websockets flushes from `poll_ready` once this many bytes are queued; see where the
/// server builds its WebSocket configuration.
pub const WS_FLUSH_THRESHOLD: usize = 256 * 1024;

/// Control packets (CLOSE, CONTINUE) the mux queues before it stops reading the client.
pub const MAX_PENDING_CONTROL: usize = 1024;

/// The largest DATA packet the server sends: header and one target read.
const LARGEST_PACKET: usize = 5 + CHUNK;
/// A queued control packet: header and at most a 4-byte payload.
const CONTROL_PACKET: usize = 9;
/// What an open stream costs beyond its queues (slot, task, socket halves): `wisp-bench memory`
/// measured 6.8 KiB per open stream, rounded up.
const PER_STREAM_FIXED: usize = 8 * 1024;
/// What a connection costs beyond its queues: measured 11.0 KiB per idle connection, rounded up.
const PER_CONNECTION_FIXED: usize = 16 * 1024;

/// The bound, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBound {
    /// One connection with every stream open and every queue full.
    pub per_connection: u64,
    /// `max_connections` such connections.
    pub total: u64,
}

impl MemoryBound {
    /// The bound the limits of `config` allow.
    pub fn of(config: &Config) -> Self {
        let l = &config.limits;
        let streams = l.max_streams_per_connection;
        // Client to targets: the connection cap, plus the one message taken past it.
        let toward_targets = CONNECTION_RECEIVE_BUFFER + l.max_message_size;
        // Targets to client: each stream's send buffer, plus the chunk read past it.
        let toward_client = streams * (l.stream_send_buffer + CHUNK);
        // The WebSocket: one message being reassembled, the write queue up to the flush
        // threshold plus one packet, the control queue, one pong (at most 125 bytes).
        let websocket = l.max_message_size
            + WS_FLUSH_THRESHOLD
            + LARGEST_PACKET
            + MAX_PENDING_CONTROL * CONTROL_PACKET
            + 125;
        let fixed = PER_CONNECTION_FIXED + streams * PER_STREAM_FIXED;
        let per_connection = (toward_targets + toward_client + websocket + fixed) as u64;
        Self {
            per_connection,
            total: per_connection.saturating_mul(l.max_connections as u64),
        }
    }

    /// A warning when the bound exceeds `machine_bytes` of memory, saying what to lower.
    pub fn warning(&self, machine_bytes: u64) -> Option<String> {
        (self.total > machine_bytes).then(|| {
            format!(
                "the limits let buffers grow to {} in the worst case ({} per connection), more \
                 than this machine's {}: lower limits.max_connections or \
                 limits.stream_send_buffer (docs/SECURITY.md, \"Memory arithmetic\")",
                human(self.total),
                human(self.per_connection),
                human(machine_bytes)
            )
        })
    }
}

/// The machine's memory (`MemTotal` in /proc/meminfo), where that can be read.
pub fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_total(&text)
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes as MiB or GiB with one decimal.
pub fn human(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let mib = bytes as f64 / MIB;
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn defaults_allow_about_60_mib_per_connection() {
        let bound = MemoryBound::of(&Config::default());
        // 16 MiB + 1 MiB toward targets, 128 x (256 KiB + 64 KiB) toward the client, about
        // 1.3 MiB of WebSocket queues, 1 MiB of fixed costs.
        let expected = 16 * MIB
            + MIB
            + 128 * (256 * 1024 + CHUNK as u64)
            + MIB
            + 256 * 1024
            + 65_535
            + 9 * 1024
            + 125
            + 16 * 1024
            + 128 * 8 * 1024;
        assert_eq!(bound.per_connection, expected);
        assert!((59 * MIB..61 * MIB).contains(&bound.per_connection));
        assert_eq!(bound.total, expected * 1024);
    }

    #[test]
    fn smaller_limits_give_a_smaller_bound() {
        let mut config = Config::default();
        config.limits.max_connections = 256;
        config.limits.stream_send_buffer = 128 * 1024;
        let bound = MemoryBound::of(&config);
        assert!(bound.total < 12 * 1024 * MIB, "{}", human(bound.total));
        assert!(bound.total < MemoryBound::of(&Config::default()).total / 4);
    }

    #[test]
    fn warns_only_above_the_machine() {
        let bound = MemoryBound::of(&Config::default());
        let warning = bound
            .warning(24 * 1024 * MIB)
            .expect("60 GiB is above 24 GiB");
        assert!(warning.contains("limits.max_connections"), "{warning}");
        assert!(warning.contains("GiB"), "{warning}");
        assert_eq!(bound.warning(bound.total), None);
    }

    #[test]
    fn reads_mem_total() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:  100 kB\n";
        assert_eq!(parse_mem_total(meminfo), Some(24_576_000 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
    }
}
