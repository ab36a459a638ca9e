//! Credentials: password users and Ed25519 authorized keys, loaded once at start.
//!
//! Passwords live only in [`Users`]; its `Debug` prints the user names and never a password,
//! and nothing in the server logs them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use ed25519_dalek::VerifyingKey;

use crate::config::{AuthConfig, ConfigError};

/// Parses an Ed25519 public key: 32 bytes as 64 hex digits or as base64 (standard or URL-safe,
/// padded or not).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|e| e.to_string())?
    } else {
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        engines
            .iter()
            .find_map(|e| e.decode(text).ok())
            .ok_or_else(|| format!("{text:?} is neither 64 hex digits nor base64"))?
    };
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("a public key is 32 bytes, this is {}", b.len()))?;
    VerifyingKey::from_bytes(&array).map_err(|_| "not a valid Ed25519 public key".to_string())
}

/// Password users.
#[derive(Clone, Default)]
pub struct Users(Arc<BTreeMap<String, String>>);

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Users {
    /// Users from the config and from its users file.
    pub fn load(auth: &AuthConfig) -> Result<Self, ConfigError> {
        let mut users = auth.users.clone();
        if let Some(path) = &auth.users_file {
            parse_users_file(path, &mut users)?;
        }
        Ok(Self(Arc::new(users)))
    }

    /// Whether there are any users.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `user` exists with `password`. The comparison takes the same time wherever the
    /// passwords differ, so timing does not reveal a prefix.
    pub fn check(&self, user: &str, password: &str) -> bool {
        match self.0.get(user) {
            Some(expected) => constant_time_eq(expected.as_bytes(), password.as_bytes()),
            None => false,
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_users_file(path: &Path, users: &mut BTreeMap<String, String>) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, pass)) = line.split_once(':') else {
            // The line number only: the line itself may hold a password.
            return Err(ConfigError::Invalid {
                key: "auth.users_file".into(),
                reason: format!("line {} is not `name:password`", n + 1),
            });
        };
        users.insert(user.to_owned(), pass.to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_in_hex_and_base64() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        let hex = hex::encode(key.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.as_bytes());
        assert_eq!(parse_public_key(&hex).unwrap(), key);
        assert_eq!(parse_public_key(&b64).unwrap(), key);
        assert!(parse_public_key("abcd").is_err());
    }

    #[test]
    fn users_check_and_never_print_passwords() {
        let mut cfg = AuthConfig::default();
        cfg.users.insert("alice".into(), "hunter2".into());
        let users = Users::load(&cfg).unwrap();
        assert!(users.check("alice", "hunter2"));
        assert!(!users.check("alice", "hunter3"));
        assert!(!users.check("bob", "hunter2"));
        assert!(!format!("{users:?}").contains("hunter2"));
    }
}
