//! Every limit reached and answered: connections in total and per IP (with and without a
//! trusted proxy, IPv6 per /64), handshake timeout, idle timeouts, message size.

mod common;

use bytes::Bytes;
use common::*;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wisp_core::{CloseReason, StreamType};

fn upgrade_request(extra: &str) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Sends an upgrade request and returns the status line; keeps the socket open.
async fn upgrade_status(addr: std::net::SocketAddr, extra: &str) -> (String, TcpStream) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(upgrade_request(extra).as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        if s.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (String::from_utf8_lossy(&head).trim().to_owned(), s)
}

#[tokio::test]
async fn total_connection_limit_answers_503() {
    bounded(async {
        let mut c = local_config();
        c.limits.max_connections = 1;
        let server = start(c).await;
        let echo = tcp_echo().await;
        let mux = client(addr(&server)).await;
        let (status, _) = upgrade_status(addr(&server), "").await;
        assert!(status.contains("503"), "{status}");
        // The first connection is unaffected.
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"first").await, b"first");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn per_ip_limit_answers_429_and_frees_on_close() {
    bounded(async {
        let mut c = local_config();
        c.limits.max_connections_per_ip = 1;
        let server = start(c).await;
        let (first, first_sock) = upgrade_status(addr(&server), "").await;
        assert!(first.contains("101"), "{first}");
        let (second, _) = upgrade_status(addr(&server), "").await;
        assert!(second.contains("429"), "{second}");
        // A forged X-Forwarded-For from an untrusted peer changes nothing.
        let (forged, _) = upgrade_status(addr(&server), "X-Forwarded-For: 203.0.113.7\r\n").await;
        assert!(forged.contains("429"), "{forged}");
        drop(first_sock);
        // The slot comes back once the server has noticed; wait for that event, not a time.
        loop {
            let (again, sock) = upgrade_status(addr(&server), "").await;
            if again.contains("101") {
                drop(sock);
                break;
            }
            assert!(again.contains("429"), "{again}");
            tokio::task::yield_now().await;
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn forwarded_ip_counts_behind_a_trusted_proxy() {
    bounded(async {
        let mut c = local_config();
        c.limits.max_connections_per_ip = 1;
        c.server.trusted_proxies = vec!["127.0.0.1".into()];
        let server = start(c).await;
        let (a, _a) = upgrade_status(addr(&server), "X-Forwarded-For: 203.0.113.1\r\n").await;
        let (b, _b) = upgrade_status(addr(&server), "X-Forwarded-For: 203.0.113.2\r\n").await;
        let (c2, _c) = upgrade_status(addr(&server), "X-Real-IP: 203.0.113.3\r\n").await;
        let (d, _d) =
            upgrade_status(addr(&server), "X-Forwarded-For: 6.6.6.6, 203.0.113.1\r\n").await;
        assert!(
            a.contains("101") && b.contains("101") && c2.contains("101"),
            "{a} {b} {c2}"
        );
        assert!(
            d.contains("429"),
            "the rightmost untrusted address is the client: {d}"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn ipv6_clients_are_limited_per_64_behind_a_trusted_proxy() {
    bounded(async {
        let mut c = local_config();
        c.limits.max_connections_per_ip = 2;
        c.server.trusted_proxies = vec!["127.0.0.1".into()];
        let server = start(c).await;
        let from = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
        let (a, _a) = upgrade_status(addr(&server), &from("2001:db8:1:2::1")).await;
        let (b, _b) = upgrade_status(addr(&server), &from("2001:db8:1:2::2")).await;
        assert!(a.contains("101") && b.contains("101"), "{a} {b}");
        // A third address of the same /64 is the same client.
        let (c3, _c) = upgrade_status(addr(&server), &from("2001:db8:1:2:ffff::9")).await;
        assert!(c3.contains("429"), "a third address of the /64: {c3}");
        // Another /64 is another client.
        let (d, _d) = upgrade_status(addr(&server), &from("2001:db8:1:3::1")).await;
        assert!(d.contains("101"), "another /64: {d}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn silent_client_is_dropped_at_the_handshake_timeout() {
    bounded(async {
        let mut c = local_config();
        c.limits.handshake_timeout_ms = 300;
        let server = start(c).await;
        let echo = tcp_echo().await;
        // Says nothing at all.
        let mut silent = TcpStream::connect(addr(&server)).await.unwrap();
        // Half a request head.
        let mut partial = TcpStream::connect(addr(&server)).await.unwrap();
        partial
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        // Upgrades with the subprotocol and never sends its INFO.
        let mut ws_silent = ws(addr(&server), "/", Some("wisp-v2")).await.unwrap();
        // Meanwhile another client works.
        let mux = client(addr(&server)).await;
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"alive").await, b"alive");
        let mut buf = Vec::new();
        assert_eq!(silent.read_to_end(&mut buf).await.unwrap(), 0);
        let _ = partial.read_to_end(&mut buf).await;
        let got = drain(&mut ws_silent).await;
        assert_eq!(got.len(), 1, "only the server's INFO, then the end");
        assert_eq!(got[0][0], 0x05);
        server.shutdown().await;
    })
    .await;
}

/// A v1 client that opens its WebSocket early and says nothing until it needs a stream (as
/// wisp-js and libcurl.js do) is not a slow handshake: it keeps its connection.
#[tokio::test]
async fn quiet_v1_client_outlives_the_handshake_timeout() {
    bounded(async {
        let mut c = local_config();
        c.limits.handshake_timeout_ms = 200;
        let server = start(c).await;
        let echo = tcp_echo().await;
        let mux = client_with(addr(&server), None, false).await.unwrap();
        assert_eq!(mux.get_protocol_version().major, 1);
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"late").await, b"late");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn idle_stream_is_closed() {
    bounded(async {
        let mut c = local_config();
        c.limits.idle_timeout_ms = 300;
        let server = start(c).await;
        let echo = tcp_echo().await;
        let mux = client(addr(&server)).await;
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"once").await, b"once");
        let started = std::time::Instant::now();
        assert_eq!(close_reason(&mut s).await, Some(CloseReason::Voluntary));
        assert!(started.elapsed() >= std::time::Duration::from_millis(250));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn idle_connection_is_closed_with_close_on_stream_0() {
    bounded(async {
        let mut c = local_config();
        c.limits.idle_timeout_ms = 300;
        c.wisp.v2 = false;
        let server = start(c).await;
        let mut raw = ws(addr(&server), "/", None).await.unwrap();
        let got = drain(&mut raw).await;
        assert_eq!(got.first().map(|p| p[0]), Some(0x03), "CONTINUE first");
        assert_eq!(&got.last().unwrap()[..], &[0x04, 0, 0, 0, 0, 0x02]);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn message_over_the_limit_ends_only_that_connection() {
    bounded(async {
        let mut c = local_config();
        c.limits.max_message_size = 4096;
        let server = start(c).await;
        let echo = tcp_echo().await;
        let mux = client(addr(&server)).await;
        let mut good = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        let mut raw = ws(addr(&server), "/", None).await.unwrap();
        let mut big = vec![0x02, 1, 0, 0, 0];
        big.resize(10_000, 0x41);
        raw.send(tokio_websockets::Message::binary(Bytes::from(big)))
            .await
            .unwrap();
        while let Some(Ok(_)) = raw.next().await {}
        // The other connection, sending packets under the limit, goes on.
        let data = vec![7u8; 3000];
        assert_eq!(echo_roundtrip(&mut good, &data).await, data);
        server.shutdown().await;
    })
    .await;
}

/// `--check-config` states the worst-case buffer memory of a configuration, so an operator can
/// size the limits to the machine before starting.
#[test]
fn check_config_prints_the_memory_bound() {
    let dir = std::env::temp_dir().join(format!("wisp-check-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("small.toml");
    std::fs::write(
        &path,
        "[limits]\nmax_connections = 256\nstream_send_buffer = 131072\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wisp-server"))
        .arg("--check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("43.3 MiB per connection, 10.8 GiB for limits.max_connections = 256"),
        "{text}"
    );
}
