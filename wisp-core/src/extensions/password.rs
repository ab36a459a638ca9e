//! Password authentication (0x02).
//!
//! Server record: `required: u8`. Client record, as epoxy and wisp-mux send it:
//! `username length: u8 | password length: u16 LE | username | password`. Draft 6's table omits
//! the password length (`username length: u8 | username | password`); a record is read in that
//! form when the epoxy form does not fit its length exactly. Credentials are never printed by
//! `Debug`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::{AnyProtocolExtension, ProtocolExtension, ProtocolExtensionBuilder};
use crate::{Role, WispError};

/// The future a server's password callback returns: `Ok(())` accepts, an error rejects.
pub type PasswordCheckFuture = Pin<Box<dyn Future<Output = Result<(), WispError>> + Send>>;

type Verifier = dyn Fn(String, String) -> PasswordCheckFuture + Send + Sync;

/// A password record.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordProtocolExtension {
    /// The server's record: whether a password is required.
    Server {
        /// Whether the server requires authentication.
        required: bool,
    },
    /// The client's record: its credentials.
    Client {
        /// The username.
        username: String,
        /// The password.
        password: String,
    },
}

impl PasswordProtocolExtension {
    /// The extension ID.
    pub const ID: u8 = 0x02;

    fn decode(mut bytes: Bytes, sender: Role) -> Result<Self, WispError> {
        let bad = |reason| WispError::InvalidExtensionPayload {
            id: Self::ID,
            reason,
        };
        match sender {
            Role::Server => match bytes.first() {
                Some(&b) => Ok(Self::Server { required: b != 0 }),
                None => Err(bad("missing the required flag")),
            },
            Role::Client => {
                let Some(&ulen) = bytes.first() else {
                    return Err(bad("empty client record"));
                };
                let ulen = ulen as usize;
                let epoxy_fits = bytes.len() >= 3 && {
                    let plen = u16::from_le_bytes([bytes[1], bytes[2]]) as usize;
                    bytes.len() == 3 + ulen + plen
                };
                let _ = if epoxy_fits {
                    bytes.split_to(3)
                } else if bytes.len() > ulen {
                    bytes.split_to(1)
                } else {
                    return Err(bad("username length exceeds the record"));
                };
                let username = std::str::from_utf8(&bytes[..ulen])?.to_owned();
                let password = std::str::from_utf8(&bytes[ulen..])?.to_owned();
                Ok(Self::Client { username, password })
            }
        }
    }
}

impl fmt::Debug for PasswordProtocolExtension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Server { required } => f
                .debug_struct("PasswordProtocolExtension::Server")
                .field("required", required)
                .finish(),
            Self::Client { username, .. } => f
                .debug_struct("PasswordProtocolExtension::Client")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

impl ProtocolExtension for PasswordProtocolExtension {
    fn id(&self) -> u8 {
        Self::ID
    }

    fn encode(&self) -> Bytes {
        match self {
            Self::Server { required } => Bytes::copy_from_slice(&[*required as u8]),
            Self::Client { username, password } => {
                let mut buf = BytesMut::with_capacity(3 + username.len() + password.len());
                buf.put_u8(username.len() as u8);
                buf.put_u16_le(password.len() as u16);
                buf.put_slice(username.as_bytes());
                buf.put_slice(password.as_bytes());
                buf.freeze()
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

enum Config {
    Server {
        verifier: Arc<Verifier>,
        required: bool,
    },
    Client {
        username: String,
        password: String,
    },
}

/// Configures password authentication.
pub struct PasswordProtocolExtensionBuilder {
    config: Config,
}

impl PasswordProtocolExtensionBuilder {
    /// A server that checks credentials with `verifier`, which resolves to `Ok(())` to accept
    /// and to an error (normally [`WispError::PasswordExtensionCredsInvalid`]) to reject. The
    /// server requires authentication; see [`required`](Self::required).
    pub fn new_server<F, Fut>(verifier: F) -> Self
    where
        F: Fn(String, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), WispError>> + Send + 'static,
    {
        Self {
            config: Config::Server {
                verifier: Arc::new(move |u, p| Box::pin(verifier(u, p)) as PasswordCheckFuture),
                required: true,
            },
        }
    }

    /// A client that logs in with these credentials. Usernames are limited to 255 bytes and
    /// passwords to 65,535 bytes by the record format.
    pub fn new_client(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            config: Config::Client {
                username: username.into(),
                password: password.into(),
            },
        }
    }

    /// Sets whether a server requires authentication (by password or by key).
    pub fn required(mut self, required: bool) -> Self {
        if let Config::Server { required: r, .. } = &mut self.config {
            *r = required;
        }
        self
    }

    /// Whether this is a server builder that requires authentication.
    pub fn is_required(&self) -> bool {
        matches!(self.config, Config::Server { required: true, .. })
    }

    /// Runs the server's verifier on credentials. Used by the handshake.
    pub(crate) fn verify(&self, username: String, password: String) -> PasswordCheckFuture {
        match &self.config {
            Config::Server { verifier, .. } => verifier(username, password),
            Config::Client { .. } => {
                Box::pin(async { Err(WispError::PasswordExtensionCredsInvalid) })
            }
        }
    }
}

impl fmt::Debug for PasswordProtocolExtensionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.config {
            Config::Server { required, .. } => write!(
                f,
                "PasswordProtocolExtensionBuilder::Server {{ required: {required} }}"
            ),
            Config::Client { username, .. } => write!(
                f,
                "PasswordProtocolExtensionBuilder::Client {{ username: {username:?} }}"
            ),
        }
    }
}

impl ProtocolExtensionBuilder for PasswordProtocolExtensionBuilder {
    fn id(&self) -> u8 {
        PasswordProtocolExtension::ID
    }

    fn build_from_bytes(
        &mut self,
        bytes: Bytes,
        role: Role,
    ) -> Result<AnyProtocolExtension, WispError> {
        PasswordProtocolExtension::decode(bytes, role.peer()).map(AnyProtocolExtension::new)
    }

    fn build_to_extension(&mut self, _role: Role) -> Result<AnyProtocolExtension, WispError> {
        Ok(AnyProtocolExtension::new(match &self.config {
            Config::Server { required, .. } => PasswordProtocolExtension::Server {
                required: *required,
            },
            Config::Client { username, password } => {
                if username.len() > u8::MAX as usize || password.len() > u16::MAX as usize {
                    return Err(WispError::InvalidExtensionPayload {
                        id: PasswordProtocolExtension::ID,
                        reason: "username over 255 bytes or password over 65535 bytes",
                    });
                }
                PasswordProtocolExtension::Client {
                    username: username.clone(),
                    password: password.clone(),
                }
            }
        }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_record_round_trips_in_epoxy_form() {
        let ext = PasswordProtocolExtension::Client {
            username: "alice".into(),
            password: "hunter2".into(),
        };
        let bytes = ext.encode();
        assert_eq!(&bytes[..3], &[5, 7, 0]);
        assert_eq!(&bytes[3..], b"alicehunter2");
        assert_eq!(
            PasswordProtocolExtension::decode(bytes, Role::Client).unwrap(),
            ext
        );
    }

    #[test]
    fn client_record_in_draft_form_is_accepted() {
        let bytes = Bytes::from_static(b"\x05alicehunter2");
        assert_eq!(
            PasswordProtocolExtension::decode(bytes, Role::Client).unwrap(),
            PasswordProtocolExtension::Client {
                username: "alice".into(),
                password: "hunter2".into()
            }
        );
    }

    #[test]
    fn lying_username_length_is_an_error() {
        let bytes = Bytes::from_static(b"\x40abc");
        assert!(PasswordProtocolExtension::decode(bytes, Role::Client).is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let ext = PasswordProtocolExtension::Client {
            username: "alice".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{ext:?}").contains("hunter2"));
    }
}
