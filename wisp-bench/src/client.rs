//! Our native client (wisp-core `ClientMux` over tokio-websockets) as the benchmark's load.

use tokio::net::TcpStream;
use wisp_core::ws::{
    TokioWebsocketsRead, TokioWebsocketsTransport, TokioWebsocketsWrite, TransportExt,
};
use wisp_core::{ClientMux, MultiplexorActorFuture, MuxOptions, WispError, WispV2Handshake};

type Ws = TcpStream;
/// The client's write half.
pub type Tx = TokioWebsocketsWrite<Ws>;
/// The client's actor.
pub type Actor = MultiplexorActorFuture<TokioWebsocketsRead<Ws>, Tx>;

/// Connects and performs the handshake, offering Wisp v2 without extensions (so no stream-open
/// confirmation: CONNECT and the first DATA leave together, as in WispMark's client). The actor
/// is returned for the caller to spawn.
pub async fn connect(url: &str) -> Result<(ClientMux<Tx>, Actor), WispError> {
    let builder = tokio_websockets::ClientBuilder::new()
        .uri(url)
        .map_err(WispError::ws)?
        .add_header(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static("wisp-v2"),
        )
        .map_err(WispError::ws)?
        .config(tokio_websockets::Config::default().frame_size(64 * 1024))
        .limits(tokio_websockets::Limits::default().max_payload_len(Some(1 << 20)));
    // Nagle off, as every Wisp client should have it: otherwise a small packet written after
    // another waits for the peer's delayed ACK (40 ms on Linux).
    let uri: http::Uri = url.parse().map_err(|_| WispError::WsImplSocketClosed)?;
    let host = uri.host().unwrap_or("127.0.0.1").trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(80);
    let sock = TcpStream::connect((host, port))
        .await
        .map_err(|e| WispError::ws(tokio_websockets::Error::Io(e)))?;
    sock.set_nodelay(true)
        .map_err(|e| WispError::ws(tokio_websockets::Error::Io(e)))?;
    let (ws, _) = builder.connect_on(sock).await.map_err(WispError::ws)?;
    let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();
    let v2 = WispV2Handshake::new(Vec::new());
    // Server-to-client data has no credit in Wisp; the client closes a stream whose reader
    // falls this far behind (0x81). On a loaded two-core machine a reader can miss a few
    // milliseconds of CPU while the actor receives at a GB/s, so the bench allows more than a
    // browser-facing default would.
    let opts = MuxOptions {
        stream_receive_buffer: 64 << 20,
        connection_receive_buffer: 512 << 20,
        ..MuxOptions::default()
    };
    Ok(ClientMux::new_with_options(rx, tx, opts, Some(v2))
        .await?
        .with_no_required_extensions())
}
