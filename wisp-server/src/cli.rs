//! Command-line flags. Each one overrides the matching key of the configuration file, so a
//! deployment can keep one file and vary a port or a switch per instance.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::config::{Config, ConfigError};

/// A Wisp server: multiplexes TCP and UDP streams over WebSockets, refusing non-global
/// targets unless configured otherwise.
#[derive(Debug, Parser)]
#[command(name = "wisp-server", version, about, long_about = None)]
pub struct Cli {
    /// TOML configuration file; flags override its keys.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the default configuration as TOML and exit.
    #[arg(long)]
    pub print_default_config: bool,
    /// Check the configuration and exit.
    #[arg(long)]
    pub check_config: bool,

    /// TCP address to listen on [server.bind].
    #[arg(short, long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// Do not listen on TCP (with --unix-socket).
    #[arg(long)]
    pub no_tcp: bool,
    /// Unix socket path to listen on [server.unix_socket].
    #[arg(long, value_name = "PATH")]
    pub unix_socket: Option<PathBuf>,
    /// URL path prefix for WebSocket upgrades [server.prefix].
    #[arg(long, value_name = "PATH")]
    pub prefix: Option<String>,
    /// Directory served to plain GET requests [server.static_dir].
    #[arg(long, value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
    /// Log filter, e.g. `info` or `wisp_server=debug` [server.log_level]; RUST_LOG wins.
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Address of the Prometheus metrics endpoint [server.metrics_bind].
    #[arg(long, value_name = "ADDR")]
    pub metrics_bind: Option<SocketAddr>,
    /// Trusted reverse proxy (address, CIDR or `unix`); repeatable [server.trusted_proxies].
    #[arg(long, value_name = "CIDR")]
    pub trusted_proxy: Vec<String>,
    /// Allowed Origin; repeatable [server.allowed_origins].
    #[arg(long, value_name = "ORIGIN")]
    pub allowed_origin: Vec<String>,
    /// Serve legacy wsproxy under the prefix [server.wsproxy].
    #[arg(long)]
    pub wsproxy: bool,

    /// Speak only Wisp v1 [wisp.v2 = false].
    #[arg(long)]
    pub v1_only: bool,
    /// Message of the day [wisp.motd].
    #[arg(long, value_name = "TEXT")]
    pub motd: Option<String>,
    /// Do not offer stream-open confirmation [wisp.confirmation = false].
    #[arg(long)]
    pub no_confirmation: bool,

    /// File of `name:password` lines [auth.users_file].
    #[arg(long, value_name = "FILE")]
    pub users_file: Option<PathBuf>,
    /// Authorized Ed25519 public key, hex or base64; repeatable [auth.authorized_keys].
    #[arg(long, value_name = "KEY")]
    pub authorized_key: Vec<String>,
    /// Require authentication [auth.required].
    #[arg(long)]
    pub auth_required: bool,

    /// Allow loopback targets [policy.allow_loopback]. For local development only.
    #[arg(long)]
    pub allow_loopback: bool,
    /// Allow private targets (RFC 1918, CGNAT, fc00::/7) [policy.allow_private].
    #[arg(long)]
    pub allow_private: bool,
    /// Allow link-local targets (169.254/16, fe80::/10) [policy.allow_link_local].
    #[arg(long)]
    pub allow_link_local: bool,
    /// Refuse UDP streams [policy.udp = false].
    #[arg(long)]
    pub no_udp: bool,

    /// Connections at once [limits.max_connections].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Connections at once per client IP [limits.max_connections_per_ip].
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// Streams at once per connection [limits.max_streams_per_connection].
    #[arg(long, value_name = "N")]
    pub max_streams: Option<usize>,
    /// Handshake timeout in ms [limits.handshake_timeout_ms].
    #[arg(long, value_name = "MS")]
    pub handshake_timeout_ms: Option<u64>,
    /// Connect timeout in ms [limits.connect_timeout_ms].
    #[arg(long, value_name = "MS")]
    pub connect_timeout_ms: Option<u64>,
    /// Idle timeout in ms [limits.idle_timeout_ms].
    #[arg(long, value_name = "MS")]
    pub idle_timeout_ms: Option<u64>,
    /// Largest WebSocket message from a client, in bytes [limits.max_message_size].
    #[arg(long, value_name = "BYTES")]
    pub max_message_size: Option<usize>,
    /// Shutdown grace period in ms [limits.shutdown_grace_ms].
    #[arg(long, value_name = "MS")]
    pub shutdown_grace_ms: Option<u64>,
}

impl Cli {
    /// The configuration: the file (or the defaults) with the flags applied, validated.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        let s = &mut c.server;
        if self.bind.is_some() {
            s.bind = self.bind;
        }
        if self.no_tcp {
            s.bind = None;
        }
        set(&mut s.unix_socket, self.unix_socket.clone().map(Some));
        set(&mut s.prefix, self.prefix.clone());
        set(&mut s.static_dir, self.static_dir.clone().map(Some));
        set(&mut s.log_level, self.log_level.clone());
        set(&mut s.metrics_bind, self.metrics_bind.map(Some));
        s.trusted_proxies.extend(self.trusted_proxy.iter().cloned());
        s.allowed_origins
            .extend(self.allowed_origin.iter().cloned());
        s.wsproxy |= self.wsproxy;
        let w = &mut c.wisp;
        w.v2 &= !self.v1_only;
        set(&mut w.motd, self.motd.clone().map(Some));
        w.confirmation &= !self.no_confirmation;
        let a = &mut c.auth;
        set(&mut a.users_file, self.users_file.clone().map(Some));
        a.authorized_keys
            .extend(self.authorized_key.iter().cloned());
        a.required |= self.auth_required;
        let p = &mut c.policy;
        p.allow_loopback |= self.allow_loopback;
        p.allow_private |= self.allow_private;
        p.allow_link_local |= self.allow_link_local;
        p.udp &= !self.no_udp;
        let l = &mut c.limits;
        set(&mut l.max_connections, self.max_connections);
        set(&mut l.max_connections_per_ip, self.max_connections_per_ip);
        set(&mut l.max_streams_per_connection, self.max_streams);
        set(&mut l.handshake_timeout_ms, self.handshake_timeout_ms);
        set(&mut l.connect_timeout_ms, self.connect_timeout_ms);
        set(&mut l.idle_timeout_ms, self.idle_timeout_ms);
        set(&mut l.max_message_size, self.max_message_size);
        set(&mut l.shutdown_grace_ms, self.shutdown_grace_ms);
        c.validate()?;
        Ok(c)
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults() {
        let cli = Cli::parse_from([
            "wisp-server",
            "--bind",
            "127.0.0.1:0",
            "--allow-loopback",
            "--max-streams",
            "3",
        ]);
        let c = cli.config().unwrap();
        assert!(c.policy.allow_loopback);
        assert_eq!(c.limits.max_streams_per_connection, 3);
        assert_eq!(c.server.bind, Some("127.0.0.1:0".parse().unwrap()));
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
