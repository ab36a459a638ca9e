//! Ed25519 key authentication (0x03).
//!
//! Server record: `required: u8 | algorithms: u8 (bit mask, 0b1 = Ed25519) | challenge`.
//! Client record: `algorithm: u8 | key hash | signature (64 bytes)`. Draft 6 says the key hash
//! is SHA-256 (32 bytes); epoxy sends SHA-512 (64 bytes). The two records differ in length
//! (97 and 129 bytes), so a server accepts both; a client sends SHA-256 unless told
//! [`KeyHash::Sha512`] for an epoxy server.
//!
//! The server's challenge comes from the caller, so that this crate needs no source of
//! randomness: pass fresh random bytes (64 is what the draft suggests) for every connection.

use std::any::Any;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256, Sha512};

use super::{AnyProtocolExtension, ProtocolExtension, ProtocolExtensionBuilder};
use crate::{Role, WispError};

/// Bit of the Ed25519 algorithm in the algorithm mask.
pub const ALGORITHM_ED25519: u8 = 0b0000_0001;
const SIGNATURE_LEN: usize = 64;

/// Which hash of its public key a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyHash {
    /// SHA-256, 32 bytes, as draft 6 says.
    #[default]
    Sha256,
    /// SHA-512, 64 bytes, as epoxy sends.
    Sha512,
}

impl KeyHash {
    /// The hash of `key` in this form.
    pub fn of(self, key: &VerifyingKey) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(key.as_bytes()).to_vec(),
            Self::Sha512 => Sha512::digest(key.as_bytes()).to_vec(),
        }
    }

    fn from_len(len: usize) -> Option<Self> {
        match len {
            32 => Some(Self::Sha256),
            64 => Some(Self::Sha512),
            _ => None,
        }
    }
}

/// A key-authentication record.
#[derive(Clone, PartialEq, Eq)]
pub enum CertAuthProtocolExtension {
    /// The server's record.
    Server {
        /// Whether the server requires authentication.
        required: bool,
        /// The algorithms the server accepts (bit mask).
        algorithms: u8,
        /// The bytes the client must sign.
        challenge: Bytes,
    },
    /// The client's record.
    Client {
        /// The algorithm the client used (bit mask with one bit set).
        algorithm: u8,
        /// SHA-256 or SHA-512 of the client's public key.
        key_hash: Bytes,
        /// The client's signature over the challenge.
        signature: Bytes,
    },
}

impl CertAuthProtocolExtension {
    /// The extension ID.
    pub const ID: u8 = 0x03;

    fn decode(bytes: Bytes, sender: Role) -> Result<Self, WispError> {
        let bad = |reason| WispError::InvalidExtensionPayload {
            id: Self::ID,
            reason,
        };
        match sender {
            Role::Server => {
                if bytes.len() < 2 {
                    return Err(bad("server record shorter than 2 bytes"));
                }
                Ok(Self::Server {
                    required: bytes[0] != 0,
                    algorithms: bytes[1],
                    challenge: bytes.slice(2..),
                })
            }
            Role::Client => {
                let hash_len = bytes
                    .len()
                    .checked_sub(1 + SIGNATURE_LEN)
                    .filter(|&l| KeyHash::from_len(l).is_some())
                    .ok_or(bad("client record is neither 97 nor 129 bytes long"))?;
                Ok(Self::Client {
                    algorithm: bytes[0],
                    key_hash: bytes.slice(1..1 + hash_len),
                    signature: bytes.slice(1 + hash_len..),
                })
            }
        }
    }
}

impl fmt::Debug for CertAuthProtocolExtension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Server {
                required,
                algorithms,
                challenge,
            } => f
                .debug_struct("CertAuthProtocolExtension::Server")
                .field("required", required)
                .field("algorithms", algorithms)
                .field("challenge_len", &challenge.len())
                .finish(),
            Self::Client {
                algorithm,
                key_hash,
                ..
            } => f
                .debug_struct("CertAuthProtocolExtension::Client")
                .field("algorithm", algorithm)
                .field("key_hash_len", &key_hash.len())
                .finish(),
        }
    }
}

impl ProtocolExtension for CertAuthProtocolExtension {
    fn id(&self) -> u8 {
        Self::ID
    }

    fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        match self {
            Self::Server {
                required,
                algorithms,
                challenge,
            } => {
                buf.put_u8(*required as u8);
                buf.put_u8(*algorithms);
                buf.put_slice(challenge);
            }
            Self::Client {
                algorithm,
                key_hash,
                signature,
            } => {
                buf.put_u8(*algorithm);
                buf.put_slice(key_hash);
                buf.put_slice(signature);
            }
        }
        buf.freeze()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

enum Config {
    Server {
        keys: Vec<VerifyingKey>,
        challenge: Bytes,
        required: bool,
    },
    Client {
        key: Box<SigningKey>,
        hash: KeyHash,
        challenge: Option<Bytes>,
    },
}

/// Configures key authentication.
pub struct CertAuthProtocolExtensionBuilder {
    config: Config,
}

impl CertAuthProtocolExtensionBuilder {
    /// A server that accepts signatures from `authorized_keys` over `challenge`, which must be
    /// fresh random bytes for each connection. Authentication is required unless
    /// [`required`](Self::required) says otherwise.
    pub fn new_server(authorized_keys: Vec<VerifyingKey>, challenge: impl Into<Bytes>) -> Self {
        Self {
            config: Config::Server {
                keys: authorized_keys,
                challenge: challenge.into(),
                required: true,
            },
        }
    }

    /// A client that signs the server's challenge with `key`, sending the SHA-256 key hash.
    pub fn new_client(key: SigningKey) -> Self {
        Self {
            config: Config::Client {
                key: Box::new(key),
                hash: KeyHash::Sha256,
                challenge: None,
            },
        }
    }

    /// Sets which key hash a client sends.
    pub fn key_hash(mut self, hash: KeyHash) -> Self {
        if let Config::Client { hash: h, .. } = &mut self.config {
            *h = hash;
        }
        self
    }

    /// Sets whether a server requires authentication.
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

    /// Checks a client's record against the authorized keys. Used by the handshake.
    pub(crate) fn verify(&self, record: &CertAuthProtocolExtension) -> Result<(), WispError> {
        let Config::Server {
            keys, challenge, ..
        } = &self.config
        else {
            return Err(WispError::CertAuthExtensionNoKey);
        };
        if keys.is_empty() {
            return Err(WispError::CertAuthExtensionNoKey);
        }
        let CertAuthProtocolExtension::Client {
            algorithm,
            key_hash,
            signature,
        } = record
        else {
            return Err(WispError::CertAuthExtensionSigInvalid);
        };
        if *algorithm != ALGORITHM_ED25519 {
            return Err(WispError::CertAuthExtensionSigInvalid);
        }
        let hash =
            KeyHash::from_len(key_hash.len()).ok_or(WispError::CertAuthExtensionSigInvalid)?;
        let signature =
            Signature::from_slice(signature).map_err(|_| WispError::CertAuthExtensionSigInvalid)?;
        let key = keys
            .iter()
            .find(|k| hash.of(k) == key_hash[..])
            .ok_or(WispError::CertAuthExtensionSigInvalid)?;
        key.verify_strict(challenge, &signature)
            .map_err(|_| WispError::CertAuthExtensionSigInvalid)
    }
}

impl fmt::Debug for CertAuthProtocolExtensionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.config {
            Config::Server { keys, required, .. } => write!(
                f,
                "CertAuthProtocolExtensionBuilder::Server {{ keys: {}, required: {required} }}",
                keys.len()
            ),
            Config::Client { hash, .. } => {
                write!(
                    f,
                    "CertAuthProtocolExtensionBuilder::Client {{ hash: {hash:?} }}"
                )
            }
        }
    }
}

impl ProtocolExtensionBuilder for CertAuthProtocolExtensionBuilder {
    fn id(&self) -> u8 {
        CertAuthProtocolExtension::ID
    }

    fn build_from_bytes(
        &mut self,
        bytes: Bytes,
        role: Role,
    ) -> Result<AnyProtocolExtension, WispError> {
        let ext = CertAuthProtocolExtension::decode(bytes, role.peer())?;
        if let (
            Config::Client { challenge, .. },
            CertAuthProtocolExtension::Server { challenge: c, .. },
        ) = (&mut self.config, &ext)
        {
            *challenge = Some(c.clone());
        }
        Ok(AnyProtocolExtension::new(ext))
    }

    fn build_to_extension(&mut self, _role: Role) -> Result<AnyProtocolExtension, WispError> {
        Ok(AnyProtocolExtension::new(match &self.config {
            Config::Server {
                challenge,
                required,
                ..
            } => CertAuthProtocolExtension::Server {
                required: *required,
                algorithms: ALGORITHM_ED25519,
                challenge: challenge.clone(),
            },
            Config::Client {
                key,
                hash,
                challenge,
            } => {
                let challenge = challenge
                    .as_ref()
                    .ok_or(WispError::CertAuthExtensionNoKey)?;
                CertAuthProtocolExtension::Client {
                    algorithm: ALGORITHM_ED25519,
                    key_hash: hash.of(&key.verifying_key()).into(),
                    signature: Bytes::copy_from_slice(&key.sign(challenge).to_bytes()),
                }
            }
        }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
