//! The tokio-websockets adapter.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{SplitSink, SplitStream};
use futures::{Sink, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_websockets::{Message, WebSocketStream};

use super::{Payload, TransportExt};
use crate::WispError;

/// A tokio-websockets stream as a Wisp transport. Split it with
/// [`TransportExt::split_fast`].
///
/// Message size limits are the stream's own (`tokio_websockets::Limits`); set
/// `max_payload_len` on the builder to bound what one peer can make the other buffer.
#[derive(Debug)]
pub struct TokioWebsocketsTransport<S>(pub WebSocketStream<S>);

/// The read half of a [`TokioWebsocketsTransport`].
#[derive(Debug)]
pub struct TokioWebsocketsRead<S>(SplitStream<WebSocketStream<S>>);

/// The write half of a [`TokioWebsocketsTransport`].
#[derive(Debug)]
pub struct TokioWebsocketsWrite<S>(SplitSink<WebSocketStream<S>, Message>);

impl<S: AsyncRead + AsyncWrite + Unpin + 'static> TransportExt for TokioWebsocketsTransport<S> {
    type Read = TokioWebsocketsRead<S>;
    type Write = TokioWebsocketsWrite<S>;

    /// Splits the stream. Both halves share the stream through an uncontended two-party lock,
    /// which costs an atomic operation per call when (as in the mux) one task drives both.
    fn split_fast(self) -> (Self::Read, Self::Write) {
        let (write, read) = self.0.split();
        (TokioWebsocketsRead(read), TokioWebsocketsWrite(write))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for TokioWebsocketsRead<S> {
    type Item = Result<Payload, WispError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let message = match futures::ready!(self.0.poll_next_unpin(cx)) {
                None => return Poll::Ready(None),
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
            // Pings are answered by tokio-websockets itself; pongs need nothing.
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Payload> for TokioWebsocketsWrite<S> {
    type Error = WispError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        Pin::new(&mut self.0).poll_ready(cx).map_err(WispError::ws)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Payload) -> Result<(), WispError> {
        Pin::new(&mut self.0)
            .start_send(Message::binary(item))
            .map_err(WispError::ws)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        Pin::new(&mut self.0).poll_flush(cx).map_err(WispError::ws)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        Pin::new(&mut self.0).poll_close(cx).map_err(WispError::ws)
    }
}
