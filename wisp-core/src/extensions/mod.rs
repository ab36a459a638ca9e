//! Wisp v2 protocol extensions.
//!
//! Each extension has two types: an *extension* (one side's record in an INFO packet, decoded)
//! and a *builder* (what one side is configured with, which produces its own record and
//! interprets the peer's). The handshake keeps, for every extension both sides announced, the
//! peer's record; [`crate::ServerMux::get_extensions`] and [`crate::ClientMux::get_extensions`]
//! return them.
//!
//! | ID | extension | module |
//! | --- | --- | --- |
//! | 0x01 | UDP | [`udp`] |
//! | 0x02 | password authentication | [`password`] |
//! | 0x03 | Ed25519 key authentication | [`cert`] |
//! | 0x04 | server MOTD | [`motd`] |
//! | 0x05 | stream-open confirmation | [`confirmation`] |
//!
//! Records with IDs no builder claims are kept verbatim as [`UnknownExtension`].

pub mod cert;
pub mod confirmation;
pub mod motd;
pub mod password;
pub mod udp;

use std::any::Any;
use std::fmt;

use bytes::Bytes;

use crate::{Role, WispError};

/// One side's decoded extension record.
pub trait ProtocolExtension: fmt::Debug + Send + Sync + 'static {
    /// The extension ID.
    fn id(&self) -> u8;
    /// The record payload as sent in INFO.
    fn encode(&self) -> Bytes;
    /// For downcasting to the concrete type.
    fn as_any(&self) -> &dyn Any;
}

/// What one side is configured with for an extension.
pub trait ProtocolExtensionBuilder: Send + Sync + 'static {
    /// The extension ID.
    fn id(&self) -> u8;
    /// Interprets the record the peer announced; `role` is this side's role.
    fn build_from_bytes(
        &mut self,
        bytes: Bytes,
        role: Role,
    ) -> Result<AnyProtocolExtension, WispError>;
    /// The record this side announces; `role` is this side's role. On a client this is called
    /// after [`build_from_bytes`](Self::build_from_bytes) saw the server's record, so that the
    /// answer may depend on it (a signature over the server's challenge, for example).
    fn build_to_extension(&mut self, role: Role) -> Result<AnyProtocolExtension, WispError>;
    /// For downcasting to the concrete type.
    fn as_any(&self) -> &dyn Any;
}

/// A type-erased extension record.
#[derive(Debug)]
pub struct AnyProtocolExtension(Box<dyn ProtocolExtension>);

impl AnyProtocolExtension {
    /// Wraps an extension.
    pub fn new<T: ProtocolExtension>(ext: T) -> Self {
        Self(Box::new(ext))
    }

    /// The extension ID.
    pub fn id(&self) -> u8 {
        self.0.id()
    }

    /// The record payload.
    pub fn encode(&self) -> Bytes {
        self.0.encode()
    }

    /// The concrete extension, if it is a `T`.
    pub fn downcast_ref<T: ProtocolExtension>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }
}

/// A type-erased extension builder, as [`crate::WispV2Handshake::new`] takes them.
pub struct AnyProtocolExtensionBuilder(Box<dyn ProtocolExtensionBuilder>);

impl AnyProtocolExtensionBuilder {
    /// Wraps a builder.
    pub fn new<T: ProtocolExtensionBuilder>(builder: T) -> Self {
        Self(Box::new(builder))
    }

    /// The extension ID.
    pub fn id(&self) -> u8 {
        self.0.id()
    }

    /// The concrete builder, if it is a `T`.
    pub fn downcast_ref<T: ProtocolExtensionBuilder>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }

    pub(crate) fn build_from_bytes(
        &mut self,
        bytes: Bytes,
        role: Role,
    ) -> Result<AnyProtocolExtension, WispError> {
        self.0.build_from_bytes(bytes, role)
    }

    pub(crate) fn build_to_extension(
        &mut self,
        role: Role,
    ) -> Result<AnyProtocolExtension, WispError> {
        self.0.build_to_extension(role)
    }
}

impl fmt::Debug for AnyProtocolExtensionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnyProtocolExtensionBuilder({:#04x})", self.id())
    }
}

/// A record whose ID no builder on this side claims, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownExtension {
    /// The extension ID.
    pub id: u8,
    /// The payload as received.
    pub payload: Bytes,
}

impl ProtocolExtension for UnknownExtension {
    fn id(&self) -> u8 {
        self.id
    }
    fn encode(&self) -> Bytes {
        self.payload.clone()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Defines an extension that has no payload on either side: its presence is all it says.
macro_rules! flag_extension {
    ($(#[$doc:meta])* $ext:ident, $(#[$bdoc:meta])* $builder:ident, $id:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $ext;

        impl $ext {
            /// The extension ID.
            pub const ID: u8 = $id;
        }

        impl $crate::extensions::ProtocolExtension for $ext {
            fn id(&self) -> u8 {
                Self::ID
            }
            fn encode(&self) -> ::bytes::Bytes {
                ::bytes::Bytes::new()
            }
            fn as_any(&self) -> &dyn ::std::any::Any {
                self
            }
        }

        $(#[$bdoc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $builder;

        impl $crate::extensions::ProtocolExtensionBuilder for $builder {
            fn id(&self) -> u8 {
                $ext::ID
            }
            fn build_from_bytes(
                &mut self,
                _bytes: ::bytes::Bytes,
                _role: $crate::Role,
            ) -> Result<$crate::extensions::AnyProtocolExtension, $crate::WispError> {
                Ok($crate::extensions::AnyProtocolExtension::new($ext))
            }
            fn build_to_extension(
                &mut self,
                _role: $crate::Role,
            ) -> Result<$crate::extensions::AnyProtocolExtension, $crate::WispError> {
                Ok($crate::extensions::AnyProtocolExtension::new($ext))
            }
            fn as_any(&self) -> &dyn ::std::any::Any {
                self
            }
        }
    };
}
pub(crate) use flag_extension;
