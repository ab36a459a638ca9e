//! Shared test harness: the real server on 127.0.0.1 port 0, echo targets on loopback, and a
//! real tokio-websockets client driving `wisp_core::ClientMux`.

#![allow(dead_code, missing_docs)]

pub mod binary;
pub mod bystander;
pub mod raw;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_websockets::{ClientBuilder, WebSocketStream};
use wisp_core::extensions::confirmation::StreamConfirmationProtocolExtensionBuilder;
use wisp_core::extensions::motd::MotdProtocolExtensionBuilder;
use wisp_core::extensions::udp::UdpProtocolExtensionBuilder;
use wisp_core::extensions::AnyProtocolExtensionBuilder;
use wisp_core::stream::MuxStream;
use wisp_core::ws::{TokioWebsocketsTransport, TokioWebsocketsWrite, TransportExt};
use wisp_core::{ClientMux, CloseReason, StreamType, WispError, WispV2Handshake};
use wisp_server::{Config, Server};

pub type Ws = WebSocketStream<TcpStream>;
pub type W = TokioWebsocketsWrite<TcpStream>;
pub type Mux = ClientMux<W>;

/// Every test body runs under this bound.
pub const LIMIT: Duration = Duration::from_secs(60);

pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test timed out")
}

/// A config bound to 127.0.0.1:0 that may reach loopback targets (where the echo servers are).
pub fn local_config() -> Config {
    let mut c = Config::default();
    c.server.bind = Some("127.0.0.1:0".parse().unwrap());
    c.policy.allow_loopback = true;
    c.limits.shutdown_grace_ms = 1000;
    c
}

pub async fn start(config: Config) -> Server {
    Server::start(config).await.expect("server starts")
}

pub fn addr(server: &Server) -> SocketAddr {
    server.local_addr().unwrap()
}

/// A TCP echo server on 127.0.0.1; returns its port.
pub async fn tcp_echo() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// A UDP echo server on 127.0.0.1; returns its port.
pub async fn udp_echo() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = s.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let _ = s.send_to(&buf[..n], from).await;
        }
    });
    port
}

/// A port on 127.0.0.1 where nothing listens.
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Opens a WebSocket to the server, offering `protocol` if given.
pub async fn ws(
    addr: SocketAddr,
    path: &str,
    protocol: Option<&str>,
) -> Result<Ws, tokio_websockets::Error> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut b = ClientBuilder::new()
        .uri(&format!("ws://{addr}{path}"))
        .unwrap();
    if let Some(p) = protocol {
        b = b
            .add_header(
                HeaderName::from_static("sec-websocket-protocol"),
                HeaderValue::from_str(p).unwrap(),
            )
            .unwrap();
    }
    b.connect_on(tcp).await.map(|(ws, _)| ws)
}

pub fn client_exts() -> Vec<AnyProtocolExtensionBuilder> {
    vec![
        AnyProtocolExtensionBuilder::new(UdpProtocolExtensionBuilder),
        AnyProtocolExtensionBuilder::new(MotdProtocolExtensionBuilder::Client),
        AnyProtocolExtensionBuilder::new(StreamConfirmationProtocolExtensionBuilder),
    ]
}

/// A Wisp client over a fresh WebSocket; v2 with the subprotocol when `exts` is given.
pub async fn client_with(
    addr: SocketAddr,
    exts: Option<Vec<AnyProtocolExtensionBuilder>>,
    subprotocol: bool,
) -> Result<Mux, WispError> {
    let ws = ws(addr, "/", subprotocol.then_some("wisp-v2"))
        .await
        .map_err(WispError::ws)?;
    let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();
    let v2 = exts.map(WispV2Handshake::new);
    let (mux, actor) = ClientMux::new(rx, tx, v2)
        .await?
        .with_no_required_extensions();
    tokio::spawn(actor);
    Ok(mux)
}

/// A v2 client with UDP, MOTD and confirmation, offering the subprotocol.
pub async fn client(addr: SocketAddr) -> Mux {
    client_with(addr, Some(client_exts()), true)
        .await
        .expect("client connects")
}

/// Sends `data` and reads the same number of bytes back.
pub async fn echo_roundtrip(stream: &mut MuxStream<W>, data: &[u8]) -> Vec<u8> {
    stream.send(Bytes::copy_from_slice(data)).await.unwrap();
    let mut got = Vec::new();
    while got.len() < data.len() {
        match stream.next().await {
            Some(Ok(b)) => got.extend_from_slice(&b),
            other => panic!(
                "stream ended early: {other:?}, reason {:?}",
                stream.get_close_reason()
            ),
        }
    }
    got
}

/// Waits for the stream to end and returns its close reason.
pub async fn close_reason(stream: &mut MuxStream<W>) -> Option<CloseReason> {
    while let Some(item) = stream.next().await {
        if item.is_err() {
            break;
        }
    }
    stream.get_close_reason()
}

/// Opens a stream and returns how it was refused or closed: with confirmation the refusal is
/// the error; otherwise the stream's close reason.
pub async fn outcome(mux: &Mux, kind: StreamType, host: &str, port: u16) -> CloseReason {
    match mux.new_stream(kind, host, port).await {
        Err(WispError::StreamRefused(r)) => r,
        Err(e) => panic!("unexpected error {e}"),
        Ok(mut s) => close_reason(&mut s).await.expect("a close reason"),
    }
}

/// Sends a raw HTTP request and returns the whole response text.
pub async fn raw_http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads messages until the WebSocket ends; returns the binary messages seen.
pub async fn drain(ws: &mut Ws) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Some(Ok(m)) = ws.next().await {
        if m.is_binary() {
            out.push(m.into_payload().into());
        }
    }
    out
}
