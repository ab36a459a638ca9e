//! The tokio-websockets adapter.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures::{Sink, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_websockets::{CloseCode, Message, WebSocketStream};

use super::{Payload, TransportExt};
use crate::WispError;

/// A tokio-websockets stream as a Wisp transport. Split it with
/// [`TransportExt::split_fast`].
///
/// Message size limits are the stream's own (`tokio_websockets::Limits`); set
/// `max_payload_len` on the builder to bound what one peer can make the other buffer.
#[derive(Debug)]
pub struct TokioWebsocketsTransport<S>(pub WebSocketStream<S>);

/// The stream both halves share. A plain mutex rather than `StreamExt::split`, because the read
/// half must be able to flush (see [`TokioWebsocketsRead`]); it is uncontended when, as in the
/// mux, one task drives both halves, and it is never held across an `.await`.
type Shared<S> = Arc<Mutex<WebSocketStream<S>>>;

fn lock<S>(shared: &Shared<S>) -> MutexGuard<'_, WebSocketStream<S>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The read half of a [`TokioWebsocketsTransport`].
///
/// tokio-websockets answers every ping by queueing a pong, without bound. A peer that sends
/// pings and never reads would grow that queue until the process runs out of memory, so after a
/// ping this half reads nothing more until the pong is flushed: the peer's pings then back up in
/// its own socket instead of in our memory.
#[derive(Debug)]
pub struct TokioWebsocketsRead<S> {
    shared: Shared<S>,
    pong_owed: bool,
}

/// The write half of a [`TokioWebsocketsTransport`].
#[derive(Debug)]
pub struct TokioWebsocketsWrite<S>(Shared<S>);

impl<S: AsyncRead + AsyncWrite + Unpin + 'static> TransportExt for TokioWebsocketsTransport<S> {
    type Read = TokioWebsocketsRead<S>;
    type Write = TokioWebsocketsWrite<S>;

    fn split_fast(self) -> (Self::Read, Self::Write) {
        let shared = Arc::new(Mutex::new(self.0));
        (
            TokioWebsocketsRead {
                shared: shared.clone(),
                pong_owed: false,
            },
            TokioWebsocketsWrite(shared),
        )
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for TokioWebsocketsRead<S> {
    type Item = Result<Payload, WispError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let mut ws = lock(&this.shared);
        loop {
            if this.pong_owed {
                if let Err(e) = futures::ready!(Sink::<Message>::poll_flush(Pin::new(&mut *ws), cx))
                {
                    return Poll::Ready(Some(Err(WispError::ws(e))));
                }
                this.pong_owed = false;
            }
            let message = match futures::ready!(ws.poll_next_unpin(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e @ tokio_websockets::Error::PayloadTooLong { .. })) => {
                    // A message over the limit in fragments. tokio-websockets closes with 1009
                    // when one frame is over the limit, but reports this case without closing,
                    // and the close that follows would say 1000. Queue the 1009 now; closing the
                    // transport flushes it.
                    let too_big =
                        Message::close(Some(CloseCode::MESSAGE_TOO_BIG), "message too big");
                    let _ = Pin::new(&mut *ws).start_send(too_big);
                    return Poll::Ready(Some(Err(WispError::ws(e))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(WispError::ws(e)))),
                Some(Ok(message)) => message,
            };
            if message.is_binary() {
                return Poll::Ready(Some(Ok(message.into_payload().into())));
            }
            if message.is_text() {
                return Poll::Ready(Some(Err(WispError::WsFrameInvalidType)));
            }
            if message.is_close() {
                return Poll::Ready(None);
            }
            // tokio-websockets has queued the pong; it must leave before we read on.
            this.pong_owed = message.is_ping();
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Payload> for TokioWebsocketsWrite<S> {
    type Error = WispError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        Sink::<Message>::poll_ready(Pin::new(&mut *lock(&self.0)), cx).map_err(WispError::ws)
    }
    fn start_send(self: Pin<&mut Self>, item: Payload) -> Result<(), WispError> {
        Pin::new(&mut *lock(&self.0))
            .start_send(Message::binary(item))
            .map_err(WispError::ws)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        Sink::<Message>::poll_flush(Pin::new(&mut *lock(&self.0)), cx).map_err(WispError::ws)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        Sink::<Message>::poll_close(Pin::new(&mut *lock(&self.0)), cx).map_err(WispError::ws)
    }
}
