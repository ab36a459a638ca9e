//! Server MOTD (0x04): the server sends a UTF-8 welcome message; the client sends an empty
//! record to say it can show it.

use std::any::Any;

use bytes::Bytes;

use super::{AnyProtocolExtension, ProtocolExtension, ProtocolExtensionBuilder};
use crate::{Role, WispError};

/// A MOTD record. On a client, [`crate::ClientMux::get_extensions`] holds the server's record,
/// whose `motd` is the message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MotdProtocolExtension {
    /// The message; empty in a client's record.
    pub motd: String,
}

impl MotdProtocolExtension {
    /// The extension ID.
    pub const ID: u8 = 0x04;
}

impl ProtocolExtension for MotdProtocolExtension {
    fn id(&self) -> u8 {
        Self::ID
    }
    fn encode(&self) -> Bytes {
        Bytes::copy_from_slice(self.motd.as_bytes())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Configures the MOTD extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MotdProtocolExtensionBuilder {
    /// A server announcing this message.
    Server(String),
    /// A client willing to receive a message.
    Client,
}

impl ProtocolExtensionBuilder for MotdProtocolExtensionBuilder {
    fn id(&self) -> u8 {
        MotdProtocolExtension::ID
    }

    fn build_from_bytes(
        &mut self,
        bytes: Bytes,
        _role: Role,
    ) -> Result<AnyProtocolExtension, WispError> {
        // A MOTD is for display only: a message that is not valid UTF-8 is shown with
        // replacement characters rather than failing the whole connection.
        Ok(AnyProtocolExtension::new(MotdProtocolExtension {
            motd: String::from_utf8_lossy(&bytes).into_owned(),
        }))
    }

    fn build_to_extension(&mut self, _role: Role) -> Result<AnyProtocolExtension, WispError> {
        Ok(AnyProtocolExtension::new(MotdProtocolExtension {
            motd: match self {
                Self::Server(motd) => motd.clone(),
                Self::Client => String::new(),
            },
        }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
