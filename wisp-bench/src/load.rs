//! The load: M connections x N streams to a TCP echo target, each stream writing fixed-size
//! chunks as fast as the path takes them while a reader counts the echo, for a duration after
//! a warm-up. The same load runs straight to the echo target, through the plain relay, or
//! through a Wisp server with our client.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use wisp_core::StreamType;

use crate::procstat::{Usage, Watch};

/// Where the load goes.
#[derive(Debug, Clone)]
pub enum Path {
    /// Plain TCP to this address (the echo target itself, or the relay in front of it).
    Tcp(SocketAddr),
    /// A Wisp server at this URL, with streams to the echo target at this address.
    Wisp(String, SocketAddr),
}

/// The shape of one run.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// WebSocket connections (for TCP paths: groups of sockets, same total).
    pub connections: usize,
    /// Streams per connection.
    pub streams: usize,
    /// Bytes per write.
    pub chunk: usize,
    /// Time before measuring.
    pub warmup: Duration,
    /// Time measured.
    pub duration: Duration,
}

/// What one run measured.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Outcome {
    /// Bytes echoed back per second, MiB/s (the WispMark figure).
    pub mib_s: f64,
    /// Bytes written per second, MiB/s.
    pub up_mib_s: f64,
    /// Streams that failed to open or broke during the run.
    pub errors: u64,
    /// Streams that stayed open but echoed nothing while measured: lost by the server without a
    /// CLOSE (wisp-python does this when its socket backs up; interop/README.md, peer bug 4).
    pub stalled: u64,
    /// The server process tree, when a PID was given.
    pub server: Option<Usage>,
}

#[derive(Default)]
struct Counters {
    up: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
    /// Every stream opened, in order; their echoed bytes add up to the run's total.
    streams: Mutex<Vec<Arc<StreamCount>>>,
}

/// What one stream has echoed, and whether it has ended (an ended stream counts as an error,
/// not as stalled).
#[derive(Default)]
struct StreamCount {
    echoed: AtomicU64,
    ended: AtomicBool,
}

impl StreamCount {
    fn echoed(&self, n: usize) {
        self.echoed.fetch_add(n as u64, Relaxed);
    }
}

/// The counters of every stream at one moment.
struct Snapshot(Vec<(u64, bool)>);

impl Snapshot {
    fn echoed(&self) -> u64 {
        self.0.iter().map(|(echoed, _)| echoed).sum()
    }

    /// Streams still open now that echoed nothing since `before`. A stream opened after
    /// `before` was taken is not judged.
    fn stalled_since(&self, before: &Snapshot) -> u64 {
        self.0
            .iter()
            .zip(&before.0)
            .filter(|((now, ended), (then, _))| !ended && now == then)
            .count() as u64
    }
}

impl Counters {
    /// Counts one more stream.
    fn new_stream(&self) -> Arc<StreamCount> {
        let count = Arc::new(StreamCount::default());
        self.streams
            .lock()
            .expect("not poisoned")
            .push(count.clone());
        count
    }

    fn snapshot(&self) -> Snapshot {
        let streams = self.streams.lock().expect("not poisoned");
        Snapshot(
            streams
                .iter()
                .map(|c| (c.echoed.load(Relaxed), c.ended.load(Relaxed)))
                .collect(),
        )
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Runs the load and measures it. `label` names it on the progress line (stderr).
pub async fn run(path: &Path, spec: Spec, server_pid: Option<u32>, label: &str) -> Outcome {
    let counters = Arc::new(Counters::default());
    let chunk = Bytes::from(
        (0..spec.chunk)
            .map(|i| (i % 253) as u8)
            .collect::<Vec<u8>>(),
    );
    let mut tasks = JoinSet::new();
    for _ in 0..spec.connections {
        let c = counters.clone();
        let chunk = chunk.clone();
        let path = path.clone();
        let n = spec.streams;
        let label = label.to_owned();
        tasks.spawn(async move {
            let mut inner = JoinSet::new();
            match path {
                Path::Tcp(addr) => {
                    for _ in 0..n {
                        inner.spawn(tcp_stream(addr, chunk.clone(), c.clone()));
                    }
                }
                Path::Wisp(url, target) => match crate::client::connect(&url).await {
                    Ok((mux, actor)) => {
                        let l = label.clone();
                        let ca = c.clone();
                        inner.spawn(async move {
                            if let Err(e) = actor.await {
                                if !ca.stop.load(Relaxed) {
                                    eprintln!("\n{l}: connection failed: {e}");
                                }
                            }
                        });
                        let mux = Arc::new(mux);
                        for _ in 0..n {
                            inner.spawn(wisp_stream(mux.clone(), target, chunk.clone(), c.clone()));
                        }
                    }
                    Err(e) => {
                        eprintln!("\n{label}: connect failed: {e}");
                        c.errors.fetch_add(n as u64, Relaxed);
                    }
                },
            }
            // Keeps the connection (and its streams) alive until the run is aborted.
            while inner.join_next().await.is_some() {}
            std::future::pending::<()>().await;
        });
    }

    let started = Instant::now();
    progress(label, &counters, started, spec.warmup, None).await;
    let up0 = counters.up.load(Relaxed);
    let before = counters.snapshot();
    let mut watch = server_pid.map(Watch::start);
    let t0 = Instant::now();
    progress(label, &counters, t0, spec.duration, watch.as_mut()).await;
    let secs = t0.elapsed().as_secs_f64();
    let up = counters.up.load(Relaxed) - up0;
    let after = counters.snapshot();
    let down = after.echoed() - before.echoed();
    let stalled = after.stalled_since(&before);
    let server = watch.map(Watch::finish);
    counters.stop.store(true, Relaxed);
    tasks.shutdown().await;
    eprint!("\r\x1b[K");
    Outcome {
        mib_s: down as f64 / MIB / secs,
        up_mib_s: up as f64 / MIB / secs,
        errors: counters.errors.load(Relaxed),
        stalled,
        server,
    }
}

/// Waits `span`, printing a progress line every half second and sampling the server.
async fn progress(
    label: &str,
    c: &Counters,
    from: Instant,
    span: Duration,
    mut watch: Option<&mut Watch>,
) {
    let mut last = (Instant::now(), c.snapshot().echoed());
    let phase = if watch.is_some() || span.is_zero() {
        "measure"
    } else {
        "warm-up"
    };
    while from.elapsed() < span {
        let left = span - from.elapsed();
        tokio::time::sleep(left.min(Duration::from_millis(500))).await;
        if let Some(w) = watch.as_deref_mut() {
            w.sample();
        }
        let now = (Instant::now(), c.snapshot().echoed());
        let rate = (now.1 - last.1) as f64 / MIB / (now.0 - last.0).as_secs_f64().max(1e-3);
        eprint!(
            "\r\x1b[K{label}: {phase} {:.1}/{:.0} s, {rate:.0} MiB/s echoed",
            from.elapsed().as_secs_f64(),
            span.as_secs_f64()
        );
        last = now;
    }
}

async fn tcp_stream(addr: SocketAddr, chunk: Bytes, c: Arc<Counters>) {
    let Ok(sock) = TcpStream::connect(addr).await else {
        c.errors.fetch_add(1, Relaxed);
        return;
    };
    let _ = sock.set_nodelay(true);
    let count = c.new_stream();
    let (mut rd, mut wr) = sock.into_split();
    let cw = c.clone();
    let writer = async move {
        while !cw.stop.load(Relaxed) {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
            cw.up.fetch_add(chunk.len() as u64, Relaxed);
        }
    };
    let reader = async {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = rd.read(&mut buf).await {
            count.echoed(n);
        }
        count.ended.store(true, Relaxed);
    };
    tokio::join!(writer, reader);
}

async fn wisp_stream(
    mux: Arc<wisp_core::ClientMux<crate::client::Tx>>,
    target: SocketAddr,
    chunk: Bytes,
    c: Arc<Counters>,
) {
    let stream = match mux
        .new_stream(StreamType::Tcp, target.ip().to_string(), target.port())
        .await
    {
        Ok(s) => s,
        Err(_) => {
            c.errors.fetch_add(1, Relaxed);
            return;
        }
    };
    let count = c.new_stream();
    let (mut rd, mut wr) = stream.into_split();
    let cw = c.clone();
    // The writer runs as its own task: `feed` is ready whenever the stream's send queue has
    // room, so in one task with the reader it could keep the reader from running long enough
    // for the client mux to close the stream as overflowing (0x81).
    let writer = tokio::spawn(async move {
        // `feed`, not `send`: a flush would wait for the mux to drain this stream's queue and
        // leave one chunk in flight, which measures round trips instead of throughput.
        while !cw.stop.load(Relaxed) {
            if wr.feed(chunk.clone()).await.is_err() {
                break;
            }
            cw.up.fetch_add(chunk.len() as u64, Relaxed);
        }
        wr
    });
    // Aborts the writer when this task is aborted at the end of the run.
    let _guard = AbortOnDrop(writer);
    loop {
        match rd.next().await {
            Some(Ok(data)) => count.echoed(data.len()),
            Some(Err(e)) => {
                if !c.stop.load(Relaxed) {
                    eprintln!("\nstream failed: {e}");
                }
                break;
            }
            None => break,
        }
    }
    count.ended.store(true, Relaxed);
    if !c.stop.load(Relaxed) {
        c.errors.fetch_add(1, Relaxed);
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{spawn, Kind};

    fn spec(streams: usize) -> Spec {
        Spec {
            connections: 1,
            streams,
            chunk: 16 * 1024,
            warmup: Duration::from_millis(300),
            duration: Duration::from_millis(500),
        }
    }

    /// Streams to a sink stay open and never echo: each is stalled, none is an error. Streams to
    /// the echo target are neither.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_that_echo_nothing_are_counted_as_stalled() {
        let sink = spawn(Kind::Sink).await.unwrap();
        let silent = run(&Path::Tcp(sink), spec(3), None, "sink").await;
        assert_eq!(silent.stalled, 3);
        assert_eq!(silent.errors, 0);
        assert_eq!(silent.mib_s, 0.0);

        let echo = spawn(Kind::Echo).await.unwrap();
        let live = run(&Path::Tcp(echo), spec(3), None, "echo").await;
        assert_eq!(live.stalled, 0);
        assert_eq!(live.errors, 0);
        assert!(live.mib_s > 0.0, "{live:?}");
    }
}
