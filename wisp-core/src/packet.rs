//! The Wisp packets: one type per packet, zero-copy decoding from [`Bytes`], encoding into
//! [`BufMut`].
//!
//! Every packet is `type: u8 | stream id: u32 LE | payload`. Decoding never panics and never
//! allocates more than the input it was given: payloads are slices of the input, hostnames are
//! validated UTF-8 copied once, and an INFO packet's record list has at most one entry per five
//! bytes of input.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::WispError;

/// Size of the packet header: type (1) and stream ID (4).
pub const HEADER_LEN: usize = 5;
/// The largest DATA payload this implementation sends in one packet, so that every frame stays
/// at or below 64 KiB. Every known peer accepts it.
pub const MAX_DATA_PAYLOAD: usize = 65_535 - HEADER_LEN;

/// Type byte of CONNECT.
pub const CONNECT: u8 = 0x01;
/// Type byte of DATA.
pub const DATA: u8 = 0x02;
/// Type byte of CONTINUE.
pub const CONTINUE: u8 = 0x03;
/// Type byte of CLOSE.
pub const CLOSE: u8 = 0x04;
/// Type byte of INFO (Wisp v2).
pub const INFO: u8 = 0x05;

/// A close reason. Known codes have named constants; any other byte is kept as it is, so unknown
/// reasons survive a round trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseReason(pub u8);

#[allow(non_upper_case_globals)]
impl CloseReason {
    /// 0x01: reason unspecified or unknown.
    pub const Unknown: Self = Self(0x01);
    /// 0x02: voluntary stream closure (the other end finished cleanly).
    pub const Voluntary: Self = Self(0x02);
    /// 0x03: unexpected stream closure due to a network error.
    pub const Unexpected: Self = Self(0x03);
    /// 0x04: incompatible extensions (handshake only).
    pub const IncompatibleExtensions: Self = Self(0x04);
    /// 0x41: stream creation failed due to invalid information.
    pub const ServerStreamInvalidInfo: Self = Self(0x41);
    /// 0x42: the destination host is unreachable (for example it does not resolve).
    pub const ServerStreamUnreachable: Self = Self(0x42);
    /// 0x43: connecting to the destination timed out.
    pub const ServerStreamConnectionTimedOut: Self = Self(0x43);
    /// 0x44: the destination refused the connection.
    pub const ServerStreamConnectionRefused: Self = Self(0x44);
    /// 0x47: TCP data transfer timed out.
    pub const ServerStreamTimedOut: Self = Self(0x47);
    /// 0x48: the destination is blocked by the server's policy.
    pub const ServerStreamBlockedAddress: Self = Self(0x48);
    /// 0x49: throttled by the server.
    pub const ServerStreamThrottled: Self = Self(0x49);
    /// 0x81: the client cannot receive any more data.
    pub const ClientUnexpected: Self = Self(0x81);
    /// 0xc0: password authentication failed.
    pub const ExtensionsPasswordAuthFailed: Self = Self(0xc0);
    /// 0xc1: key authentication failed.
    pub const ExtensionsCertAuthFailed: Self = Self(0xc1);
    /// 0xc2: authentication required but no credentials were provided.
    pub const ExtensionsAuthRequired: Self = Self(0xc2);

    /// The code's name as the specification words it, or `None` for an unknown code.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x01 => "unknown",
            0x02 => "voluntary",
            0x03 => "network error",
            0x04 => "incompatible extensions",
            0x41 => "invalid stream information",
            0x42 => "destination unreachable",
            0x43 => "connection timed out",
            0x44 => "connection refused",
            0x47 => "transfer timed out",
            0x48 => "destination blocked",
            0x49 => "throttled",
            0x81 => "client cannot receive",
            0xc0 => "invalid password",
            0xc1 => "invalid signature",
            0xc2 => "authentication required",
            _ => return None,
        })
    }
}

impl fmt::Debug for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseReason({:#04x}", self.0)?;
        if let Some(name) = self.name() {
            write!(f, " {name}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({:#04x})", self.0),
            None => write!(f, "unknown reason {:#04x}", self.0),
        }
    }
}

impl From<u8> for CloseReason {
    fn from(code: u8) -> Self {
        Self(code)
    }
}

impl From<CloseReason> for u8 {
    fn from(reason: CloseReason) -> u8 {
        reason.0
    }
}

/// The kind of socket a stream asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// 0x01: a TCP stream, flow-controlled with CONTINUE.
    Tcp,
    /// 0x02: a UDP stream; one DATA packet is one datagram, no flow control.
    Udp,
    /// Any other byte, kept so that the server can refuse it with a CLOSE.
    Unknown(u8),
}

impl From<u8> for StreamType {
    fn from(b: u8) -> Self {
        match b {
            0x01 => Self::Tcp,
            0x02 => Self::Udp,
            other => Self::Unknown(other),
        }
    }
}

impl From<StreamType> for u8 {
    fn from(t: StreamType) -> u8 {
        match t {
            StreamType::Tcp => 0x01,
            StreamType::Udp => 0x02,
            StreamType::Unknown(b) => b,
        }
    }
}

/// A Wisp protocol version, as carried in INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WispVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
}

impl fmt::Display for WispVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The version this crate speaks in v2 handshakes.
pub const WISP_VERSION: WispVersion = WispVersion { major: 2, minor: 0 };

/// CONNECT: open a stream to `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectPacket {
    /// TCP or UDP.
    pub stream_type: StreamType,
    /// The destination hostname or IP literal, UTF-8.
    pub host: String,
    /// The destination port.
    pub port: u16,
}

impl ConnectPacket {
    /// Creates a CONNECT payload.
    pub fn new(stream_type: StreamType, host: impl Into<String>, port: u16) -> Self {
        Self {
            stream_type,
            host: host.into(),
            port,
        }
    }

    fn decode(mut payload: Bytes) -> Result<Self, WispError> {
        need(&payload, 3)?;
        let stream_type = StreamType::from(payload.get_u8());
        let port = payload.get_u16_le();
        let host = std::str::from_utf8(&payload)?.to_owned();
        Ok(Self {
            stream_type,
            host,
            port,
        })
    }

    fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.stream_type.into());
        buf.put_u16_le(self.port);
        buf.put_slice(self.host.as_bytes());
    }
}

/// CONTINUE: how many packets the server can still buffer for a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContinuePacket {
    /// The number of DATA packets the client may send before waiting for the next CONTINUE.
    pub buffer_remaining: u32,
}

/// CLOSE: the stream (or, on stream 0, the connection) is closed with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosePacket {
    /// Why.
    pub reason: CloseReason,
}

/// One extension record of an INFO packet, kept as raw bytes: `id: u8 | length: u32 | payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionRecord {
    /// The extension ID.
    pub id: u8,
    /// The record's payload, uninterpreted.
    pub payload: Bytes,
}

/// INFO (v2): the sender's version and its extension records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoPacket {
    /// The protocol version.
    pub version: WispVersion,
    /// Extension records in the order they were sent; unknown ones are kept verbatim.
    pub extensions: Vec<ExtensionRecord>,
}

impl InfoPacket {
    fn decode(mut payload: Bytes) -> Result<Self, WispError> {
        need(&payload, 2)?;
        let version = WispVersion {
            major: payload.get_u8(),
            minor: payload.get_u8(),
        };
        let mut extensions = Vec::new();
        while !payload.is_empty() {
            if payload.len() < 5 {
                return Err(WispError::InvalidExtensionPayload {
                    id: payload[0],
                    reason: "truncated record header",
                });
            }
            let id = payload.get_u8();
            let len = payload.get_u32_le() as usize;
            if len > payload.len() {
                return Err(WispError::InvalidExtensionPayload {
                    id,
                    reason: "record length exceeds the packet",
                });
            }
            extensions.push(ExtensionRecord {
                id,
                payload: payload.split_to(len),
            });
        }
        Ok(Self {
            version,
            extensions,
        })
    }

    fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.version.major);
        buf.put_u8(self.version.minor);
        for ext in &self.extensions {
            buf.put_u8(ext.id);
            buf.put_u32_le(ext.payload.len() as u32);
            buf.put_slice(&ext.payload);
        }
    }

    fn encoded_len(&self) -> usize {
        2 + self
            .extensions
            .iter()
            .map(|e| 5 + e.payload.len())
            .sum::<usize>()
    }
}

/// The payload of a packet, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketType {
    /// 0x01 CONNECT.
    Connect(ConnectPacket),
    /// 0x02 DATA: a slice of the received message, not a copy.
    Data(Bytes),
    /// 0x03 CONTINUE.
    Continue(ContinuePacket),
    /// 0x04 CLOSE.
    Close(ClosePacket),
    /// 0x05 INFO.
    Info(InfoPacket),
}

impl PacketType {
    /// The type byte.
    pub fn as_u8(&self) -> u8 {
        match self {
            Self::Connect(_) => CONNECT,
            Self::Data(_) => DATA,
            Self::Continue(_) => CONTINUE,
            Self::Close(_) => CLOSE,
            Self::Info(_) => INFO,
        }
    }

    /// The packet type's name, for messages.
    pub fn name(&self) -> &'static str {
        type_name(self.as_u8())
    }
}

/// The name of a packet type byte.
pub fn type_name(ty: u8) -> &'static str {
    match ty {
        CONNECT => "CONNECT",
        DATA => "DATA",
        CONTINUE => "CONTINUE",
        CLOSE => "CLOSE",
        INFO => "INFO",
        _ => "unknown",
    }
}

/// A Wisp packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The stream the packet belongs to; 0 is the connection itself.
    pub stream_id: u32,
    /// The typed payload.
    pub packet_type: PacketType,
}

/// A packet whose header is parsed and whose payload is not, so that a caller can still tell
/// which stream a malformed packet was meant for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPacket {
    /// The type byte.
    pub packet_type: u8,
    /// The stream ID.
    pub stream_id: u32,
    /// The payload.
    pub payload: Bytes,
}

impl RawPacket {
    /// Splits the header from a whole message. Fails only if the message is shorter than 5 bytes.
    pub fn parse(mut message: Bytes) -> Result<Self, WispError> {
        need(&message, HEADER_LEN)?;
        let packet_type = message.get_u8();
        let stream_id = message.get_u32_le();
        Ok(Self {
            packet_type,
            stream_id,
            payload: message,
        })
    }

    /// Decodes the payload according to the type byte.
    pub fn decode(self) -> Result<Packet, WispError> {
        let mut payload = self.payload;
        let packet_type = match self.packet_type {
            CONNECT => PacketType::Connect(ConnectPacket::decode(payload)?),
            DATA => PacketType::Data(payload),
            CONTINUE => {
                need(&payload, 4)?;
                PacketType::Continue(ContinuePacket {
                    buffer_remaining: payload.get_u32_le(),
                })
            }
            CLOSE => {
                need(&payload, 1)?;
                PacketType::Close(ClosePacket {
                    reason: CloseReason(payload.get_u8()),
                })
            }
            INFO => PacketType::Info(InfoPacket::decode(payload)?),
            other => return Err(WispError::InvalidPacketType(other)),
        };
        Ok(Packet {
            stream_id: self.stream_id,
            packet_type,
        })
    }
}

fn need(b: &Bytes, n: usize) -> Result<(), WispError> {
    if b.len() < n {
        Err(WispError::PacketTooSmall {
            needed: n,
            got: b.len(),
        })
    } else {
        Ok(())
    }
}

impl Packet {
    /// Creates a packet.
    pub fn new(stream_id: u32, packet_type: PacketType) -> Self {
        Self {
            stream_id,
            packet_type,
        }
    }

    /// CONNECT on `stream_id`.
    pub fn connect(stream_id: u32, stream_type: StreamType, host: &str, port: u16) -> Self {
        Self::new(
            stream_id,
            PacketType::Connect(ConnectPacket::new(stream_type, host, port)),
        )
    }

    /// DATA on `stream_id`.
    pub fn data(stream_id: u32, payload: Bytes) -> Self {
        Self::new(stream_id, PacketType::Data(payload))
    }

    /// CONTINUE on `stream_id`.
    pub fn continue_(stream_id: u32, buffer_remaining: u32) -> Self {
        Self::new(
            stream_id,
            PacketType::Continue(ContinuePacket { buffer_remaining }),
        )
    }

    /// CLOSE on `stream_id`.
    pub fn close(stream_id: u32, reason: CloseReason) -> Self {
        Self::new(stream_id, PacketType::Close(ClosePacket { reason }))
    }

    /// INFO (always on stream 0).
    pub fn info(version: WispVersion, extensions: Vec<ExtensionRecord>) -> Self {
        Self::new(
            0,
            PacketType::Info(InfoPacket {
                version,
                extensions,
            }),
        )
    }

    /// Decodes one whole WebSocket message.
    pub fn decode(message: Bytes) -> Result<Self, WispError> {
        RawPacket::parse(message)?.decode()
    }

    /// The encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + match &self.packet_type {
                PacketType::Connect(c) => 3 + c.host.len(),
                PacketType::Data(d) => d.len(),
                PacketType::Continue(_) => 4,
                PacketType::Close(_) => 1,
                PacketType::Info(i) => i.encoded_len(),
            }
    }

    /// Encodes the packet into `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.packet_type.as_u8());
        buf.put_u32_le(self.stream_id);
        match &self.packet_type {
            PacketType::Connect(c) => c.encode(buf),
            PacketType::Data(d) => buf.put_slice(d),
            PacketType::Continue(c) => buf.put_u32_le(c.buffer_remaining),
            PacketType::Close(c) => buf.put_u8(c.reason.0),
            PacketType::Info(i) => i.encode(buf),
        }
    }

    /// Encodes the packet into a new buffer of exactly the right size.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }
}

/// Encodes a DATA packet straight from a payload slice: one allocation, one copy.
pub fn encode_data(stream_id: u32, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + payload.len());
    buf.put_u8(DATA);
    buf.put_u32_le(stream_id);
    buf.put_slice(payload);
    buf.freeze()
}

/// Encodes a CLOSE packet.
pub fn encode_close(stream_id: u32, reason: CloseReason) -> Bytes {
    Packet::close(stream_id, reason).to_bytes()
}

/// Encodes a CONTINUE packet.
pub fn encode_continue(stream_id: u32, buffer_remaining: u32) -> Bytes {
    Packet::continue_(stream_id, buffer_remaining).to_bytes()
}
