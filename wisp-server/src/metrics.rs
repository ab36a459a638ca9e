//! Counters and the optional Prometheus text endpoint.
//!
//! Counters are plain atomics updated on the hot path; the endpoint renders them on request.
//! It listens on its own address so that it can stay private while the Wisp listener is
//! public.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wisp_core::{CloseReason, StreamType};

/// All counters of one server.
#[derive(Debug)]
pub struct Metrics {
    /// WebSocket connections accepted (after the Wisp handshake).
    pub connections_total: AtomicU64,
    /// WebSocket connections open now.
    pub connections_open: AtomicI64,
    /// Connections refused before the upgrade (limits, origin, bad requests) or at the handshake.
    pub connections_rejected: AtomicU64,
    /// Streams ended, by type (0 TCP, 1 UDP) and close reason code.
    streams: [[AtomicU64; 256]; 2],
    /// Streams open now.
    pub streams_open: AtomicI64,
    /// Bytes from clients to targets.
    pub bytes_to_targets: AtomicU64,
    /// Bytes from targets to clients.
    pub bytes_to_clients: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            connections_total: AtomicU64::new(0),
            connections_open: AtomicI64::new(0),
            connections_rejected: AtomicU64::new(0),
            streams: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            streams_open: AtomicI64::new(0),
            bytes_to_targets: AtomicU64::new(0),
            bytes_to_clients: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts a finished stream.
    pub fn stream_closed(&self, kind: StreamType, reason: CloseReason) {
        let k = usize::from(kind == StreamType::Udp);
        self.streams[k][reason.0 as usize].fetch_add(1, Relaxed);
    }

    /// The number of streams of `kind` that ended with `reason`.
    pub fn streams_closed(&self, kind: StreamType, reason: CloseReason) -> u64 {
        let k = usize::from(kind == StreamType::Udp);
        self.streams[k][reason.0 as usize].load(Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, kind: &str, v: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        counter(
            "wisp_connections_total",
            "WebSocket connections that completed the Wisp handshake.",
            "counter",
            self.connections_total.load(Relaxed).to_string(),
        );
        counter(
            "wisp_connections_open",
            "WebSocket connections open now.",
            "gauge",
            self.connections_open.load(Relaxed).to_string(),
        );
        counter(
            "wisp_connections_rejected_total",
            "Connections refused by limits, origin checks, bad requests or failed handshakes.",
            "counter",
            self.connections_rejected.load(Relaxed).to_string(),
        );
        counter(
            "wisp_streams_open",
            "Streams open now.",
            "gauge",
            self.streams_open.load(Relaxed).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP wisp_bytes_total Bytes forwarded, by direction.\n# TYPE wisp_bytes_total counter"
        );
        let _ = writeln!(
            out,
            "wisp_bytes_total{{direction=\"to_target\"}} {}",
            self.bytes_to_targets.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "wisp_bytes_total{{direction=\"to_client\"}} {}",
            self.bytes_to_clients.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP wisp_streams_total Streams ended, by type and close reason.\n# TYPE wisp_streams_total counter"
        );
        for (k, name) in [(0, "tcp"), (1, "udp")] {
            for (code, c) in self.streams[k].iter().enumerate() {
                let v = c.load(Relaxed);
                if v > 0 {
                    let _ = writeln!(
                        out,
                        "wisp_streams_total{{type=\"{name}\",reason=\"0x{code:02x}\"}} {v}"
                    );
                }
            }
        }
        out
    }
}

/// Serves `GET` of any path with the metrics until `stop` fires.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, stop: CancellationToken) {
    loop {
        let (mut sock, _) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // One small read is enough for a scraper's request line; the answer does not depend
            // on it, so a slow or odd client cannot hold anything.
            let mut buf = [0u8; 1024];
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf)).await;
            if !matches!(read, Ok(Ok(n)) if n > 0) {
                return;
            }
            let body = metrics.render();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
