//! A well-behaved client that keeps moving checksummed data while a hostile one attacks the same
//! server, and the harness that runs one hostile case beside it.
//!
//! The bystander writes a pseudo-random byte sequence to an echo target and compares every byte
//! that comes back with the same sequence regenerated, so a lost, duplicated or reordered byte is
//! caught where it happens; the FNV-1a checksum is only printed as a figure. Its writes are
//! paced so that it keeps the server busy without starving the attack on two shared cores.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wisp_core::StreamType;
use wisp_server::{Config, Server};

use super::*;

/// xorshift64*: deterministic bytes, the same on both ends of the echo.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// FNV-1a over a byte stream.
#[derive(Clone, Copy)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Checks a received byte stream against the generator's, byte by byte.
pub struct Verifier {
    gen: Gen,
    pending: Vec<u8>,
    pub bytes: u64,
    pub fnv: Fnv,
}

impl Verifier {
    pub fn new(seed: u64) -> Self {
        Self {
            gen: Gen::new(seed),
            pending: Vec::new(),
            bytes: 0,
            fnv: Fnv::default(),
        }
    }

    /// Panics at the first byte that differs from what was sent.
    pub fn check(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.pending.is_empty() {
                let mut block = vec![0u8; 4096];
                self.gen.fill(&mut block);
                self.pending = block;
            }
            let n = data.len().min(self.pending.len());
            assert!(
                data[..n] == self.pending[..n],
                "corrupt data after {} good bytes",
                self.bytes
            );
            self.fnv.update(&data[..n]);
            self.pending.drain(..n);
            self.bytes += n as u64;
            data = &data[n..];
        }
    }
}

/// Produces the same stream as [`Verifier`] in chunks.
pub struct Source {
    gen: Gen,
    pending: Vec<u8>,
    pub bytes: u64,
}

impl Source {
    pub fn new(seed: u64) -> Self {
        Self {
            gen: Gen::new(seed),
            pending: Vec::new(),
            bytes: 0,
        }
    }

    pub fn take(&mut self, n: usize) -> Bytes {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if self.pending.is_empty() {
                let mut block = vec![0u8; 4096];
                self.gen.fill(&mut block);
                self.pending = block;
            }
            let k = (n - out.len()).min(self.pending.len());
            out.extend(self.pending.drain(..k));
        }
        self.bytes += n as u64;
        Bytes::from(out)
    }
}

/// Writes the checksummed sequence of `seed` on `stream` in chunks of `chunk()` bytes, pausing
/// `pause` between them, until `stop()` says so or a write fails; then waits for the echo of every
/// byte written and checks each one. Returns the verifier, or how the stream ended early.
pub async fn echo_checksummed(
    stream: wisp_core::stream::MuxStream<W>,
    seed: u64,
    mut chunk: impl FnMut() -> usize,
    pause: Duration,
    stop: impl Fn() -> bool,
) -> Result<Verifier, String> {
    let (mut rx, mut tx) = stream.into_split();
    let sent = Arc::new(AtomicU64::new(u64::MAX));
    let sent_w = sent.clone();
    let writer = async move {
        let mut src = Source::new(seed);
        while !stop() {
            if tx.send(src.take(chunk())).await.is_err() {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        sent_w.store(src.bytes, Relaxed);
        tx
    };
    let reader = async {
        let mut v = Verifier::new(seed);
        while v.bytes != sent.load(Relaxed) {
            match tokio::time::timeout(Duration::from_millis(200), rx.next()).await {
                Ok(Some(Ok(b))) => v.check(&b),
                Ok(other) => {
                    return Err(format!(
                        "ended after {} bytes: {other:?}, close reason {:?}",
                        v.bytes,
                        rx.get_close_reason()
                    ))
                }
                Err(_) => {} // check whether the writer has stopped
            }
        }
        Ok(v)
    };
    let (_tx, result) = tokio::join!(writer, reader);
    result
}

/// A running bystander; [`Bystander::finish`] stops it and returns the bytes verified.
pub struct Bystander {
    stop: CancellationToken,
    task: JoinHandle<(u64, u64)>,
}

impl Bystander {
    /// Connects, opens one TCP stream to `echo` and keeps echoing until stopped.
    /// Chunks are at most `max_chunk` bytes (one DATA packet must fit the server's message
    /// limit).
    pub async fn start(addr: SocketAddr, echo: u16, seed: u64, max_chunk: usize) -> Self {
        let mux = client(addr).await;
        let stream = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .expect("bystander stream opens");
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let _mux = mux;
            let mut sizes = Gen::new(seed ^ 0x55);
            let v = echo_checksummed(
                stream,
                seed,
                move || 1 + (sizes.next_u64() % max_chunk as u64) as usize,
                Duration::from_millis(2),
                move || token.is_cancelled(),
            )
            .await
            .unwrap_or_else(|e| panic!("bystander stream {e}"));
            (v.bytes, v.fnv.0)
        });
        Self { stop, task }
    }

    /// Stops writing, waits for every byte to come back, and returns (bytes, checksum).
    pub async fn finish(self) -> (u64, u64) {
        self.stop.cancel();
        self.task.await.expect("the bystander lost no byte")
    }
}

/// What a hostile case can reach.
#[derive(Clone)]
pub struct Env {
    pub addr: SocketAddr,
    pub echo: u16,
    pub server: Arc<Server>,
}

/// Peak resident memory of this process (server and clients together), in KiB.
pub fn peak_rss_kib() -> u64 {
    proc_status_kib("self", "VmHWM:")
}

/// A field of /proc/PID/status in KiB (0 if unreadable).
pub fn proc_status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Waits up to 10 s for `cond`; returns whether it held.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

/// Runs one hostile case: a server, an echo target, a bystander moving checksummed data the whole
/// time; then the bystander must have lost nothing, a newcomer must be served, every connection
/// slot and stream the attack took must be given back, and shutdown must be clean. Prints the
/// case's figures on one `hardening-figure` line.
pub async fn hostile_case<F, Fut>(name: &str, config: Config, hostile: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let limit = Duration::from_secs(120);
    let max_chunk = (config.limits.max_message_size - 5).min(16_384);
    tokio::time::timeout(limit, async {
        let server = Arc::new(start(config).await);
        let echo = tcp_echo().await;
        let addr = addr(&server);
        let seed = name.bytes().fold(7u64, |h, b| h.wrapping_mul(31) ^ u64::from(b));
        let bystander = Bystander::start(addr, echo, seed, max_chunk).await;
        // Let data flow before the attack, so that the attack meets a busy server.
        tokio::time::sleep(Duration::from_millis(50)).await;
        hostile(Env {
            addr,
            echo,
            server: server.clone(),
        })
        .await;
        let (bytes, fnv) = bystander.finish().await;
        assert!(bytes > 0, "the bystander moved data");

        let newcomer = client(addr).await;
        let mut n = newcomer
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .expect("a newcomer is served");
        assert_eq!(echo_roundtrip(&mut n, b"new").await, b"new");
        drop(n);
        drop(newcomer);
        // Bystander and newcomer are gone too: nothing the attack took may remain.
        let metrics = server.metrics();
        assert!(
            eventually(|| server.connection_count() == 0).await,
            "connection slots leaked: {} held",
            server.connection_count()
        );
        assert!(
            eventually(|| metrics.streams_open.load(Relaxed) == 0).await,
            "streams leaked: {} open",
            metrics.streams_open.load(Relaxed)
        );
        let server = Arc::try_unwrap(server).expect("the case kept no server handle");
        assert!(server.shutdown().await, "every task ended within the grace period");
        println!(
            "hardening-figure case={name} bystander_bytes={bytes} bystander_fnv={fnv:016x} peak_rss_kib={}",
            peak_rss_kib()
        );
    })
    .await
    .expect("hostile case timed out");
}
