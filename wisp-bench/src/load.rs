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
    down: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
    /// Bytes echoed on each open stream, to find the stalled ones.
    per_stream: Mutex<Vec<Arc<AtomicU64>>>,
}

impl Counters {
    /// A counter for one more stream's echoed bytes.
    fn new_stream(&self) -> Arc<AtomicU64> {
        let counter = Arc::new(AtomicU64::new(0));
        self.per_stream
            .lock()
            .expect("not poisoned")
            .push(counter.clone());
        counter
    }

    fn per_stream_snapshot(&self) -> Vec<u64> {
        let streams = self.per_stream.lock().expect("not poisoned");
        streams.iter().map(|c| c.load(Relaxed)).collect()
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
    let down0 = counters.down.load(Relaxed);
    let per_stream0 = counters.per_stream_snapshot();
    let mut watch = server_pid.map(Watch::start);
    let t0 = Instant::now();
    progress(label, &counters, t0, spec.duration, watch.as_mut()).await;
    let secs = t0.elapsed().as_secs_f64();
    let up = counters.up.load(Relaxed) - up0;
    let down = counters.down.load(Relaxed) - down0;
    // A stream opened after the warm-up has no earlier figure and is not judged.
    let stalled = counters
        .per_stream_snapshot()
        .iter()
        .zip(&per_stream0)
        .filter(|(now, before)| now == before)
        .count() as u64;
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
    let mut last = (Instant::now(), c.down.load(Relaxed));
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
        let now = (Instant::now(), c.down.load(Relaxed));
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
    let echoed = c.new_stream();
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
            c.down.fetch_add(n as u64, Relaxed);
            echoed.fetch_add(n as u64, Relaxed);
        }
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
    let echoed = c.new_stream();
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
            Some(Ok(data)) => {
                c.down.fetch_add(data.len() as u64, Relaxed);
                echoed.fetch_add(data.len() as u64, Relaxed);
            }
            Some(Err(e)) => {
                if !c.stop.load(Relaxed) {
                    eprintln!("\nstream failed: {e}");
                }
                break;
            }
            None => break,
        }
    }
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
