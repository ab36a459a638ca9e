//! Configuration: one TOML file, every field optional with a strict default.
//!
//! The defaults are what a public server should run with: only global addresses are reachable,
//! every resource has a limit, legacy wsproxy is off. [`Config::validate`] checks what serde
//! cannot (ranges, parse-able addresses and keys) and names the offending key in its error, so an
//! operator can find it in the file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::policy::{Cidr, PortRange};

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listeners, HTTP behaviour and logging.
    pub server: ServerConfig,
    /// The Wisp protocol: version and extensions.
    pub wisp: WispConfig,
    /// Authentication: password users and Ed25519 keys.
    pub auth: AuthConfig,
    /// Which targets streams may reach.
    pub policy: PolicyConfig,
    /// Resource limits and timeouts.
    pub limits: LimitsConfig,
}

/// Listeners, HTTP behaviour and logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// TCP address to listen on. Port 0 picks a free port.
    pub bind: Option<SocketAddr>,
    /// Unix socket path to listen on as well (a stale socket file is replaced).
    pub unix_socket: Option<PathBuf>,
    /// URL path under which WebSocket upgrades are served (with or without trailing slash).
    pub prefix: String,
    /// Directory served to plain GET requests; without it they get a short page.
    pub static_dir: Option<PathBuf>,
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing filter directive).
    /// `RUST_LOG` overrides it.
    pub log_level: String,
    /// Address of the Prometheus metrics endpoint; none by default.
    pub metrics_bind: Option<SocketAddr>,
    /// Peers (addresses or CIDR ranges) whose `X-Forwarded-For` / `X-Real-IP` are believed.
    /// The word `unix` trusts every peer of the Unix socket.
    pub trusted_proxies: Vec<String>,
    /// If not empty, browser requests (those with an `Origin` header) must carry one of these.
    pub allowed_origins: Vec<String>,
    /// Serve legacy wsproxy (`<prefix><host>:<port>`, one TCP stream per WebSocket).
    pub wsproxy: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 4000))),
            unix_socket: None,
            prefix: "/".into(),
            static_dir: None,
            log_level: "info".into(),
            metrics_bind: None,
            trusted_proxies: Vec::new(),
            allowed_origins: Vec::new(),
            wsproxy: false,
        }
    }
}

/// The Wisp protocol: version and extensions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WispConfig {
    /// Speak Wisp v2 (extensions); v1-only when false.
    pub v2: bool,
    /// To a client that sent no `Sec-WebSocket-Protocol` header, send INFO after the initial
    /// CONTINUE (the legacy order: a v2 client without the header still gets v2, a v1 client
    /// that ignores unknown packets goes on in v1). Browsers are excepted unless
    /// `legacy_order_for_browsers` is set (see `opening.rs`). Set it to false to answer every
    /// such client as a plain v1 server, as draft 6 says.
    pub v2_without_subprotocol: bool,
    /// Use the legacy order also for header-less clients whose request carries `Origin`
    /// (browsers). Off by default: the browser clients most pages ship (epoxy-tls 1.5, and 2.x
    /// with `wisp_v2 = false`) end on the INFO, so browsers without the header get plain v1.
    pub legacy_order_for_browsers: bool,
    /// Message of the day sent to v2 clients that ask for it.
    pub motd: Option<String>,
    /// Offer stream-open confirmation (0x05).
    pub confirmation: bool,
    /// Extensions a v2 client must support: any of `udp`, `password`, `key`, `motd`,
    /// `confirmation`. A client lacking one is closed with 0x04.
    pub required_extensions: Vec<String>,
    /// Credit per TCP stream, in packets (CONTINUE).
    pub buffer_size: u32,
}

impl Default for WispConfig {
    fn default() -> Self {
        Self {
            v2: true,
            v2_without_subprotocol: true,
            legacy_order_for_browsers: false,
            motd: None,
            confirmation: true,
            required_extensions: Vec::new(),
            buffer_size: 64,
        }
    }
}

/// Authentication.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether a v2 client must authenticate (by password or by key) when auth is configured.
    pub required: bool,
    /// Password users, `name = "password"`.
    pub users: BTreeMap<String, String>,
    /// A file of further users, one `name:password` per line (`#` starts a comment).
    pub users_file: Option<PathBuf>,
    /// Ed25519 public keys allowed to log in, each 32 bytes in hex or base64.
    pub authorized_keys: Vec<String>,
}

/// Which targets streams may reach. Checks run on the resolved addresses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Allow loopback targets (127.0.0.0/8, ::1, and their mapped forms).
    pub allow_loopback: bool,
    /// Allow private targets (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7).
    pub allow_private: bool,
    /// Allow link-local targets (169.254/16, fe80::/10). Cloud metadata lives here.
    pub allow_link_local: bool,
    /// Address ranges allowed even though they are not global (`10.1.0.0/16`, `::1`).
    pub allow_cidrs: Vec<String>,
    /// Address ranges refused even though they are global.
    pub block_cidrs: Vec<String>,
    /// Host patterns whose addresses skip the address checks (`example.com`, `*.example.com`).
    pub allow_hosts: Vec<String>,
    /// Host patterns refused before resolving.
    pub block_hosts: Vec<String>,
    /// If not empty, only these ports (`443`, `8000-8100`) may be reached.
    pub allow_ports: Vec<String>,
    /// Ports that may never be reached.
    pub block_ports: Vec<String>,
    /// Allow UDP streams at all.
    pub udp: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            allow_private: false,
            allow_link_local: false,
            allow_cidrs: Vec::new(),
            block_cidrs: Vec::new(),
            allow_hosts: Vec::new(),
            block_hosts: Vec::new(),
            allow_ports: Vec::new(),
            // SMTP: an open relay for spam is the first thing abusers look for.
            block_ports: vec!["25".into()],
            udp: true,
        }
    }
}

/// Resource limits and timeouts. Times are in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// WebSocket connections open at once, in total.
    pub max_connections: usize,
    /// WebSocket connections open at once per client IP.
    pub max_connections_per_ip: usize,
    /// For `max_connections_per_ip`, IPv6 addresses that share this many leading bits are one
    /// client (1 to 128). 64 by default: one host usually holds a whole /64.
    pub ipv6_client_prefix_len: u8,
    /// Streams open at once per connection; more are refused with 0x49.
    pub max_streams_per_connection: usize,
    /// Time for the HTTP upgrade and the Wisp handshake together.
    pub handshake_timeout_ms: u64,
    /// Time to connect to a target (each resolved address).
    pub connect_timeout_ms: u64,
    /// A stream with no data either way for this long is closed; a connection with no streams
    /// for this long is closed too.
    pub idle_timeout_ms: u64,
    /// Largest WebSocket message accepted from a client, in bytes.
    pub max_message_size: usize,
    /// Bytes queued per stream toward the client before reading its target pauses.
    pub stream_send_buffer: usize,
    /// Bytes of UDP datagrams queued per stream toward the target before more are dropped.
    pub stream_receive_buffer: usize,
    /// Largest HTTP request head, in bytes.
    pub max_request_head: usize,
    /// How long shutdown waits for connections to close before dropping them.
    pub shutdown_grace_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_ip: 16,
            ipv6_client_prefix_len: 64,
            max_streams_per_connection: 128,
            handshake_timeout_ms: 10_000,
            connect_timeout_ms: 10_000,
            idle_timeout_ms: 300_000,
            // Large enough for the 256 KiB request bodies epoxy's fetch sends as one packet;
            // what it costs is bounded by the mux's byte caps, not by this size.
            max_message_size: 1024 * 1024,
            stream_send_buffer: 256 * 1024,
            stream_receive_buffer: 1024 * 1024,
            max_request_head: 16 * 1024,
            shutdown_grace_ms: 5_000,
        }
    }
}

impl LimitsConfig {
    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

/// A configuration error, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML did not parse or had a wrong or unknown key.
    #[error("invalid configuration: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is out of range or malformed.
    #[error("invalid value for `{key}`: {reason}")]
    Invalid {
        /// The dotted key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The extension names accepted in `wisp.required_extensions`, with their IDs.
pub const EXTENSION_NAMES: &[(&str, u8)] = &[
    ("udp", 0x01),
    ("password", 0x02),
    ("key", 0x03),
    ("motd", 0x04),
    ("confirmation", 0x05),
];

impl Config {
    /// Parses TOML text and validates it.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// The default configuration as commented-free TOML.
    pub fn default_toml() -> String {
        toml::to_string_pretty(&Self::default()).expect("the default config serializes")
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if s.bind.is_none() && s.unix_socket.is_none() {
            return Err(invalid(
                "server.bind",
                "no listener: set server.bind or server.unix_socket",
            ));
        }
        if !s.prefix.starts_with('/') {
            return Err(invalid("server.prefix", "must start with `/`"));
        }
        if s.prefix.contains(['?', '#']) {
            return Err(invalid("server.prefix", "must not contain `?` or `#`"));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&s.log_level) {
            return Err(invalid("server.log_level", e.to_string()));
        }
        for p in &s.trusted_proxies {
            if p != "unix" {
                p.parse::<Cidr>()
                    .map_err(|e| invalid("server.trusted_proxies", format!("{p:?}: {e}")))?;
            }
        }
        for (key, list) in [
            ("policy.allow_cidrs", &self.policy.allow_cidrs),
            ("policy.block_cidrs", &self.policy.block_cidrs),
        ] {
            for c in list {
                c.parse::<Cidr>()
                    .map_err(|e| invalid(key, format!("{c:?}: {e}")))?;
            }
        }
        for (key, list) in [
            ("policy.allow_ports", &self.policy.allow_ports),
            ("policy.block_ports", &self.policy.block_ports),
        ] {
            for p in list {
                p.parse::<PortRange>()
                    .map_err(|e| invalid(key, format!("{p:?}: {e}")))?;
            }
        }
        for name in &self.wisp.required_extensions {
            if !EXTENSION_NAMES.iter().any(|(n, _)| n == name) {
                return Err(invalid(
                    "wisp.required_extensions",
                    format!("unknown extension {name:?} (known: udp, password, key, motd, confirmation)"),
                ));
            }
        }
        if self.wisp.buffer_size == 0 {
            return Err(invalid("wisp.buffer_size", "must be at least 1"));
        }
        for key in &self.auth.authorized_keys {
            crate::auth::parse_public_key(key).map_err(|e| invalid("auth.authorized_keys", e))?;
        }
        for name in self.auth.users.keys() {
            if name.is_empty() || name.len() > 255 {
                return Err(invalid("auth.users", "user names must be 1 to 255 bytes"));
            }
        }
        let l = &self.limits;
        for (key, v) in [
            ("limits.max_connections", l.max_connections),
            ("limits.max_connections_per_ip", l.max_connections_per_ip),
            (
                "limits.max_streams_per_connection",
                l.max_streams_per_connection,
            ),
            ("limits.stream_send_buffer", l.stream_send_buffer),
            ("limits.stream_receive_buffer", l.stream_receive_buffer),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        for (key, v) in [
            ("limits.handshake_timeout_ms", l.handshake_timeout_ms),
            ("limits.connect_timeout_ms", l.connect_timeout_ms),
            ("limits.idle_timeout_ms", l.idle_timeout_ms),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1 millisecond"));
            }
        }
        if !(1..=128).contains(&l.ipv6_client_prefix_len) {
            return Err(invalid(
                "limits.ipv6_client_prefix_len",
                "must be 1 to 128 (bits of an IPv6 address)",
            ));
        }
        // A DATA packet from a client is 5 header bytes plus payload: below 1 KiB of payload
        // every client would be cut off.
        if l.max_message_size < 1024 {
            return Err(invalid("limits.max_message_size", "must be at least 1024"));
        }
        if l.max_request_head < 1024 {
            return Err(invalid("limits.max_request_head", "must be at least 1024"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips_and_validates() {
        let text = Config::default_toml();
        let back = Config::from_toml(&text).unwrap();
        assert!(!back.policy.allow_loopback);
        assert_eq!(back.limits.max_streams_per_connection, 128);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[policy]\nallow_loopbak = true\n").unwrap_err();
        assert!(err.to_string().contains("allow_loopbak"), "{err}");
    }

    #[test]
    fn bad_value_is_named() {
        let err = Config::from_toml("[policy]\nallow_cidrs = [\"10.0.0.0/99\"]\n").unwrap_err();
        assert!(err.to_string().contains("policy.allow_cidrs"), "{err}");
        let err = Config::from_toml("[limits]\nmax_connections = 0\n").unwrap_err();
        assert!(err.to_string().contains("limits.max_connections"), "{err}");
        let err = Config::from_toml("[auth]\nauthorized_keys = [\"zz\"]\n").unwrap_err();
        assert!(err.to_string().contains("auth.authorized_keys"), "{err}");
        for bad in [0, 129] {
            let err = Config::from_toml(&format!("[limits]\nipv6_client_prefix_len = {bad}\n"))
                .unwrap_err();
            assert!(
                err.to_string().contains("limits.ipv6_client_prefix_len"),
                "{err}"
            );
        }
        let ok = Config::from_toml("[limits]\nipv6_client_prefix_len = 56\n").unwrap();
        assert_eq!(ok.limits.ipv6_client_prefix_len, 56);
    }
}
