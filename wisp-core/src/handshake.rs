//! The v1 and v2 handshakes as sans-IO state machines, one per side.
//!
//! The machines take whole messages and return what to send and what to do next; they never
//! touch a transport. Authentication is a question the server machine asks its caller
//! ([`ServerStep::CheckPassword`]), since a password check may be asynchronous; key signatures
//! are verified inside, since that is pure computation.
//!
//! Orders on the wire (the server always speaks first):
//!
//! | server | client offered a subprotocol | server sends | client answers | server ends with |
//! | --- | --- | --- | --- | --- |
//! | v1 | either | CONTINUE(0) | — | — |
//! | v2 | yes (draft 6) | INFO | INFO | CONTINUE(0) or CLOSE(0) |
//! | v2 | no (legacy order) | CONTINUE(0), INFO | INFO, or any packet (v1 client) | CLOSE(0) on failure |
//!
//! A client that receives CONTINUE first speaks v1 (and reports itself downgraded if it wanted
//! v2). Required extensions are checked after the handshake by
//! [`MuxResult::with_required_extensions`](crate::MuxResult::with_required_extensions).

use bytes::Bytes;

use crate::extensions::cert::{CertAuthProtocolExtension, CertAuthProtocolExtensionBuilder};
use crate::extensions::password::{PasswordProtocolExtension, PasswordProtocolExtensionBuilder};
use crate::extensions::{AnyProtocolExtension, AnyProtocolExtensionBuilder};
use crate::packet::{
    CloseReason, ExtensionRecord, Packet, PacketType, RawPacket, WispVersion, INFO, WISP_VERSION,
};
use crate::{Role, WispError};

/// The v2 part of a handshake: the extensions this side offers, and (on a server) the order.
#[derive(Debug, Default)]
pub struct WispV2Handshake {
    pub(crate) builders: Vec<AnyProtocolExtensionBuilder>,
    pub(crate) legacy_order: bool,
}

impl WispV2Handshake {
    /// Offers these extensions. A server using this sends the draft-6 order (INFO first), which
    /// is right when the client sent a `Sec-WebSocket-Protocol` header.
    pub fn new(builders: Vec<AnyProtocolExtensionBuilder>) -> Self {
        Self {
            builders,
            legacy_order: false,
        }
    }

    /// On a server: send CONTINUE first and INFO after it, for clients that did not send a
    /// `Sec-WebSocket-Protocol` header. Such a client that speaks only v1 keeps working; one that
    /// answers with INFO gets v2.
    pub fn with_legacy_order(mut self, legacy: bool) -> Self {
        self.legacy_order = legacy;
        self
    }
}

/// What a finished handshake agreed.
#[derive(Debug)]
pub struct Negotiated {
    /// The version in use: 1.x or 2.x.
    pub version: WispVersion,
    /// Whether this side offered v2 and the peer speaks only v1.
    pub downgraded: bool,
    /// The peer's records of the extensions both sides offered.
    pub extensions: Vec<AnyProtocolExtension>,
    /// The initial credit for TCP streams (CONTINUE on stream 0).
    pub buffer_size: u32,
    /// On a legacy-order server, the v1 client's first packet, to be handled as traffic.
    pub leftover: Option<Bytes>,
}

const V1: WispVersion = WispVersion { major: 1, minor: 2 };

fn info_packet(
    builders: &mut [AnyProtocolExtensionBuilder],
    role: Role,
) -> Result<Bytes, WispError> {
    let mut records = Vec::with_capacity(builders.len());
    for b in builders.iter_mut() {
        let ext = b.build_to_extension(role)?;
        records.push(ExtensionRecord {
            id: ext.id(),
            payload: ext.encode(),
        });
    }
    Ok(Packet::info(WISP_VERSION, records).to_bytes())
}

/// Builds the peer's record for every builder whose ID the peer announced. Returns the
/// negotiated extensions and, in the same order, the index of the builder for each.
fn negotiate(
    builders: &mut [AnyProtocolExtensionBuilder],
    records: Vec<ExtensionRecord>,
    role: Role,
) -> Result<(Vec<AnyProtocolExtension>, Vec<usize>), WispError> {
    let mut exts = Vec::new();
    let mut idx = Vec::new();
    for (i, b) in builders.iter_mut().enumerate() {
        if let Some(rec) = records.iter().find(|r| r.id == b.id()) {
            exts.push(b.build_from_bytes(rec.payload.clone(), role)?);
            idx.push(i);
        }
    }
    Ok((exts, idx))
}

fn check_version(version: WispVersion) -> Result<(), WispError> {
    if version.major == WISP_VERSION.major {
        Ok(())
    } else {
        Err(WispError::IncompatibleProtocolVersion(
            version,
            WISP_VERSION,
        ))
    }
}

/// What the server side must do next.
#[derive(Debug)]
pub enum ServerStep {
    /// Wait for the client's next message and pass it to [`ServerHandshake::receive`].
    NeedMessage,
    /// Check these credentials and pass the answer to [`ServerHandshake::password_checked`].
    CheckPassword {
        /// The username the client sent.
        username: String,
        /// The password the client sent.
        password: String,
    },
    /// The handshake succeeded; send [`ServerHandshake::final_packets`] and start the mux.
    Done,
    /// The handshake failed: send CLOSE on stream 0 with `reason` if there is one, close the
    /// transport, and report `error`.
    Reject {
        /// The close reason to send, if any.
        reason: Option<CloseReason>,
        /// The error to report.
        error: WispError,
    },
}

/// The server side of the handshake.
#[derive(Debug)]
pub struct ServerHandshake {
    buffer_size: u32,
    v2: Option<WispV2Handshake>,
    extensions: Vec<AnyProtocolExtension>,
    extension_builders: Vec<usize>,
    authenticated: bool,
    downgraded: bool,
    leftover: Option<Bytes>,
    done: bool,
}

impl ServerHandshake {
    /// A server handshake announcing `buffer_size` packets of credit per TCP stream, speaking
    /// v2 when `v2` is given.
    pub fn new(buffer_size: u32, v2: Option<WispV2Handshake>) -> Self {
        Self {
            buffer_size,
            v2,
            extensions: Vec::new(),
            extension_builders: Vec::new(),
            authenticated: false,
            downgraded: false,
            leftover: None,
            done: false,
        }
    }

    /// The messages to send first, and the step after them.
    pub fn start(&mut self) -> Result<(Vec<Bytes>, ServerStep), WispError> {
        let cont = Packet::continue_(0, self.buffer_size).to_bytes();
        match &mut self.v2 {
            None => {
                self.done = true;
                Ok((vec![cont], ServerStep::Done))
            }
            Some(v2) => {
                let info = info_packet(&mut v2.builders, Role::Server)?;
                if v2.legacy_order {
                    Ok((vec![cont, info], ServerStep::NeedMessage))
                } else {
                    Ok((vec![info], ServerStep::NeedMessage))
                }
            }
        }
    }

    /// Handles a message from the client.
    pub fn receive(&mut self, message: Bytes) -> ServerStep {
        let legacy = self.v2.as_ref().is_some_and(|v| v.legacy_order);
        let raw = match RawPacket::parse(message.clone()) {
            Ok(raw) => raw,
            Err(error) => return reject(CloseReason::Unknown, error),
        };
        if raw.packet_type != INFO {
            if let Ok(Packet {
                stream_id: 0,
                packet_type: PacketType::Close(c),
            }) = raw.clone().decode()
            {
                return ServerStep::Reject {
                    reason: None,
                    error: WispError::HandshakeClosed(c.reason),
                };
            }
            if legacy {
                // A v1 client: it took our CONTINUE and started talking.
                self.downgraded = true;
                self.leftover = Some(message);
                self.done = true;
                return ServerStep::Done;
            }
            return reject(
                CloseReason::Unknown,
                WispError::HandshakeUnexpectedPacket(crate::packet::type_name(raw.packet_type)),
            );
        }
        let info = match raw.decode() {
            Ok(Packet {
                packet_type: PacketType::Info(info),
                ..
            }) => info,
            Ok(_) => unreachable!("an INFO type byte decodes to INFO"),
            Err(error) => return reject(CloseReason::Unknown, error),
        };
        if let Err(error) = check_version(info.version) {
            return reject(CloseReason::IncompatibleExtensions, error);
        }
        let v2 = self.v2.as_mut().expect("INFO is only awaited in v2");
        match negotiate(&mut v2.builders, info.extensions, Role::Server) {
            Ok((exts, idx)) => {
                self.extensions = exts;
                self.extension_builders = idx;
            }
            Err(error) => return reject(auth_reason_for(&error), error),
        }
        self.after_info()
    }

    fn builder<T: crate::extensions::ProtocolExtensionBuilder>(&self) -> Option<&T> {
        self.v2
            .as_ref()?
            .builders
            .iter()
            .find_map(|b| b.downcast_ref::<T>())
    }

    fn negotiated<T: crate::extensions::ProtocolExtension>(&self) -> Option<&T> {
        self.extensions.iter().find_map(|e| e.downcast_ref::<T>())
    }

    fn after_info(&mut self) -> ServerStep {
        if let (Some(builder), Some(record)) = (
            self.builder::<CertAuthProtocolExtensionBuilder>(),
            self.negotiated::<CertAuthProtocolExtension>(),
        ) {
            match builder.verify(record) {
                Ok(()) => self.authenticated = true,
                Err(error) => return reject(CloseReason::ExtensionsCertAuthFailed, error),
            }
        }
        if let Some(PasswordProtocolExtension::Client { username, password }) =
            self.negotiated::<PasswordProtocolExtension>()
        {
            if self.builder::<PasswordProtocolExtensionBuilder>().is_some() {
                return ServerStep::CheckPassword {
                    username: username.clone(),
                    password: password.clone(),
                };
            }
        }
        self.finish_auth()
    }

    /// Starts the server's password callback on the credentials of a
    /// [`ServerStep::CheckPassword`].
    pub fn check_password(
        &self,
        username: String,
        password: String,
    ) -> crate::extensions::password::PasswordCheckFuture {
        match self.builder::<PasswordProtocolExtensionBuilder>() {
            Some(b) => b.verify(username, password),
            None => Box::pin(async { Err(WispError::PasswordExtensionCredsInvalid) }),
        }
    }

    /// Takes the result of the caller's password check.
    pub fn password_checked(&mut self, result: Result<(), WispError>) -> ServerStep {
        match result {
            Ok(()) => {
                self.authenticated = true;
                self.finish_auth()
            }
            Err(_) => reject(
                CloseReason::ExtensionsPasswordAuthFailed,
                WispError::PasswordExtensionCredsInvalid,
            ),
        }
    }

    fn finish_auth(&mut self) -> ServerStep {
        let required = self
            .builder::<PasswordProtocolExtensionBuilder>()
            .is_some_and(|b| b.is_required())
            || self
                .builder::<CertAuthProtocolExtensionBuilder>()
                .is_some_and(|b| b.is_required());
        if required && !self.authenticated {
            return reject(
                CloseReason::ExtensionsAuthRequired,
                WispError::ExtensionsAuthRequired,
            );
        }
        self.done = true;
        ServerStep::Done
    }

    /// What to send once the caller has accepted the connection: the CONTINUE on stream 0 in
    /// the draft-6 order; nothing in the others, which sent it first.
    pub fn final_packets(&self) -> Vec<Bytes> {
        match &self.v2 {
            Some(v2) if !v2.legacy_order => {
                vec![Packet::continue_(0, self.buffer_size).to_bytes()]
            }
            _ => Vec::new(),
        }
    }

    /// What was agreed. Call after [`ServerStep::Done`].
    pub fn into_negotiated(self) -> Negotiated {
        debug_assert!(self.done);
        let v2 = self.v2.is_some() && !self.downgraded;
        Negotiated {
            version: if v2 { WISP_VERSION } else { V1 },
            downgraded: self.downgraded,
            extensions: self.extensions,
            buffer_size: self.buffer_size,
            leftover: self.leftover,
        }
    }
}

fn reject(reason: CloseReason, error: WispError) -> ServerStep {
    ServerStep::Reject {
        reason: Some(reason),
        error,
    }
}

/// A malformed authentication record counts as failed authentication.
fn auth_reason_for(error: &WispError) -> CloseReason {
    match error {
        WispError::InvalidExtensionPayload { id: 0x02, .. } | WispError::Utf8Error(_) => {
            CloseReason::ExtensionsPasswordAuthFailed
        }
        WispError::InvalidExtensionPayload { id: 0x03, .. } => {
            CloseReason::ExtensionsCertAuthFailed
        }
        _ => CloseReason::Unknown,
    }
}

/// What the client side must do next.
#[derive(Debug)]
pub enum ClientStep {
    /// Send this message, then wait for the next one.
    Reply(Bytes),
    /// The handshake is over.
    Done,
}

#[derive(Debug, PartialEq, Eq)]
enum ClientState {
    AwaitFirst,
    AwaitContinue,
    Done,
}

/// The client side of the handshake.
#[derive(Debug)]
pub struct ClientHandshake {
    v2: Option<WispV2Handshake>,
    state: ClientState,
    extensions: Vec<AnyProtocolExtension>,
    version: WispVersion,
    buffer_size: u32,
}

impl ClientHandshake {
    /// A client handshake, offering v2 when `v2` is given.
    pub fn new(v2: Option<WispV2Handshake>) -> Self {
        Self {
            v2,
            state: ClientState::AwaitFirst,
            extensions: Vec::new(),
            version: V1,
            buffer_size: 0,
        }
    }

    /// Handles a message from the server.
    pub fn receive(&mut self, message: Bytes) -> Result<ClientStep, WispError> {
        let packet = Packet::decode(message)?;
        match (&self.state, packet.stream_id, packet.packet_type) {
            (ClientState::AwaitFirst, 0, PacketType::Continue(c)) => {
                self.buffer_size = c.buffer_remaining;
                self.version = V1;
                self.state = ClientState::Done;
                Ok(ClientStep::Done)
            }
            (ClientState::AwaitFirst, 0, PacketType::Info(info)) => {
                check_version(info.version)?;
                let v2 = self.v2.get_or_insert_with(WispV2Handshake::default);
                let (exts, idx) = negotiate(&mut v2.builders, info.extensions, Role::Client)?;
                let mut answering: Vec<_> = Vec::with_capacity(idx.len());
                for i in idx {
                    let ext = v2.builders[i].build_to_extension(Role::Client)?;
                    answering.push(ExtensionRecord {
                        id: ext.id(),
                        payload: ext.encode(),
                    });
                }
                self.extensions = exts;
                self.version = WISP_VERSION;
                self.state = ClientState::AwaitContinue;
                Ok(ClientStep::Reply(
                    Packet::info(WISP_VERSION, answering).to_bytes(),
                ))
            }
            (ClientState::AwaitContinue, 0, PacketType::Continue(c)) => {
                self.buffer_size = c.buffer_remaining;
                self.state = ClientState::Done;
                Ok(ClientStep::Done)
            }
            (_, 0, PacketType::Close(c)) => Err(match c.reason {
                CloseReason::ExtensionsPasswordAuthFailed => {
                    WispError::PasswordExtensionCredsInvalid
                }
                CloseReason::ExtensionsCertAuthFailed => WispError::CertAuthExtensionSigInvalid,
                CloseReason::ExtensionsAuthRequired => WispError::ExtensionsAuthRequired,
                CloseReason::IncompatibleExtensions => {
                    WispError::ExtensionsNotSupported(Vec::new())
                }
                other => WispError::HandshakeClosed(other),
            }),
            (_, _, other) => Err(WispError::HandshakeUnexpectedPacket(other.name())),
        }
    }

    /// What was agreed. Call after [`ClientStep::Done`].
    pub fn into_negotiated(self) -> Negotiated {
        let downgraded = self.v2.is_some() && self.version.major == 1;
        Negotiated {
            version: self.version,
            downgraded,
            extensions: self.extensions,
            buffer_size: self.buffer_size,
            leftover: None,
        }
    }
}
