//! Transports: what the multiplexer reads whole messages from and writes whole messages to.
//!
//! A transport is a `Stream` of received binary messages and a `Sink` of messages to send, each
//! message one Wisp packet. Adapters reassemble fragmented WebSocket messages, answer pings, and
//! turn text frames into [`WispError::WsFrameInvalidType`]. The read and write halves are
//! separate types so that each side can be owned where it is used; [`TransportExt::split_fast`]
//! splits a combined transport.
//!
//! - [`TokioWebsocketsTransport`] (cargo feature `tokio-websockets`): a tokio-websockets stream.
//! - [`memory::duplex`]: an in-memory pair, for tests and for running both sides in one process.
//! - The browser `WebSocket` adapter lives in the `wisp-wasm` crate.

pub mod memory;
#[cfg(feature = "tokio-websockets")]
mod tokio_websockets;

use bytes::Bytes;
use futures::{Sink, Stream};

#[cfg(feature = "tokio-websockets")]
pub use self::tokio_websockets::{
    TokioWebsocketsRead, TokioWebsocketsTransport, TokioWebsocketsWrite,
};
use crate::WispError;

/// A whole message: one Wisp packet.
pub type Payload = Bytes;

/// The read half of a transport: a stream of whole binary messages. `None` means the transport
/// closed.
pub trait TransportRead: Stream<Item = Result<Payload, WispError>> + Unpin + 'static {}
impl<T: Stream<Item = Result<Payload, WispError>> + Unpin + 'static> TransportRead for T {}

/// The write half of a transport: a sink of whole binary messages. Closing it closes the
/// transport.
pub trait TransportWrite: Sink<Payload, Error = WispError> + Unpin + 'static {}
impl<T: Sink<Payload, Error = WispError> + Unpin + 'static> TransportWrite for T {}

/// Splitting a combined transport into its halves.
pub trait TransportExt {
    /// The read half.
    type Read: TransportRead;
    /// The write half.
    type Write: TransportWrite;

    /// Splits into read and write halves.
    fn split_fast(self) -> (Self::Read, Self::Write);
}
