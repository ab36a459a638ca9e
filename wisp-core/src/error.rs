//! The one error type of the crate.
//!
//! Variants are grouped by who is at fault: the peer (malformed or unexpected packets), the
//! transport (the WebSocket underneath), the handshake (versions, extensions, authentication),
//! and the local application (using a stream that is already closed).

use crate::packet::{CloseReason, WispVersion};

/// Errors the Wisp implementation can return.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WispError {
    // ---- the peer sent something malformed ----
    /// A packet was shorter than its type requires.
    #[error("packet too small: need at least {needed} bytes, got {got}")]
    PacketTooSmall {
        /// The number of bytes the packet type requires.
        needed: usize,
        /// The number of bytes received.
        got: usize,
    },
    /// A packet had a type byte this implementation does not know.
    #[error("unknown packet type {0:#04x}")]
    InvalidPacketType(u8),
    /// A CONNECT packet asked for a stream type other than TCP (0x01) or UDP (0x02).
    #[error("unknown stream type {0:#04x}")]
    InvalidStreamType(u8),
    /// A packet used a stream ID it may not use (0 for a stream, or one already in use).
    #[error("invalid stream id {0}")]
    InvalidStreamId(u32),
    /// A hostname, username, password or MOTD was not valid UTF-8.
    #[error("invalid UTF-8: {0}")]
    Utf8Error(#[from] std::str::Utf8Error),
    /// An extension record in an INFO packet was malformed (for example a length that lies).
    #[error("malformed payload for extension {id:#04x}: {reason}")]
    InvalidExtensionPayload {
        /// The extension ID.
        id: u8,
        /// What was wrong.
        reason: &'static str,
    },
    /// A WebSocket message was larger than the configured limit.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The size of the message.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The peer sent a packet that is not allowed at this point of the handshake.
    #[error("unexpected {0} packet during the handshake")]
    HandshakeUnexpectedPacket(&'static str),

    // ---- the transport ----
    /// The WebSocket delivered a text frame or another non-binary message.
    #[error("the WebSocket message was not a binary message")]
    WsFrameInvalidType,
    /// The WebSocket delivered an unfinished fragmented message.
    #[error("the WebSocket message was not finished")]
    WsFrameNotFinished,
    /// Error specific to the WebSocket implementation.
    #[error("WebSocket error: {0}")]
    WsImplError(Box<dyn std::error::Error + Send + Sync>),
    /// The WebSocket closed.
    #[error("the WebSocket closed")]
    WsImplSocketClosed,
    /// The WebSocket implementation does not support the action.
    #[error("the WebSocket implementation does not support this action")]
    WsImplNotSupported,

    // ---- the handshake ----
    /// The peer announced a Wisp version this implementation cannot speak.
    #[error("incompatible protocol version: peer speaks {0}, we need {1}")]
    IncompatibleProtocolVersion(WispVersion, WispVersion),
    /// Extensions that were required are missing on the other side.
    #[error("required extensions not supported by the peer: {0:?}")]
    ExtensionsNotSupported(Vec<u8>),
    /// The client supplied wrong credentials (close reason 0xc0).
    #[error("password authentication failed: invalid credentials")]
    PasswordExtensionCredsInvalid,
    /// The server requires a password and no credentials were configured on this client.
    #[error("the server requires password authentication and no credentials were given")]
    PasswordExtensionNoCreds,
    /// The client's Ed25519 signature did not verify against any authorized key (0xc1).
    #[error("key authentication failed: invalid signature")]
    CertAuthExtensionSigInvalid,
    /// The builder has no key configured (no signing key on a client, no authorized key on a server).
    #[error("key authentication is not configured with a key")]
    CertAuthExtensionNoKey,
    /// The server requires authentication and the client did not provide any (0xc2).
    #[error("authentication required but the client provided no credentials")]
    ExtensionsAuthRequired,
    /// The peer closed the connection during the handshake with this reason.
    #[error("the peer closed the connection during the handshake: {0}")]
    HandshakeClosed(CloseReason),
    /// An extension implementation failed.
    #[error("extension error: {0}")]
    ExtensionImplError(Box<dyn std::error::Error + Send + Sync>),

    // ---- the multiplexer and its streams ----
    /// The peer refused the maximum number of open streams, or the local limit was reached.
    #[error("the maximum number of streams was reached")]
    MaxStreamCountReached,
    /// The stream was already closed (by either side).
    #[error("the stream is already closed")]
    StreamAlreadyClosed,
    /// The server refused to open the stream (stream-open confirmation or an early CLOSE).
    #[error("the server refused the stream: {0}")]
    StreamRefused(CloseReason),
    /// The stream's reader fell too far behind and the stream was closed with 0x81.
    #[error("the stream's receive buffer overflowed; the stream was closed (0x81)")]
    StreamReceiveOverflow,
    /// A UDP datagram was larger than one Wisp packet may carry.
    #[error("datagram of {0} bytes is too large for one Wisp packet")]
    DatagramTooLarge(usize),
    /// A UDP stream was requested but UDP was not negotiated with the server.
    #[error("UDP is not supported by the server")]
    UdpNotSupported,
    /// The multiplexer's actor is gone (the connection ended, or its future was dropped).
    #[error("the multiplexer is not running")]
    MuxMessageFailedToSend,
    /// The multiplexer's actor ended while the operation was pending.
    #[error("the multiplexer task ended")]
    MuxTaskEnded,
    /// Any other error.
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl WispError {
    /// Wraps a transport error.
    pub fn ws(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::WsImplError(Box::new(err))
    }
}
