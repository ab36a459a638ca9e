//! Overload against the real binary (its own process, so its memory is its own): many
//! connections × 10 streams moving checksummed data, a client that stops reading while its
//! targets keep sending (memory stays under the bound computed from the config), a target that
//! resets mid-stream, and SIGTERM during load.
//!
//! These are long, so they are built only with the `load-tests` feature and run alone:
//! scripts/test-hardening.sh (npm test) runs the short versions, scripts/stress.sh the long
//! ones, sized by `WISP_LOAD_CONNECTIONS` and `WISP_LOAD_SECONDS`.

mod common;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use common::binary::{binary_config, Binary};
use common::bystander::{echo_checksummed, Source, Verifier};
use common::raw::*;
use common::*;
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use wisp_core::{CloseReason, StreamType};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Moves checksummed data on one stream until `until`, then waits for the echo of every byte.
/// Returns the bytes verified, or how the stream ended early.
async fn echo_stream(
    stream: wisp_core::stream::MuxStream<W>,
    seed: u64,
    until: tokio::time::Instant,
    chunk: usize,
) -> Result<u64, String> {
    let stop = move || tokio::time::Instant::now() >= until;
    echo_checksummed(stream, seed, || chunk, Duration::from_millis(5), stop)
        .await
        .map(|v| v.bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_moving_checksummed_data() {
    let wanted = env_or("WISP_LOAD_CONNECTIONS", 200) as usize;
    let secs = env_or("WISP_LOAD_SECONDS", 10);
    // This process holds 11 descriptors per connection (its WebSocket and the echo target's ten
    // accepted sockets), and so does the server. Past the descriptor limit the server could only
    // answer 0x03, so the run is sized to what fits, and says so.
    let fit = (open_files_limit().saturating_sub(256) / 11) as usize;
    let conns = wanted.min(fit);
    if conns < wanted {
        println!(
            "load: {wanted} connections need {} descriptors, the limit is {}: running {conns}",
            wanted * 11 + 256,
            open_files_limit()
        );
    }
    let mut c = binary_config();
    c.limits.max_connections = conns + 16;
    c.limits.max_connections_per_ip = conns + 16;
    let server = Binary::start(&c);
    let addr = server.addr;
    let echo = tcp_echo().await;
    let baseline = server.rss_kib();
    // Every connection and stream is opened before the clock starts, so that all are held at
    // once.
    let mut muxes = Vec::with_capacity(conns);
    let mut streams = Vec::with_capacity(conns * 10);
    for _ in 0..conns {
        let mux = client(addr).await;
        for _ in 0..10 {
            streams.push(
                mux.new_stream(StreamType::Tcp, "127.0.0.1", echo)
                    .await
                    .expect("stream opens"),
            );
        }
        muxes.push(mux);
    }
    let held = muxes.len();
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, s)| tokio::spawn(echo_stream(s, i as u64 + 1, until, 4096)))
        .collect();
    let limit = Duration::from_secs(secs + 120);
    let mut bytes = 0u64;
    for t in tasks {
        let r = tokio::time::timeout(limit, t)
            .await
            .expect("bounded")
            .unwrap();
        bytes += r.expect("no stream lost a byte");
    }
    let peak = server.peak_rss_kib();
    assert!(server.rss_kib() > 0, "the server is still up");
    println!(
        "hardening-figure case=load connections_held={held} streams={} seconds={secs} bytes_verified={bytes} server_rss_baseline_kib={baseline} server_peak_rss_kib={peak}",
        held * 10
    );
}

/// The soft limit on open files of this process (the server inherits it).
fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(1024)
}

/// A target that sends forever and counts what it sent.
async fn firehose(sent: Arc<AtomicU64>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let sent = sent.clone();
            tokio::spawn(async move {
                let block = vec![0x42u8; 64 * 1024];
                while s.write_all(&block).await.is_ok() {
                    sent.fetch_add(block.len() as u64, Relaxed);
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_stops_reading() {
    let conns = 4u64;
    let per_conn = 32u64;
    let c = binary_config();
    let server = Binary::start(&c);
    let sent = Arc::new(AtomicU64::new(0));
    let port = firehose(sent.clone()).await;
    let baseline = server.rss_kib();
    // The bound, from the config: per stream the send queue toward the client plus one read
    // buffer from the target (forward::CHUNK); per connection the WebSocket's write buffer
    // and read buffer (one message); and 16 MiB for the runtime, allocator slack and logging.
    let l = &c.limits;
    let per_stream = (l.stream_send_buffer + 65_530) as u64;
    let per_connection = per_conn * per_stream + 2 * l.max_message_size as u64 + 64 * 1024;
    let bound_kib = baseline + (conns * per_connection) / 1024 + 16 * 1024;
    let mut clients = Vec::new();
    for _ in 0..conns {
        let mut ws = raw(server.addr).await;
        for id in 1..=per_conn as u32 {
            send(&mut ws, connect_packet(id, 0x01, port, b"127.0.0.1")).await;
        }
        clients.push(ws); // and never read from it again
    }
    let mut peak = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(server.rss_kib());
    }
    let sent_mib = sent.load(Relaxed) / (1024 * 1024);
    println!(
        "hardening-figure case=stop_reading streams={} target_sent_mib={sent_mib} server_rss_baseline_kib={baseline} server_peak_rss_kib={peak} bound_kib={bound_kib}",
        conns * per_conn
    );
    assert!(peak > 0, "the server is up");
    assert!(
        peak <= bound_kib,
        "server RSS {peak} KiB over the bound {bound_kib} KiB"
    );
    // What the targets sent beyond the bound sits in kernel socket buffers (up to several MiB
    // per socket on loopback), not in the server: only the RSS is asserted.
    // And the server still serves others.
    let echo = tcp_echo().await;
    let mux = client(server.addr).await;
    let mut s = mux
        .new_stream(StreamType::Tcp, "127.0.0.1", echo)
        .await
        .unwrap();
    assert_eq!(echo_roundtrip(&mut s, b"alive").await, b"alive");
    drop(clients);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_that_resets_mid_stream() {
    let server = start(local_config()).await;
    let echo = tcp_echo().await;
    // A target that sends 100 KiB and then resets the connection (linger 0 makes close an RST).
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rst_port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(&vec![1u8; 100 * 1024]).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            drop(s);
        }
    });
    let mux = client(addr(&server)).await;
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut good = Vec::new();
    for i in 0..9 {
        let s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        good.push(tokio::spawn(echo_stream(s, 100 + i, until, 8192)));
    }
    let mut resets = 0;
    for _ in 0..5 {
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", rst_port)
            .await
            .unwrap();
        assert_eq!(close_reason(&mut s).await, Some(CloseReason::Unexpected));
        resets += 1;
    }
    let mut bytes = 0;
    for t in good {
        bytes += t.await.unwrap().expect("other streams continue");
    }
    println!("hardening-figure case=target_reset resets_seen={resets} other_streams=9 bytes_verified={bytes}");
    assert!(server.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load() {
    let conns = (env_or("WISP_LOAD_CONNECTIONS", 200) / 4).max(10) as usize;
    let mut c = binary_config();
    c.limits.max_connections = conns + 16;
    c.limits.max_connections_per_ip = conns + 16;
    c.limits.shutdown_grace_ms = 2000;
    let mut server = Binary::start(&c);
    let echo = tcp_echo().await;
    let mut muxes = Vec::new();
    let mut tasks = Vec::new();
    // Writers never stop on their own: the shutdown must end them.
    let until = tokio::time::Instant::now() + Duration::from_secs(3600);
    for i in 0..conns {
        let mux = client(server.addr).await;
        for j in 0..10 {
            let s = mux
                .new_stream(StreamType::Tcp, "127.0.0.1", echo)
                .await
                .unwrap();
            tasks.push(tokio::spawn(sigterm_stream(
                s,
                (i * 10 + j) as u64 + 1,
                until,
            )));
        }
        muxes.push(mux);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let signalled = std::time::Instant::now();
    server.signal("TERM");
    let status = tokio::task::spawn_blocking(move || {
        let s = server.wait_exit(Duration::from_secs(10));
        (s, server)
    })
    .await
    .unwrap();
    let exited_after = signalled.elapsed();
    let (status, _server) = status;
    let status = status.expect("the process exited");
    assert!(status.success(), "exit status {status}");
    assert!(
        exited_after < Duration::from_millis(2000 + 1500),
        "exited within the grace period: {exited_after:?}"
    );
    let mut bytes = 0;
    let mut clean = 0;
    for t in tasks {
        let (b, reason) = tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("bounded")
            .unwrap();
        assert_eq!(reason, Some(CloseReason::Voluntary), "a clean close (0x02)");
        bytes += b;
        clean += 1;
    }
    println!(
        "hardening-figure case=sigterm connections={conns} streams_closed_cleanly={clean} bytes_verified_before_close={bytes} exit_ms={}",
        exited_after.as_millis()
    );
}

/// Writes and verifies until the stream ends; returns the bytes verified and its close reason.
/// Every byte that came back must be right; bytes in flight at the close may be lost.
async fn sigterm_stream(
    stream: wisp_core::stream::MuxStream<W>,
    seed: u64,
    until: tokio::time::Instant,
) -> (u64, Option<CloseReason>) {
    let (mut rx, mut tx) = stream.into_split();
    let writer = async move {
        let mut src = Source::new(seed);
        while tokio::time::Instant::now() < until {
            if tx.send(src.take(4096)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let reader = async {
        let mut v = Verifier::new(seed);
        loop {
            match rx.next().await {
                Some(Ok(b)) => v.check(&b),
                Some(Err(e)) => panic!("unclean end after {} bytes: {e}", v.bytes),
                None => return (v.bytes, rx.get_close_reason()),
            }
        }
    };
    let ((), r) = tokio::join!(writer, reader);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_fills_its_credit_toward_a_target_that_never_reads() {
    // The other direction: data from the client toward targets that never read. The mux queues
    // at most its connection cap (16 MiB in wisp-server) before it stops reading the WebSocket,
    // whatever the credit says; the client's sends then block. Memory is measured as RSS, which
    // also keeps what the allocator retained of the data that passed through to the kernel's
    // socket buffers (a few MiB per target socket), so the bound allows twice the queue.
    let streams = 8u32;
    let connection_cap = 16u64 << 20; // wisp-server's CONNECTION_RECEIVE_BUFFER
    let c = binary_config();
    let server = Binary::start(&c);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (hold_tx, mut hold_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let _ = hold_tx.send(s); // held open, never read
        }
    });
    let baseline = server.rss_kib();
    let message = c.limits.max_message_size.min(128 * 1024);
    let payload = vec![0x33u8; message - 5];
    let queue_bound = connection_cap + 2 * c.limits.max_message_size as u64;
    let bound_kib = baseline + 2 * queue_bound / 1024 + 16 * 1024;
    let mut ws = raw(server.addr).await;
    for id in 1..=streams {
        send(&mut ws, connect_packet(id, 0x01, port, b"127.0.0.1")).await;
    }
    let (mut tx, rx) = ws.split();
    let mut sent = 0u64;
    let mut paused = false;
    'credit: for _ in 0..c.wisp.buffer_size {
        for id in 1..=streams {
            let p = data_packet(id, &payload);
            let len = p.len() as u64;
            let r = tokio::time::timeout(
                Duration::from_secs(3),
                tx.send(tokio_websockets::Message::binary(p)),
            )
            .await;
            match r {
                Ok(Ok(())) => sent += len,
                Ok(Err(e)) => panic!("the connection failed: {e}"),
                Err(_) => {
                    paused = true;
                    break 'credit;
                }
            }
        }
    }
    let mut peak = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(server.rss_kib());
    }
    while hold_rx.try_recv().is_ok() {}
    println!(
        "hardening-figure case=credit_toward_stuck_target streams={streams} client_sent_mib={} server_paused_reading={paused} server_rss_baseline_kib={baseline} server_peak_rss_kib={peak} bound_kib={bound_kib}",
        sent >> 20
    );
    assert!(
        peak <= bound_kib,
        "server RSS {peak} KiB over the bound {bound_kib} KiB"
    );
    drop(rx);
}
