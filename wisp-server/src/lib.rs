//! # wisp-server
//!
//! A Wisp server that is safe to put on the internet. It terminates the TCP and UDP streams a
//! Wisp client multiplexes over one WebSocket into real sockets, built on [`wisp_core`].
//!
//! What sets it apart from the servers it replaces is what it refuses by default: targets on
//! loopback, private, link-local and other non-global addresses (judged after resolving, so no
//! spelling of `127.0.0.1` gets through), unbounded resources (every connection, stream, buffer
//! and wait has a limit), and malformed clients (a bad packet ends at most that connection).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = wisp_server::Config::default();
//! config.server.bind = Some("127.0.0.1:0".parse()?);
//! let server = wisp_server::Server::start(config).await?;
//! println!("listening on {:?}", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! | module | what |
//! | --- | --- |
//! | [`config`] | the TOML configuration, defaults and validation |
//! | [`cli`] | command-line flags over the configuration |
//! | [`http`] | the upgrade request, routing, plain pages and the static directory |
//! | [`policy`] | which targets may be reached |
//! | [`resolve`] | resolving and connecting under the policy |
//! | [`forward`] | copying one stream both ways and choosing its close reason |
//! | [`limits`] | connection limits in total and per IP |
//! | [`memory_bound`] | the worst-case buffer memory the limits allow |
//! | [`wsproxy`] | the legacy one-stream-per-WebSocket protocol |
//! | [`metrics`] | counters and the Prometheus endpoint |
//! | [`shutdown`] | signals and the graceful stop |

pub mod auth;
pub mod cli;
pub mod config;
pub mod forward;
pub mod http;
pub mod limits;
pub mod memory_bound;
pub mod metrics;
pub mod opening;
pub mod policy;
pub mod resolve;
mod server;
pub mod shutdown;
pub mod wsproxy;

pub use config::Config;
pub use server::{Server, StartError};

/// Starts the server and runs it until SIGINT or SIGTERM, then shuts down within the grace
/// period.
pub async fn run(config: Config) -> Result<(), StartError> {
    let server = Server::start(config).await?;
    shutdown::signal().await;
    tracing::info!("signal received, shutting down");
    server.shutdown().await;
    Ok(())
}
