//! Stream-open latency: from asking for a stream (CONNECT, or a TCP connect for the plain
//! paths) to the first echoed byte, one stream at a time on an otherwise idle connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wisp_core::StreamType;

use crate::load::Path;

/// Percentiles of a probe, in microseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Streams opened.
    pub samples: usize,
}

/// Opens `count` streams one after another (each sends 64 bytes and waits for the first byte
/// back, then closes) and returns the percentiles; `None` if the path does not work. Stops
/// early after `limit`.
pub async fn probe(path: &Path, count: usize, limit: Duration) -> Option<Latency> {
    let payload = Bytes::from_static(&[0x5a; 64]);
    let started = Instant::now();
    let mut samples = Vec::with_capacity(count);
    match path {
        Path::Tcp(addr) => {
            for _ in 0..count {
                if started.elapsed() > limit {
                    break;
                }
                samples.push(tcp_once(*addr, &payload).await?);
            }
        }
        Path::Wisp(url, target) => {
            let (mux, actor) = crate::client::connect(url).await.ok()?;
            let actor = tokio::spawn(actor);
            // One stream first, so that the connection is warm (as it is for a page that has
            // been connected for a while).
            let _ = wisp_once(&mux, *target, &payload).await;
            for _ in 0..count {
                if started.elapsed() > limit {
                    break;
                }
                match wisp_once(&mux, *target, &payload).await {
                    Some(d) => samples.push(d),
                    None => break,
                }
            }
            let _ = mux.close().await;
            drop(mux);
            let _ = tokio::time::timeout(Duration::from_secs(2), actor).await;
        }
    }
    if samples.is_empty() {
        return None;
    }
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1e6
    };
    Some(Latency {
        p50_us: at(0.5),
        p99_us: at(0.99),
        samples: samples.len(),
    })
}

async fn tcp_once(addr: SocketAddr, payload: &[u8]) -> Option<Duration> {
    let t0 = Instant::now();
    let mut sock = TcpStream::connect(addr).await.ok()?;
    sock.set_nodelay(true).ok()?;
    sock.write_all(payload).await.ok()?;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await {
        Ok(Ok(1..)) => Some(t0.elapsed()),
        _ => None,
    }
}

async fn wisp_once(
    mux: &wisp_core::ClientMux<crate::client::Tx>,
    target: SocketAddr,
    payload: &Bytes,
) -> Option<Duration> {
    let t0 = Instant::now();
    let mut stream = mux
        .new_stream(StreamType::Tcp, target.ip().to_string(), target.port())
        .await
        .ok()?;
    stream.feed(payload.clone()).await.ok()?;
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
    let d = t0.elapsed();
    let _ = stream.close(wisp_core::CloseReason::Voluntary).await;
    match first {
        Ok(Some(Ok(_))) => Some(d),
        _ => None,
    }
}
