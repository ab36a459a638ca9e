//! The Rust wisp-mux client (crates.io `wisp-mux` 5.1.0, over fastwebsockets, the adapter it is
//! written for) against our wisp-server: TCP echo byte-exact in v1 and in v2, UDP in v2.
//! wisp-mux sends every DATA packet as a fragmented WebSocket message (the 5-byte header, then
//! the payload in a continuation frame), which our server must reassemble. wisp-mux 5.1 predates
//! draft 6: it offers no subprotocol and expects CONTINUE first, then INFO (our legacy order).

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use fastwebsockets::{FragmentCollectorRead, Role, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wisp_interop::{pattern, tcp_echo, udp_echo, Record};
use wisp_mux::extensions::udp::UdpProtocolExtensionBuilder;
use wisp_mux::extensions::ProtocolExtensionBuilder;
use wisp_mux::{ClientMux, StreamType};
use wisp_server::{Config, Server};

const MUX: &str = "wisp-mux";
const MUX_VERSION: &str = "5.1.0";
const OURS: &str = "wisp-server (ours)";

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .expect("timed out")
}

async fn our_server() -> Server {
    let mut c = Config::default();
    c.server.bind = Some("127.0.0.1:0".parse().unwrap());
    c.policy.allow_loopback = true;
    c.limits.shutdown_grace_ms = 1000;
    Server::start(c).await.expect("server starts")
}

/// The WebSocket opening handshake by hand (no subprotocol, as wisp-mux 5.1 clients do), then
/// fastwebsockets on the upgraded stream.
async fn websocket(server: &Server) -> WebSocket<TcpStream> {
    let addr = server.local_addr().unwrap();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode(pattern(99, 16));
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    // Read the response head byte by byte so that no Wisp bytes are consumed with it.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let accept = {
        let mut h = sha1_smol::Sha1::new();
        h.update(key.as_bytes());
        h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
        base64::engine::general_purpose::STANDARD.encode(h.digest().bytes())
    };
    assert!(head.contains(&accept), "bad accept key: {head}");
    WebSocket::after_handshake(tcp, Role::Client)
}

async fn mux(server: &Server, v2: bool) -> ClientMux {
    let ws = websocket(server).await;
    let (rx, tx) = ws.split(tokio::io::split);
    let rx = FragmentCollectorRead::new(rx);
    let builders: Vec<Box<dyn ProtocolExtensionBuilder + Send + Sync>> =
        vec![Box::new(UdpProtocolExtensionBuilder)];
    let (mux, fut) = ClientMux::create(rx, tx, v2.then_some(&builders[..]))
        .await
        .expect("wisp-mux handshake")
        .with_no_required_extensions();
    tokio::spawn(fut);
    mux
}

/// Three concurrent streams each echo 2 MiB in 40 KiB writes, byte-exact.
async fn tcp_echo_3x2mib(mux: &ClientMux) {
    let target = tcp_echo().await;
    let mut tasks = Vec::new();
    for s in 0..3u32 {
        let stream = mux
            .client_new_stream(StreamType::Tcp, "127.0.0.1".into(), target)
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let data = Bytes::from(pattern(s + 100, 2 * 1024 * 1024));
            let (rx, tx) = stream.into_split();
            let writer = tokio::spawn({
                let data = data.clone();
                async move {
                    for chunk in data.chunks(40 * 1024) {
                        tx.write(chunk).await.unwrap();
                    }
                    tx
                }
            });
            let mut got = Vec::with_capacity(data.len());
            while got.len() < data.len() {
                match rx.read().await {
                    Some(chunk) => got.extend_from_slice(&chunk),
                    None => panic!(
                        "stream ended after {} bytes ({:?})",
                        got.len(),
                        rx.get_close_reason()
                    ),
                }
            }
            assert!(got == data[..], "echo differs");
            drop(writer.await.unwrap());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wisp_mux_v1_tcp_echo() {
    let _r = Record {
        client: MUX,
        client_version: MUX_VERSION,
        server: OURS,
        server_version: "workspace",
        feature: "v1 tcp echo (fragmented DATA messages)",
        test: "wisp_mux_v1_tcp_echo",
        peer_bug: None,
        detail: "v1; 3 streams x 2 MiB byte-exact".into(),
    };
    bounded(async {
        let server = our_server().await;
        let mux = mux(&server, false).await;
        assert!(mux.downgraded);
        tcp_echo_3x2mib(&mux).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wisp_mux_v2_tcp_echo() {
    let _r = Record {
        client: MUX,
        client_version: MUX_VERSION,
        server: OURS,
        server_version: "workspace",
        feature: "v2 (legacy order, no fallback) tcp echo",
        test: "wisp_mux_v2_tcp_echo",
        peer_bug: None,
        detail: "v2 with UDP agreed; 3 streams x 2 MiB byte-exact".into(),
    };
    bounded(async {
        let server = our_server().await;
        let mux = mux(&server, true).await;
        assert!(!mux.downgraded, "wisp-mux fell back to v1");
        assert!(mux.supported_extension_ids.contains(&0x01), "no UDP");
        tcp_echo_3x2mib(&mux).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wisp_mux_v2_udp_echo() {
    let _r = Record {
        client: MUX,
        client_version: MUX_VERSION,
        server: OURS,
        server_version: "workspace",
        feature: "v2 udp echo",
        test: "wisp_mux_v2_udp_echo",
        peer_bug: None,
        detail: "4 datagrams (1..8000 bytes) byte-exact".into(),
    };
    bounded(async {
        let server = our_server().await;
        let mux = mux(&server, true).await;
        let target = udp_echo().await;
        let udp = mux
            .client_new_stream(StreamType::Udp, "127.0.0.1".into(), target)
            .await
            .unwrap();
        for n in [1usize, 512, 1400, 8000] {
            let d = pattern(n as u32, n);
            udp.write(&d[..]).await.unwrap();
            let got = tokio::time::timeout(Duration::from_secs(5), udp.read())
                .await
                .expect("no answer")
                .expect("stream ended");
            assert_eq!(&got[..], &d[..], "{n}-byte datagram");
        }
    })
    .await;
}
