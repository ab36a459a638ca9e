//! Hostile volume: a stream opened and closed 100,000 times, 10,000 streams on one connection
//! against the limit, and slowloris on the HTTP upgrade (under and over the connection limit).
//! The shared harness checks the bystander, a newcomer and that every slot is given back.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::bystander::{eventually, hostile_case, proc_status_kib};
use common::raw::*;
use common::*;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_websockets::Message;

fn name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("hostile")
        .to_owned()
}

#[tokio::test]
async fn stream_opened_and_closed_100000_times() {
    hostile_case(&name(), local_config(), |env| async move {
        let mut ws = raw(env.addr).await;
        // A closed port: each stream really is accepted and connected (refused at once), with
        // no TIME_WAIT left behind.
        let port = closed_port().await;
        let marker = u32::MAX;
        still_serves(&mut ws, marker, env.echo).await;
        let rss_before = proc_status_kib("self", "VmRSS:");
        let n: u32 = 100_000;
        // Batches of 100 CONNECT + CLOSE pairs, each followed by an echo on the marker stream:
        // the server handles messages in order and sends refusals first, so when the echo is
        // back every answer to the batch is in. Throttled opens (0x49: the streams of the last
        // batch are still ending) are tried again, so that all 100,000 are really opened.
        let (mut next_id, mut opened, mut throttled) = (1u32, 0u32, 0u32);
        let mut retry: Vec<u32> = Vec::new();
        while opened < n {
            let mut batch = std::mem::take(&mut retry);
            while batch.len() < 100 && opened + (batch.len() as u32) < n {
                batch.push(next_id);
                next_id += 1;
            }
            for &id in &batch {
                ws.feed(Message::binary(connect_packet(id, 0x01, port, b"127.0.0.1")))
                    .await
                    .unwrap();
                ws.feed(Message::binary(close_packet(id, 0x02))).await.unwrap();
            }
            ws.send(Message::binary(data_packet(marker, b"sync"))).await.unwrap();
            let mut refused = Vec::new();
            loop {
                let p = next_packet(&mut ws).await.expect("connection alive");
                let id = u32::from_le_bytes([p[1], p[2], p[3], p[4]]);
                match (p[0], p.get(5)) {
                    (0x02, _) if id == marker => break,
                    (0x04, Some(0x49)) => refused.push(id),
                    (0x03, _) if id == marker => {} // credit for the marker stream
                    _ => panic!("unexpected answer {p:?}"),
                }
            }
            throttled += refused.len() as u32;
            opened += (batch.len() - refused.len()) as u32;
            retry = refused;
        }
        assert_eq!(next_id - 1, n);
        let rss_grown = proc_status_kib("self", "VmRSS:").saturating_sub(rss_before);
        let metrics = env.server.metrics();
        // The bystander's stream and the marker remain; the 100,000 must be gone.
        assert!(
            eventually(|| metrics.streams_open.load(std::sync::atomic::Ordering::Relaxed) <= 2)
                .await
        );
        still_serves(&mut ws, 1, env.echo).await;
        println!(
            "100000 open/close: {opened} opened and closed, {throttled} retried after 0x49, RSS grew {rss_grown} KiB"
        );
        assert!(
            rss_grown < 64 * 1024,
            "memory grew with streams that ended: {rss_grown} KiB"
        );
    })
    .await;
}

#[tokio::test]
async fn ten_thousand_streams_against_the_limit() {
    hostile_case(&name(), local_config(), |env| async move {
        let limit = 128u32; // limits.max_streams_per_connection by default
        let n = 10_000u32;
        let ws = raw(env.addr).await;
        let (mut tx, mut rx) = ws.split();
        let writer = async {
            for id in 1..=n {
                tx.feed(Message::binary(connect_packet(
                    id,
                    0x01,
                    env.echo,
                    b"127.0.0.1",
                )))
                .await
                .unwrap();
            }
            tx.flush().await.unwrap();
            tx
        };
        let reader = async {
            let mut refused = BTreeSet::new();
            while refused.len() < (n - limit) as usize {
                let m = rx.next().await.expect("connection alive").unwrap();
                let p: bytes::Bytes = m.into_payload().into();
                if p[0] == 0x04 {
                    assert_eq!(p.get(5), Some(&0x49), "refused as throttled: {p:?}");
                    refused.insert(u32::from_le_bytes([p[1], p[2], p[3], p[4]]));
                }
            }
            refused
        };
        let (tx, refused) = tokio::join!(writer, reader);
        let mut ws = tx.reunite(rx).unwrap();
        // The first 128 were accepted, every later one refused with 0x49.
        assert_eq!(refused, (limit + 1..=n).collect::<BTreeSet<_>>());
        // And the 128 all work.
        for id in 1..=limit {
            send(&mut ws, data_packet(id, &id.to_le_bytes())).await;
        }
        let mut echoed = BTreeSet::new();
        while echoed.len() < limit as usize {
            let p = next_packet(&mut ws).await.expect("echoes");
            assert_eq!(p[0], 0x02, "{p:?}");
            assert_eq!(&p[1..5], &p[5..9], "each stream echoes its own ID");
            echoed.insert(u32::from_le_bytes([p[1], p[2], p[3], p[4]]));
        }
        println!(
            "10000 streams: {limit} accepted, {} refused with 0x49",
            refused.len()
        );
    })
    .await;
}

/// Sends an HTTP request head one byte every 100 ms, never finishing it; returns what the
/// server sent and how long it kept the socket.
async fn slowloris(addr: std::net::SocketAddr) -> (String, Duration) {
    let started = tokio::time::Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut got = Vec::new();
    for &b in head.iter().cycle().take(10_000) {
        if s.write_all(&[b]).await.is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never cut off");
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn slowloris_on_the_upgrade() {
    let mut c = local_config();
    c.limits.handshake_timeout_ms = 1000;
    hostile_case(&name(), c, |env| async move {
        let tasks: Vec<_> = (0..40).map(|_| tokio::spawn(slowloris(env.addr))).collect();
        let mut longest = Duration::ZERO;
        for t in tasks {
            let (got, held) = t.await.unwrap();
            assert!(!got.contains("101"), "never upgraded: {got}");
            longest = longest.max(held);
        }
        // Cut off at the handshake timeout (1 s), not when the client gives up.
        assert!(longest < Duration::from_secs(5), "held {longest:?}");
        println!("slowloris: 40 sockets cut off, the longest after {longest:?}");
    })
    .await;
}

#[tokio::test]
async fn slowloris_over_the_connection_limit() {
    let mut c = local_config();
    c.limits.handshake_timeout_ms = 1000;
    c.limits.max_connections = 8;
    c.limits.max_connections_per_ip = 64;
    hostile_case(&name(), c, |env| async move {
        // The bystander holds one slot; 7 slow clients take the rest; 13 more get 503 at once.
        let mut slow = Vec::new();
        for _ in 0..7 {
            slow.push(tokio::spawn(slowloris(env.addr)));
        }
        assert!(eventually(|| env.server.connection_count() == 8).await);
        let mut refused = 0;
        for _ in 0..13 {
            let resp = raw_http(env.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
            assert!(resp.starts_with("HTTP/1.1 503"), "{resp}");
            refused += 1;
        }
        for t in slow {
            let (got, _) = t.await.unwrap();
            assert!(got.is_empty(), "the slow ones just time out: {got}");
        }
        println!("slowloris over the limit: 7 held until the timeout, {refused} refused with 503");
    })
    .await;
}

#[tokio::test]
async fn oversized_head_trickled() {
    let mut c = local_config();
    c.limits.max_request_head = 4096;
    hostile_case(&name(), c, |env| async move {
        // A head that never ends but grows past the limit: 431, not a wait for the timeout.
        let mut s = TcpStream::connect(env.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let line = format!("X-Pad: {}\r\n", "p".repeat(500));
        let mut resp = Vec::new();
        for _ in 0..20 {
            if s.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut resp)).await;
        let resp = String::from_utf8_lossy(&resp);
        assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");
    })
    .await;
}
