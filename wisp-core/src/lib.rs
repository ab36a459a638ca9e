//! # wisp-core
//!
//! The Wisp protocol without sockets: the packet codec, the v1 and v2 handshakes, the five
//! protocol extensions, flow control, and a multiplexer for each side. It runs on any executor
//! and compiles for `wasm32-unknown-unknown`; time and randomness come from the caller.
//!
//! Wisp carries many TCP and UDP streams over one WebSocket. The client opens streams with
//! CONNECT, both sides send DATA, the server grants credit with CONTINUE, and either side ends
//! a stream with CLOSE (or the whole connection with CLOSE on stream 0). See the specifications
//! of Wisp 1.2 and 2.0 (draft 6).
//!
//! ## Quick start: a server
//!
//! ```no_run
//! # #[cfg(feature = "tokio-websockets")]
//! # async fn serve(ws: tokio_websockets::WebSocketStream<tokio::net::TcpStream>) -> Result<(), wisp_core::WispError> {
//! use futures::StreamExt;
//! use wisp_core::ws::{TokioWebsocketsTransport, TransportExt};
//! use wisp_core::ServerMux;
//!
//! let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();
//! let (mux, actor) = ServerMux::new(rx, tx, 128, None).await?.with_no_required_extensions();
//! tokio::spawn(actor);
//! while let Some((connect, mut stream)) = mux.wait_for_stream().await {
//!     println!("{:?} to {}:{}", connect.stream_type, connect.host, connect.port);
//!     // connect a socket to connect.host:connect.port, then copy both ways:
//!     // `stream` is a Stream of Bytes received and a Sink of Bytes to send.
//!     while let Some(Ok(data)) = stream.next().await { let _ = data; }
//! }
//! # Ok(()) }
//! ```
//!
//! ## Quick start: a client
//!
//! ```no_run
//! # async fn client<R: wisp_core::ws::TransportRead, W: wisp_core::ws::TransportWrite>(rx: R, tx: W) -> Result<(), wisp_core::WispError> {
//! use bytes::Bytes;
//! use futures::{SinkExt, StreamExt};
//! use wisp_core::extensions::{udp::UdpProtocolExtensionBuilder, AnyProtocolExtensionBuilder};
//! use wisp_core::{packet::StreamType, ClientMux, WispV2Handshake};
//!
//! let v2 = WispV2Handshake::new(vec![AnyProtocolExtensionBuilder::new(UdpProtocolExtensionBuilder)]);
//! let (mux, actor) = ClientMux::new(rx, tx, Some(v2)).await?.with_no_required_extensions();
//! # let spawn = |_f| {};
//! spawn(actor); // tokio::spawn, wasm_bindgen_futures::spawn_local, ...
//! let mut stream = mux.new_stream(StreamType::Tcp, "example.com", 80).await?;
//! stream.send(Bytes::from_static(b"GET / HTTP/1.0\r\n\r\n")).await?;
//! while let Some(chunk) = stream.next().await { let _ = chunk?; }
//! # Ok(()) }
//! ```
//!
//! ## Layers
//!
//! | module | what |
//! | --- | --- |
//! | [`packet`] | one type per packet, zero-copy decoding from `Bytes` |
//! | [`extensions`] | UDP, password, Ed25519 key auth, MOTD, stream-open confirmation |
//! | [`handshake`] | sans-IO handshake machines for both sides |
//! | [`ServerMux`], [`ClientMux`], [`stream`] | the async multiplexer and its stream handles |
//! | [`ws`] | transport traits and adapters |
//!
//! ## Bounds
//!
//! Decoding allocates at most the size of its input. A connection holds at most: per stream,
//! `stream_send_buffer` bytes waiting to be sent (plus one write), and received data bounded
//! by credit on a server (`2 * buffer_size + 1` packets per TCP stream, after which the mux stops
//! reading) or by `stream_receive_buffer` / `connection_receive_buffer` on a client; at most
//! `max_streams` streams; at most `max_pending_control` control packets, after which the mux
//! stops reading. Message sizes are the transport's limit. See [`MuxOptions`].

#![warn(missing_docs)]

mod data_buf;
mod error;
pub mod extensions;
pub mod handshake;
mod mux;
pub mod packet;
pub mod stream;
pub mod ws;

pub use data_buf::DataBuf;
pub use error::WispError;
pub use handshake::WispV2Handshake;
pub use mux::{ClientMux, MultiplexorActorFuture, MuxOptions, MuxResult, ServerMux};
pub use packet::{CloseReason, ConnectPacket, Packet, PacketType, StreamType, WispVersion};

/// Which side of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that opens streams.
    Client,
    /// The side that accepts them and connects them to sockets.
    Server,
}

impl Role {
    /// The other side.
    pub fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}
