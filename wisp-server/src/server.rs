//! The server: listeners, the life of one connection, and shutdown.
//!
//! Each accepted socket gets one task. It takes a connection slot, reads the HTTP head under
//! the handshake timeout, checks the per-IP limit and the `Origin`, upgrades, runs the Wisp
//! handshake (same deadline), and then hands every stream the client opens to a task of its
//! own in a per-connection [`JoinSet`], so that nothing outlives its connection. The mux's actor
//! runs in its own task; the connection task waits for it (bounded by the grace period) before
//! it ends.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wisp_core::extensions::cert::CertAuthProtocolExtensionBuilder;
use wisp_core::extensions::confirmation::StreamConfirmationProtocolExtensionBuilder;
use wisp_core::extensions::motd::MotdProtocolExtensionBuilder;
use wisp_core::extensions::password::PasswordProtocolExtensionBuilder;
use wisp_core::extensions::udp::UdpProtocolExtensionBuilder;
use wisp_core::extensions::AnyProtocolExtensionBuilder;
use wisp_core::ws::{TokioWebsocketsTransport, TransportExt};
use wisp_core::{CloseReason, MuxOptions, ServerMux, WispError, WispV2Handshake};

use crate::auth::{parse_public_key, Users};
use crate::config::{Config, ConfigError, EXTENSION_NAMES};
use crate::http::{self, Prefixed, Route};
use crate::limits::Limiter;
use crate::memory_bound::{
    human, machine_memory, MemoryBound, CONNECTION_RECEIVE_BUFFER, MAX_PENDING_CONTROL,
    WS_FLUSH_THRESHOLD,
};
use crate::metrics::Metrics;
use crate::opening::Opening;
use crate::policy::{Cidr, Policy};

/// What every connection shares.
#[derive(Debug)]
pub struct Ctx {
    pub(crate) config: Config,
    pub(crate) policy: Policy,
    users: Users,
    keys: Vec<VerifyingKey>,
    required_ids: Vec<u8>,
    pub(crate) metrics: Arc<Metrics>,
    limiter: Arc<Limiter>,
    trusted: Vec<Cidr>,
    trust_unix: bool,
    stop: CancellationToken,
    next_conn: AtomicU64,
}

/// Who is on the other end of an accepted socket.
#[derive(Debug, Clone, Copy)]
enum Peer {
    Tcp(SocketAddr),
    Unix,
}

/// A running server. Dropping it does not stop it; call [`Server::shutdown`].
#[derive(Debug)]
pub struct Server {
    ctx: Arc<Ctx>,
    local_addr: Option<SocketAddr>,
    unix_path: Option<PathBuf>,
    metrics_addr: Option<SocketAddr>,
    tracker: TaskTracker,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    #[error("cannot listen on {what}: {source}")]
    Bind {
        /// Which listener.
        what: String,
        /// Why.
        source: io::Error,
    },
}

impl Server {
    /// Validates `config`, binds every listener and starts serving.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let bound = MemoryBound::of(&config);
        tracing::info!(
            per_connection = %human(bound.per_connection),
            total = %human(bound.total),
            "worst-case buffer memory the limits allow"
        );
        if let Some(warning) = machine_memory().and_then(|m| bound.warning(m)) {
            tracing::warn!("{warning}");
        }
        let users = Users::load(&config.auth)?;
        let keys: Vec<VerifyingKey> = config
            .auth
            .authorized_keys
            .iter()
            .filter_map(|k| parse_public_key(k).ok())
            .collect();
        if config.auth.required && users.is_empty() && keys.is_empty() {
            return Err(ConfigError::Invalid {
                key: "auth.required".into(),
                reason: "authentication is required but no users or authorized keys are configured"
                    .into(),
            }
            .into());
        }
        if (!users.is_empty() || !keys.is_empty()) && !config.wisp.v2 {
            return Err(ConfigError::Invalid {
                key: "wisp.v2".into(),
                reason: "authentication needs Wisp v2".into(),
            }
            .into());
        }
        let required_ids = config
            .wisp
            .required_extensions
            .iter()
            .filter_map(|n| EXTENSION_NAMES.iter().find(|(name, _)| name == n))
            .map(|(_, id)| *id)
            .collect();
        let trusted = config
            .server
            .trusted_proxies
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
        let trust_unix = config.server.trusted_proxies.iter().any(|p| p == "unix");
        let ctx = Arc::new(Ctx {
            policy: Policy::new(&config.policy),
            limiter: Limiter::new(
                config.limits.max_connections,
                config.limits.max_connections_per_ip,
                config.limits.ipv6_client_prefix_len,
            ),
            users,
            keys,
            required_ids,
            metrics: Arc::new(Metrics::default()),
            trusted,
            trust_unix,
            stop: CancellationToken::new(),
            next_conn: AtomicU64::new(1),
            config,
        });
        let tracker = TaskTracker::new();

        let bind_err = |what: String| move |source| StartError::Bind { what, source };
        let mut local_addr = None;
        if let Some(addr) = ctx.config.server.bind {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(bind_err(addr.to_string()))?;
            local_addr = Some(listener.local_addr().map_err(bind_err(addr.to_string()))?);
            tracing::info!(addr = %local_addr.unwrap_or(addr), prefix = %ctx.config.server.prefix, "listening");
            tracker.spawn(accept_tcp(ctx.clone(), listener, tracker.clone()));
        }
        let mut unix_path = None;
        #[cfg(unix)]
        if let Some(path) = &ctx.config.server.unix_socket {
            // A socket file left by an earlier run would make bind fail; only a socket is
            // removed, never a regular file someone pointed us at by mistake.
            if std::fs::symlink_metadata(path).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            }) {
                let _ = std::fs::remove_file(path);
            }
            let listener = tokio::net::UnixListener::bind(path)
                .map_err(bind_err(path.display().to_string()))?;
            tracing::info!(path = %path.display(), "listening on unix socket");
            unix_path = Some(path.clone());
            tracker.spawn(accept_unix(ctx.clone(), listener, tracker.clone()));
        }
        let mut metrics_addr = None;
        if let Some(addr) = ctx.config.server.metrics_bind {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(bind_err(addr.to_string()))?;
            metrics_addr = listener.local_addr().ok();
            tracing::info!(addr = ?metrics_addr, "metrics endpoint");
            tracker.spawn(crate::metrics::serve(
                listener,
                ctx.metrics.clone(),
                ctx.stop.clone(),
            ));
        }
        Ok(Self {
            ctx,
            local_addr,
            unix_path,
            metrics_addr,
            tracker,
        })
    }

    /// The bound TCP address (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The Unix socket path, if listening on one.
    pub fn unix_path(&self) -> Option<&std::path::Path> {
        self.unix_path.as_deref()
    }

    /// The bound metrics address.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The server's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.ctx.metrics.clone()
    }

    /// Connections holding a slot now.
    pub fn connection_count(&self) -> usize {
        self.ctx.limiter.total()
    }

    /// Stops accepting, closes every connection with CLOSE 0x02 on stream 0, and waits for the
    /// connections to end, at most the configured grace period (plus a little for the tasks to
    /// be dropped). Returns whether everything ended within the grace period.
    pub async fn shutdown(self) -> bool {
        self.ctx.stop.cancel();
        self.tracker.close();
        let grace = self.ctx.config.limits.shutdown_grace();
        // Connection tasks bound their own wait by the grace period, so this is only a backstop.
        let clean = tokio::time::timeout(
            grace + grace / 2 + std::time::Duration::from_millis(100),
            self.tracker.wait(),
        )
        .await
        .is_ok();
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!(clean, "stopped");
        clean
    }
}

async fn accept_tcp(ctx: Arc<Ctx>, listener: TcpListener, tracker: TaskTracker) {
    loop {
        let (sock, peer) = tokio::select! {
            () = ctx.stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: wait a little instead of spinning on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = sock.set_nodelay(true);
        tracker.spawn(connection(ctx.clone(), sock, Peer::Tcp(peer)));
    }
}

#[cfg(unix)]
async fn accept_unix(ctx: Arc<Ctx>, listener: tokio::net::UnixListener, tracker: TaskTracker) {
    loop {
        let sock = tokio::select! {
            () = ctx.stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "unix accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tracker.spawn(connection(ctx.clone(), sock, Peer::Unix));
    }
}

/// One accepted socket, from the first byte to the end.
async fn connection<S>(ctx: Arc<Ctx>, mut sock: S, peer: Peer)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn_id = ctx.next_conn.fetch_add(1, Relaxed);
    let reject = |ctx: &Ctx| ctx.metrics.connections_rejected.fetch_add(1, Relaxed);
    let Some(_total) = ctx.limiter.try_total() else {
        reject(&ctx);
        tracing::info!(conn = conn_id, ?peer, "refused: connection limit");
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            http::respond_error(&mut sock, "503 Service Unavailable"),
        )
        .await;
        return;
    };
    let deadline = Instant::now() + ctx.config.limits.handshake_timeout();
    let head = tokio::select! {
        () = ctx.stop.cancelled() => return,
        r = tokio::time::timeout_at(deadline, http::read_head(&mut sock, ctx.config.limits.max_request_head)) => r,
    };
    let (req, leftover) = match head {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            reject(&ctx);
            tracing::debug!(conn = conn_id, ?peer, error = %e, "bad request");
            if matches!(e, http::HeadError::Malformed | http::HeadError::TooLarge) {
                let status = match e {
                    http::HeadError::TooLarge => "431 Request Header Fields Too Large",
                    _ => "400 Bad Request",
                };
                let _ =
                    tokio::time::timeout_at(deadline, http::respond_error(&mut sock, status)).await;
            }
            return;
        }
        Err(_) => {
            reject(&ctx);
            tracing::debug!(conn = conn_id, ?peer, "handshake timeout in the HTTP head");
            return;
        }
    };
    let (peer_ip, peer_trusted) = match peer {
        Peer::Tcp(a) => (Some(a.ip()), ctx.trusted.iter().any(|c| c.contains(a.ip()))),
        Peer::Unix => (None, ctx.trust_unix),
    };
    let client_ip = http::client_ip(peer_ip, peer_trusted, &ctx.trusted, &req);
    let _ip_slot = match client_ip {
        Some(ip) => match ctx.limiter.try_ip(ip) {
            Some(g) => Some(g),
            None => {
                reject(&ctx);
                tracing::info!(conn = conn_id, %ip, "refused: per-IP connection limit");
                let _ = tokio::time::timeout_at(
                    deadline,
                    http::respond_error(&mut sock, "429 Too Many Requests"),
                )
                .await;
                return;
            }
        },
        None => None,
    };

    if !req.is_upgrade() {
        let _ = tokio::time::timeout_at(
            deadline,
            http::serve_plain(&mut sock, &req, ctx.config.server.static_dir.as_deref()),
        )
        .await;
        return;
    }
    if !ctx.config.server.allowed_origins.is_empty() {
        if let Some(origin) = req.header("origin") {
            if !ctx
                .config
                .server
                .allowed_origins
                .iter()
                .any(|o| o == origin)
            {
                reject(&ctx);
                tracing::info!(conn = conn_id, ?client_ip, %origin, "refused: origin not allowed");
                let _ = tokio::time::timeout_at(
                    deadline,
                    http::respond_error(&mut sock, "403 Forbidden"),
                )
                .await;
                return;
            }
        }
    }
    let route = http::route(&ctx.config.server.prefix, &req.path);
    let wsproxy_target = match route {
        Route::Wisp => None,
        Route::WsProxy(target) if ctx.config.server.wsproxy => Some(target),
        _ => {
            reject(&ctx);
            let _ =
                tokio::time::timeout_at(deadline, http::respond_error(&mut sock, "404 Not Found"))
                    .await;
            return;
        }
    };
    let Some(key) = req.header("sec-websocket-key").map(str::to_owned) else {
        reject(&ctx);
        let _ =
            tokio::time::timeout_at(deadline, http::respond_error(&mut sock, "400 Bad Request"))
                .await;
        return;
    };
    if req.header("sec-websocket-version") != Some("13") {
        reject(&ctx);
        let _ = tokio::time::timeout_at(
            deadline,
            http::respond(
                &mut sock,
                "426 Upgrade Required",
                "text/plain",
                "Sec-WebSocket-Version: 13\r\n",
                b"426 Upgrade Required\n",
            ),
        )
        .await;
        return;
    }
    let subprotocol = req.subprotocol().map(str::to_owned);
    let opening = Opening::choose(
        &ctx.config.wisp,
        subprotocol.is_some(),
        req.header("origin").is_some(),
    );
    // wsproxy clients have no subprotocol of ours to echo; echoing theirs would be a lie.
    let echo = if wsproxy_target.is_some() {
        None
    } else {
        subprotocol.as_deref()
    };
    if tokio::time::timeout_at(deadline, http::write_switching(&mut sock, &key, echo))
        .await
        .map_or(true, |r| r.is_err())
    {
        reject(&ctx);
        return;
    }
    let limits = tokio_websockets::Limits::default()
        .max_payload_len(Some(ctx.config.limits.max_message_size));
    // Our packets are at most 64 KiB; one frame per message keeps every frame within it.
    // flush_threshold: tokio-websockets flushes from `poll_ready` once this many bytes are
    // queued (default 8 KiB), so with 64 KiB DATA packets every packet became its own writev
    // even though the actor feeds a batch and flushes once at its end. 256 KiB lets a batch of
    // packets leave in one writev (frames are queued by reference, not copied, so this adds
    // no buffer to an idle connection).
    let ws_config = tokio_websockets::Config::default()
        .frame_size(64 * 1024)
        .flush_threshold(WS_FLUSH_THRESHOLD);
    let ws = tokio_websockets::ServerBuilder::new()
        .limits(limits)
        .config(ws_config)
        .serve(Prefixed::new(leftover, sock));

    if let Some(target) = wsproxy_target {
        crate::wsproxy::run(ctx.clone(), conn_id, ws, target).await;
        return;
    }
    wisp(ctx, conn_id, client_ip, ws, opening, deadline).await;
}

fn handshake(ctx: &Ctx, opening: Opening) -> Option<WispV2Handshake> {
    if opening == Opening::V1 {
        return None;
    }
    let mut b = Vec::new();
    if ctx.config.policy.udp {
        b.push(AnyProtocolExtensionBuilder::new(
            UdpProtocolExtensionBuilder,
        ));
    }
    if let Some(motd) = &ctx.config.wisp.motd {
        b.push(AnyProtocolExtensionBuilder::new(
            MotdProtocolExtensionBuilder::Server(motd.clone()),
        ));
    }
    let required = ctx.config.auth.required;
    if !ctx.users.is_empty() {
        let users = ctx.users.clone();
        let password =
            PasswordProtocolExtensionBuilder::new_server(move |user: String, pass: String| {
                let ok = users.check(&user, &pass);
                async move {
                    if ok {
                        Ok(())
                    } else {
                        Err(WispError::PasswordExtensionCredsInvalid)
                    }
                }
            })
            .required(required);
        b.push(AnyProtocolExtensionBuilder::new(password));
    }
    if !ctx.keys.is_empty() {
        let mut challenge = [0u8; 64];
        // Without randomness the challenge could be replayed; refuse key auth rather than
        // offering it with a predictable challenge.
        if getrandom::fill(&mut challenge).is_ok() {
            let cert =
                CertAuthProtocolExtensionBuilder::new_server(ctx.keys.clone(), challenge.to_vec())
                    .required(required);
            b.push(AnyProtocolExtensionBuilder::new(cert));
        } else {
            tracing::error!("no randomness for the key-auth challenge; key auth not offered");
        }
    }
    if ctx.config.wisp.confirmation {
        b.push(AnyProtocolExtensionBuilder::new(
            StreamConfirmationProtocolExtensionBuilder,
        ));
    }
    Some(WispV2Handshake::new(b).with_legacy_order(opening == Opening::V2LegacyOrder))
}

async fn wisp<S>(
    ctx: Arc<Ctx>,
    conn_id: u64,
    client_ip: Option<IpAddr>,
    ws: tokio_websockets::WebSocketStream<S>,
    opening: Opening,
    deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();
    let l = &ctx.config.limits;
    let opts = MuxOptions {
        buffer_size: ctx.config.wisp.buffer_size,
        max_streams: l.max_streams_per_connection,
        stream_send_buffer: l.stream_send_buffer,
        stream_receive_buffer: l.stream_receive_buffer,
        connection_receive_buffer: CONNECTION_RECEIVE_BUFFER,
        max_pending_control: MAX_PENDING_CONTROL,
    };
    let v2 = handshake(&ctx, opening);
    let auth_required = ctx.config.auth.required;
    // In the legacy order the server has sent CONTINUE and INFO and waits for the client's
    // first packet to learn whether it speaks v2 (INFO) or v1 (anything else). A v1 client may
    // open its WebSocket early and stay quiet until the page needs a stream (wisp-js and
    // libcurl.js do), so that wait is bounded by the idle timeout, not the handshake timeout.
    // Clients that must authenticate get no such grace: they have to answer at once.
    let deadline = if opening == Opening::V2LegacyOrder && !auth_required {
        deadline.max(Instant::now() + ctx.config.limits.idle_timeout())
    } else {
        deadline
    };
    let started = tokio::select! {
        () = ctx.stop.cancelled() => return,
        r = tokio::time::timeout_at(deadline, async {
            let result = ServerMux::new_with_options(rx, tx, opts, v2).await?;
            result.with_required_extensions(&ctx.required_ids).await
        }) => r,
    };
    let (mux, actor) = match started {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            ctx.metrics.connections_rejected.fetch_add(1, Relaxed);
            tracing::info!(conn = conn_id, ?client_ip, error = %e, "wisp handshake failed");
            return;
        }
        Err(_) => {
            ctx.metrics.connections_rejected.fetch_add(1, Relaxed);
            tracing::info!(conn = conn_id, ?client_ip, "handshake timeout");
            return;
        }
    };
    let mut actor = tokio::spawn(actor);
    let grace = ctx.config.limits.shutdown_grace();
    let version = mux.get_protocol_version();
    if auth_required && version.major == 1 {
        // A v1 client cannot authenticate; with legacy order it got CONTINUE before we knew.
        tracing::info!(
            conn = conn_id,
            ?client_ip,
            "refused: v1 client, authentication required"
        );
        let _ = mux
            .close_with_reason(CloseReason::ExtensionsAuthRequired)
            .await;
        drop(mux);
        if tokio::time::timeout(grace, &mut actor).await.is_err() {
            actor.abort();
        }
        return;
    }
    ctx.metrics.connections_total.fetch_add(1, Relaxed);
    ctx.metrics.connections_open.fetch_add(1, Relaxed);
    tracing::info!(
        conn = conn_id,
        ?client_ip,
        version = %version,
        extensions = ?mux.get_extension_ids(),
        "connection open"
    );
    let mut streams = JoinSet::new();
    let idle = ctx.config.limits.idle_timeout();
    let mut last_busy = Instant::now();
    let why = loop {
        let empty = streams.is_empty();
        if !empty {
            last_busy = Instant::now();
        }
        tokio::select! {
            () = ctx.stop.cancelled() => {
                let _ = mux.close().await;
                break "shutdown";
            }
            s = mux.wait_for_stream() => match s {
                Some((connect, stream)) => {
                    streams.spawn(crate::forward::run(ctx.clone(), conn_id, connect, stream));
                }
                None => break "closed",
            },
            Some(_) = streams.join_next(), if !empty => {}
            () = tokio::time::sleep_until(last_busy + idle), if empty => {
                let _ = mux.close().await;
                break "idle";
            }
        }
    };
    drop(mux);
    // The actor flushes the CLOSE and ends; a client that stops reading cannot hold us past
    // the grace period.
    let actor_result = match tokio::time::timeout(grace, &mut actor).await {
        Ok(Ok(r)) => r.err().map(|e| e.to_string()),
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => {
            actor.abort();
            Some("actor did not finish within the grace period".into())
        }
    };
    // With the mux gone every stream ends at its next read or write; give them the grace
    // period to log their outcome, then drop what remains (a connect still in progress).
    let _ = tokio::time::timeout(grace, async {
        while streams.join_next().await.is_some() {}
    })
    .await;
    streams.shutdown().await;
    ctx.metrics.connections_open.fetch_sub(1, Relaxed);
    tracing::info!(conn = conn_id, ?client_ip, end = why, error = ?actor_result, "connection closed");
}
