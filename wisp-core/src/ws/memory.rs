//! An in-memory transport: two connected ends whose queues hold a fixed number of messages, so
//! that tests can run both sides of a connection with as little buffering as they like.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::{Sink, Stream};

use super::Payload;
use crate::WispError;

/// The read half of an in-memory end.
#[derive(Debug)]
pub struct MemoryRead(mpsc::Receiver<Payload>);

/// The write half of an in-memory end.
#[derive(Debug)]
pub struct MemoryWrite(mpsc::Sender<Payload>);

/// Two connected ends, `(read, write)` each; each direction holds at most `capacity` messages
/// in flight (plus one per sender, as `futures::channel::mpsc` allows).
pub fn duplex(capacity: usize) -> ((MemoryRead, MemoryWrite), (MemoryRead, MemoryWrite)) {
    let (a_tx, a_rx) = mpsc::channel(capacity);
    let (b_tx, b_rx) = mpsc::channel(capacity);
    (
        (MemoryRead(b_rx), MemoryWrite(a_tx)),
        (MemoryRead(a_rx), MemoryWrite(b_tx)),
    )
}

impl Stream for MemoryRead {
    type Item = Result<Payload, WispError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0).poll_next(cx).map(|m| m.map(Ok))
    }
}

impl Sink<Payload> for MemoryWrite {
    type Error = WispError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        self.0
            .poll_ready(cx)
            .map_err(|_| WispError::WsImplSocketClosed)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Payload) -> Result<(), WispError> {
        self.0
            .start_send(item)
            .map_err(|_| WispError::WsImplSocketClosed)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        Pin::new(&mut self.0)
            .poll_flush(cx)
            .map_err(|_| WispError::WsImplSocketClosed)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        Pin::new(&mut self.0)
            .poll_close(cx)
            .map_err(|_| WispError::WsImplSocketClosed)
    }
}
