//! Legacy wsproxy: `<prefix><host>:<port>` opens one TCP connection, and the WebSocket's
//! messages are its bytes. Off by default; the same policy, timeouts and close reasons apply as
//! for Wisp streams (the reason is logged, since wsproxy has no way to tell the client).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_websockets::{Message, WebSocketStream};
use wisp_core::{CloseReason, StreamType};

use crate::resolve::{self, io_reason, Target};
use crate::server::Ctx;

/// Runs one wsproxy connection to `target` (`host:port`, IPv6 in brackets).
pub async fn run<S>(ctx: Arc<Ctx>, conn_id: u64, mut ws: WebSocketStream<S>, target: String)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let parsed = target
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)));
    let reason = match parsed {
        None => CloseReason::ServerStreamInvalidInfo,
        Some((host, port)) => {
            let timeout = ctx.config.limits.connect_timeout();
            match resolve::connect(&ctx.policy, StreamType::Tcp, &host, port, timeout).await {
                Err(r) => r,
                Ok((Target::Tcp(tcp), _)) => copy(&ctx, &mut ws, tcp).await,
                Ok((Target::Udp(_), _)) => CloseReason::ServerStreamInvalidInfo,
            }
        }
    };
    let _ = ws.close().await;
    ctx.metrics.stream_closed(StreamType::Tcp, reason);
    tracing::info!(
        conn = conn_id,
        kind = "wsproxy",
        target = %target,
        reason = %reason,
        ms = started.elapsed().as_millis() as u64,
        "stream closed"
    );
}

async fn copy<S>(ctx: &Ctx, ws: &mut WebSocketStream<S>, tcp: tokio::net::TcpStream) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let idle = ctx.config.limits.idle_timeout();
    let (mut rd, mut wr) = tcp.into_split();
    let mut buf = BytesMut::new();
    loop {
        buf.reserve(crate::forward::CHUNK);
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(m)) if m.is_binary() || m.is_text() => {
                    let data = m.into_payload();
                    ctx.metrics.bytes_to_targets.fetch_add(data.len() as u64, Relaxed);
                    if let Err(e) = wr.write_all(&data).await {
                        return io_reason(&e);
                    }
                }
                Some(Ok(m)) if m.is_close() => return CloseReason::Voluntary,
                Some(Ok(_)) => {}
                Some(Err(_)) => return CloseReason::Unexpected,
                None => return CloseReason::Voluntary,
            },
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => return CloseReason::Voluntary,
                Ok(n) => {
                    ctx.metrics.bytes_to_clients.fetch_add(n as u64, Relaxed);
                    if ws.send(Message::binary(buf.split().freeze())).await.is_err() {
                        return CloseReason::Unexpected;
                    }
                }
                Err(e) => return io_reason(&e),
            },
            () = tokio::time::sleep(idle) => return CloseReason::Voluntary,
        }
    }
}
