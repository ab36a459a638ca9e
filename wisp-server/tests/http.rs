//! The HTTP side and the operator surface: prefix routing, plain pages, the static directory,
//! Origin checks, the metrics endpoint, the Unix socket, wsproxy, shutdown and the CLI.

mod common;

use bytes::Bytes;
use common::*;
use futures::{SinkExt, StreamExt};
use http::{HeaderName, HeaderValue};
use tokio_websockets::{ClientBuilder, Message};
use wisp_core::ws::{TokioWebsocketsTransport, TransportExt};
use wisp_core::{ClientMux, CloseReason, StreamType, WispV2Handshake};

#[tokio::test]
async fn prefix_with_and_without_slash_and_query() {
    bounded(async {
        let mut c = local_config();
        c.server.prefix = "/wisp/".into();
        let server = start(c).await;
        for path in ["/wisp", "/wisp/", "/wisp/?token=1", "/wisp?x=y"] {
            assert!(ws(addr(&server), path, None).await.is_ok(), "{path}");
        }
        for path in ["/", "/wispy", "/other/"] {
            assert!(ws(addr(&server), path, None).await.is_err(), "{path}");
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn subprotocol_is_echoed() {
    bounded(async {
        let server = start(local_config()).await;
        let tcp = tokio::net::TcpStream::connect(addr(&server)).await.unwrap();
        let (_ws, resp) = ClientBuilder::new()
            .uri(&format!("ws://{}/", addr(&server)))
            .unwrap()
            .add_header(
                HeaderName::from_static("sec-websocket-protocol"),
                HeaderValue::from_static("wisp-v2"),
            )
            .unwrap()
            .connect_on(tcp)
            .await
            .unwrap();
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap()),
            Some("wisp-v2")
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn plain_get_gets_a_page() {
    bounded(async {
        let server = start(local_config()).await;
        let resp = raw_http(addr(&server), "GET /anything?x HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(resp.contains("Wisp server"));
        let resp = raw_http(
            addr(&server),
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn static_directory_and_traversal() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let www = dir.path().join("www");
        std::fs::create_dir(&www).unwrap();
        std::fs::write(www.join("index.html"), "<h1>demo</h1>").unwrap();
        std::fs::write(www.join("app.js"), "console.log(1)").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "TOPSECRET").unwrap();
        let mut c = local_config();
        c.server.static_dir = Some(www);
        let server = start(c).await;
        let get = |p: &str| format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n");
        let resp = raw_http(addr(&server), &get("/")).await;
        assert!(
            resp.starts_with("HTTP/1.1 200") && resp.contains("<h1>demo</h1>"),
            "{resp}"
        );
        assert!(resp.contains("text/html"));
        let resp = raw_http(addr(&server), &get("/app.js?v=2")).await;
        assert!(
            resp.contains("console.log(1)") && resp.contains("text/javascript"),
            "{resp}"
        );
        let resp = raw_http(addr(&server), &get("/missing.js")).await;
        assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
        for evil in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/a/../../secret.txt",
            "/..%2fsecret.txt",
        ] {
            let resp = raw_http(addr(&server), &get(evil)).await;
            assert!(!resp.contains("TOPSECRET"), "{evil}: {resp}");
            assert!(!resp.starts_with("HTTP/1.1 200"), "{evil}: {resp}");
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn origin_allow_list() {
    bounded(async {
        let mut c = local_config();
        c.server.allowed_origins = vec!["https://good.example".into()];
        let server = start(c).await;
        let with_origin = |o: &'static str| {
            let a = addr(&server);
            async move {
                let tcp = tokio::net::TcpStream::connect(a).await.unwrap();
                ClientBuilder::new()
                    .uri(&format!("ws://{a}/"))
                    .unwrap()
                    .add_header(
                        HeaderName::from_static("origin"),
                        HeaderValue::from_static(o),
                    )
                    .unwrap()
                    .connect_on(tcp)
                    .await
            }
        };
        assert!(with_origin("https://good.example").await.is_ok());
        assert!(with_origin("https://evil.example").await.is_err());
        // Non-browser clients send no Origin and are not affected.
        assert!(ws(addr(&server), "/", None).await.is_ok());
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn metrics_endpoint_counts() {
    bounded(async {
        let mut c = local_config();
        c.server.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
        let server = start(c).await;
        let echo = tcp_echo().await;
        let mux = client(addr(&server)).await;
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"count me").await, b"count me");
        let port = closed_port().await;
        assert_eq!(
            outcome(&mux, StreamType::Tcp, "127.0.0.1", port).await,
            CloseReason::ServerStreamConnectionRefused
        );
        let text = raw_http(
            server.metrics_addr().unwrap(),
            "GET /metrics HTTP/1.1\r\n\r\n",
        )
        .await;
        assert!(text.contains("wisp_connections_total 1"), "{text}");
        assert!(
            text.contains("wisp_streams_total{type=\"tcp\",reason=\"0x44\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("wisp_bytes_total{direction=\"to_client\"} 8"),
            "{text}"
        );
        server.shutdown().await;
    })
    .await;
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_serves_wisp() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wisp.sock");
        let mut c = local_config();
        c.server.bind = None;
        c.server.unix_socket = Some(path.clone());
        let server = start(c).await;
        let echo = tcp_echo().await;
        let sock = tokio::net::UnixStream::connect(&path).await.unwrap();
        let (ws, _) = ClientBuilder::new()
            .uri("ws://localhost/")
            .unwrap()
            .connect_on(sock)
            .await
            .unwrap();
        let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();
        let (mux, actor) = ClientMux::new(rx, tx, Some(WispV2Handshake::new(client_exts())))
            .await
            .unwrap()
            .with_no_required_extensions();
        tokio::spawn(actor);
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        s.send(Bytes::from_static(b"over unix")).await.unwrap();
        assert_eq!(&s.next().await.unwrap().unwrap()[..], b"over unix");
        server.shutdown().await;
        assert!(!path.exists(), "the socket file is removed at shutdown");
    })
    .await;
}

#[tokio::test]
async fn wsproxy_when_enabled() {
    bounded(async {
        let echo = tcp_echo().await;
        let mut c = local_config();
        c.server.prefix = "/ws/".into();
        c.server.wsproxy = true;
        let server = start(c).await;
        let mut w = ws(addr(&server), &format!("/ws/127.0.0.1:{echo}"), None)
            .await
            .unwrap();
        w.send(Message::binary(Bytes::from_static(b"legacy bytes")))
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.len() < 12 {
            got.extend_from_slice(&w.next().await.unwrap().unwrap().into_payload());
        }
        assert_eq!(got, b"legacy bytes");
        // The policy applies to wsproxy too.
        let mut blocked = ws(addr(&server), "/ws/10.0.0.1:80", None).await.unwrap();
        assert!(drain(&mut blocked).await.is_empty());
        server.shutdown().await;

        // Off by default.
        let mut c = local_config();
        c.server.prefix = "/ws/".into();
        let server = start(c).await;
        assert!(ws(addr(&server), &format!("/ws/127.0.0.1:{echo}"), None)
            .await
            .is_err());
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn shutdown_closes_connections_with_close_on_stream_0() {
    bounded(async {
        let mut c = local_config();
        c.wisp.v2 = false;
        let server = start(c).await;
        let echo = tcp_echo().await;
        let mut raw = ws(addr(&server), "/", None).await.unwrap();
        // Open a stream so there is something to close.
        let mut connect = vec![0x01, 1, 0, 0, 0, 0x01];
        connect.extend_from_slice(&echo.to_le_bytes());
        connect.extend_from_slice(b"127.0.0.1");
        raw.send(Message::binary(Bytes::from(connect)))
            .await
            .unwrap();
        raw.send(Message::binary(Bytes::from_static(
            b"\x02\x01\x00\x00\x00hi",
        )))
        .await
        .unwrap();
        // Wait for the echo, so the stream is surely open.
        loop {
            let m = raw.next().await.unwrap().unwrap();
            if m.as_payload().first() == Some(&0x02) {
                break;
            }
        }
        let addr = addr(&server);
        let started = std::time::Instant::now();
        assert!(server.shutdown().await);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let got = drain(&mut raw).await;
        assert_eq!(&got.last().unwrap()[..], &[0x04, 0, 0, 0, 0, 0x02]);
        // Nothing listens any more.
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    })
    .await;
}

#[test]
fn cli_help_print_default_and_bad_config() {
    let exe = env!("CARGO_BIN_EXE_wisp-server");
    let help = std::process::Command::new(exe)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in [
        "--config",
        "--print-default-config",
        "--bind",
        "--unix-socket",
        "--allow-loopback",
        "--max-streams",
        "--metrics-bind",
        "--wsproxy",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    let out = std::process::Command::new(exe)
        .arg("--print-default-config")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    wisp_server::Config::from_toml(&text).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[limits]\nmax_connections_per_ip = 0\n").unwrap();
    let out = std::process::Command::new(exe)
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("limits.max_connections_per_ip"), "{err}");
}
