//! One stream: connect its target under the policy, then copy both ways until either end
//! finishes, and close the stream with the reason that says what happened.
//!
//! Reads from a TCP target go into buffers of up to [`CHUNK`] bytes, behind room for the DATA
//! packet's header ([`DataBuf`]), and are handed to the mux as they are: a bulk transfer becomes
//! large DATA packets without a copy. Data from the
//! client is written to the socket before the next packet is taken from the mux; the mux
//! returns credit as packets are taken, so credit follows what the target has accepted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use wisp_core::stream::{MuxStreamRead, MuxStreamWrite};
use wisp_core::{CloseReason, ConnectPacket, DataBuf, StreamType, WispError};

use crate::resolve::{self, io_reason, Target};
use crate::server::Ctx;

/// Largest read from a target: one DATA packet's payload within a 64 KiB WebSocket frame.
pub const CHUNK: usize = 65_530;

/// Counts bytes and remembers when anything last moved, for the idle timeout. Atomics, not
/// cells, because the stream's future must be `Send` to be spawned.
struct Activity<'a> {
    base: Instant,
    last_ms: AtomicU64,
    ctx: &'a Ctx,
    up: AtomicU64,
    down: AtomicU64,
}

impl<'a> Activity<'a> {
    fn new(ctx: &'a Ctx) -> Self {
        Self {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            ctx,
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        self.last_ms
            .store(self.base.elapsed().as_millis() as u64, Relaxed);
    }

    fn to_target(&self, n: usize) {
        self.touch();
        self.up.fetch_add(n as u64, Relaxed);
        self.ctx
            .metrics
            .bytes_to_targets
            .fetch_add(n as u64, Relaxed);
    }

    fn to_client(&self, n: usize) {
        self.touch();
        self.down.fetch_add(n as u64, Relaxed);
        self.ctx
            .metrics
            .bytes_to_clients
            .fetch_add(n as u64, Relaxed);
    }

    /// Resolves once nothing has moved for `idle`.
    async fn idle(&self, idle: Duration) {
        loop {
            let deadline = self.base + Duration::from_millis(self.last_ms.load(Relaxed)) + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// How a copy ended.
enum End {
    /// The client closed the stream (its reason, as it sent it).
    ClientClosed(Option<CloseReason>),
    /// The connection to the client is gone.
    ClientLost,
    /// The target finished cleanly.
    TargetEof,
    /// The target's socket failed.
    TargetError(std::io::Error),
    /// Nothing moved for the idle timeout.
    Idle,
}

/// Runs one stream to its end. Never panics on anything the client or target does.
pub async fn run<W: 'static>(
    ctx: Arc<Ctx>,
    conn_id: u64,
    connect: ConnectPacket,
    stream: wisp_core::stream::MuxStream<W>,
) {
    let started = Instant::now();
    let stream_id = stream.get_stream_id();
    let kind = connect.stream_type;
    let kind_name = match kind {
        StreamType::Tcp => "tcp",
        StreamType::Udp => "udp",
        StreamType::Unknown(_) => "unknown",
    };
    ctx.metrics.streams_open.fetch_add(1, Relaxed);
    let timeout = ctx.config.limits.connect_timeout();
    let connected = resolve::connect(&ctx.policy, kind, &connect.host, connect.port, timeout).await;
    let activity = Activity::new(&ctx);
    let (reason, target_addr): (CloseReason, Option<SocketAddr>) = match connected {
        Err(reason) => {
            // With confirmation negotiated this becomes the client's refusal of the open.
            let _ = stream.close(reason).await;
            (reason, None)
        }
        Ok((target, addr)) => {
            stream.confirm();
            let (rx, mut tx) = stream.into_split();
            let idle = ctx.config.limits.idle_timeout();
            let end = match target {
                Target::Tcp(tcp) => tcp_copy(rx, &mut tx, tcp, &activity, idle).await,
                Target::Udp(udp) => udp_copy(rx, &mut tx, udp, &activity, idle).await,
            };
            let reason = match end {
                End::ClientClosed(r) => r.unwrap_or(CloseReason::Voluntary),
                End::ClientLost => CloseReason::Unexpected,
                End::TargetEof | End::Idle => CloseReason::Voluntary,
                End::TargetError(ref e) => io_reason(e),
            };
            if !matches!(end, End::ClientClosed(_) | End::ClientLost) {
                // Queued behind the data already sent, so the client gets every byte first.
                let _ = tx.close(reason).await;
            }
            (reason, Some(addr))
        }
    };
    ctx.metrics.streams_open.fetch_sub(1, Relaxed);
    ctx.metrics.stream_closed(kind, reason);
    tracing::info!(
        conn = conn_id,
        stream = stream_id,
        kind = kind_name,
        host = %connect.host,
        port = connect.port,
        addr = ?target_addr,
        reason = %reason,
        bytes_up = activity.up.load(Relaxed),
        bytes_down = activity.down.load(Relaxed),
        ms = started.elapsed().as_millis() as u64,
        "stream closed"
    );
}

async fn tcp_copy<W>(
    mut rx: MuxStreamRead<W>,
    sink: &mut MuxStreamWrite<W>,
    tcp: TcpStream,
    activity: &Activity<'_>,
    idle: Duration,
) -> End {
    // Latency matters more than packet count for the interactive protocols tunnelled here.
    let _ = tcp.set_nodelay(true);
    let (mut target_rd, mut target_wr) = tcp.into_split();
    let up = async {
        while let Some(item) = rx.next().await {
            let Ok(data) = item else {
                return End::ClientLost;
            };
            let n = data.len();
            if let Err(e) = target_wr.write_all(&data).await {
                return End::TargetError(e);
            }
            activity.to_target(n);
        }
        // The client closed the stream: nothing more will go to the target.
        let _ = target_wr.shutdown().await;
        End::ClientClosed(rx.get_close_reason())
    };
    let down = async {
        loop {
            let mut buf = DataBuf::with_capacity(CHUNK);
            match target_rd.read_buf(buf.buf_mut()).await {
                Ok(0) => return End::TargetEof,
                Ok(n) => {
                    // `feed_buf` is a `feed`, not a `send`: it waits only while the stream's send queue is full
                    // (`stream_send_buffer`), where `send` would also wait for the actor to
                    // take this packet before the next read from the target. With `send` each
                    // stream had one packet in flight between target and WebSocket, so the
                    // target read, the actor's write and the wake-ups between them ran in
                    // lock step. Nothing needs a flush here: the actor sends whatever is
                    // queued, and a close is queued behind the data.
                    if sink.feed_buf(buf).await.is_err() {
                        return End::ClientLost;
                    }
                    activity.to_client(n);
                }
                Err(e) => return End::TargetError(e),
            }
        }
    };
    tokio::select! {
        e = up => e,
        e = down => e,
        () = activity.idle(idle) => End::Idle,
    }
}

async fn udp_copy<W>(
    mut rx: MuxStreamRead<W>,
    sink: &mut MuxStreamWrite<W>,
    udp: UdpSocket,
    activity: &Activity<'_>,
    idle: Duration,
) -> End {
    let up = async {
        while let Some(item) = rx.next().await {
            let Ok(data) = item else {
                return End::ClientLost;
            };
            // A datagram the kernel will not take is lost, as UDP allows.
            if udp.send(&data).await.is_ok() {
                activity.to_target(data.len());
            }
        }
        End::ClientClosed(rx.get_close_reason())
    };
    let down = async {
        let mut buf = vec![0u8; 65_536];
        loop {
            match udp.recv(&mut buf).await {
                Ok(n) => match sink.send(Bytes::copy_from_slice(&buf[..n])).await {
                    Ok(()) => activity.to_client(n),
                    Err(WispError::DatagramTooLarge(_)) => {}
                    Err(_) => return End::ClientLost,
                },
                // An ICMP port unreachable for an earlier datagram: UDP goes on.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => return End::TargetError(e),
            }
        }
    };
    tokio::select! {
        e = up => e,
        e = down => e,
        () = activity.idle(idle) => End::Idle,
    }
}
