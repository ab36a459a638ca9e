//! Stream handles: [`MuxStream`] and its halves [`MuxStreamRead`] and [`MuxStreamWrite`],
//! the close handle [`MuxStreamCloser`], and the byte-stream adapter [`MuxStreamAsyncRW`].
//!
//! The read half is a `Stream` of payloads: TCP data in the chunks it arrived in, or one UDP
//! datagram per item. It ends (`None`) when the stream closes; the reason is then in
//! [`MuxStreamRead::get_close_reason`]. If the connection is lost instead, it yields one error
//! first. The write half is a `Sink` of payloads; TCP payloads larger than one packet are split,
//! UDP datagrams never are. Dropping the write half closes the stream with 0x02 behind the data
//! already written.

use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures::{AsyncBufRead, AsyncRead, AsyncWrite, Sink, Stream};

use crate::data_buf::DataBuf;
use crate::mux::data_packets::DataPackets;
use crate::mux::state::SlotId;
use crate::mux::Shared;
use crate::packet::{CloseReason, StreamType};
use crate::WispError;

/// The part every handle of a stream holds.
#[derive(Clone)]
struct Handle {
    shared: Arc<Shared>,
    slot: SlotId,
    wire_id: u32,
    /// UDP: each payload is one datagram, never split.
    datagram: bool,
}

impl Handle {
    fn close_reason(&self) -> Option<CloseReason> {
        self.shared.lock().close_reason(self.slot)
    }

    fn close(&self, reason: CloseReason) -> Result<(), WispError> {
        self.shared
            .with(|state, w| state.close_stream(self.slot, reason, w))
    }
}

/// A Wisp stream: `Stream` of received payloads and `Sink` of payloads to send.
pub struct MuxStream<W> {
    read: MuxStreamRead<W>,
    write: MuxStreamWrite<W>,
}

impl<W> MuxStream<W> {
    pub(crate) fn new(shared: Arc<Shared>, slot: SlotId, wire_id: u32, kind: StreamType) -> Self {
        let handle = Handle {
            shared,
            slot,
            wire_id,
            datagram: kind == StreamType::Udp,
        };
        Self {
            read: MuxStreamRead {
                handle: handle.clone(),
                _transport: PhantomData,
            },
            write: MuxStreamWrite {
                handle,
                _transport: PhantomData,
            },
        }
    }

    /// The stream ID on the wire.
    pub fn get_stream_id(&self) -> u32 {
        self.read.handle.wire_id
    }

    /// See [`MuxStreamWrite::feed_buf`].
    pub async fn feed_buf(&mut self, buf: DataBuf) -> Result<(), WispError> {
        self.write.feed_buf(buf).await
    }

    /// Why the stream closed, once it has.
    pub fn get_close_reason(&self) -> Option<CloseReason> {
        self.read.get_close_reason()
    }

    /// Closes the stream with `reason`, after the data already written.
    pub async fn close(&self, reason: CloseReason) -> Result<(), WispError> {
        self.write.close(reason).await
    }

    /// A handle that can close the stream from elsewhere.
    pub fn get_close_handle(&self) -> MuxStreamCloser<W> {
        self.write.get_close_handle()
    }

    /// Server: sends the stream-open confirmation now, if it is negotiated and not yet sent.
    /// Call it once the target socket is connected; otherwise it is sent at the first read or
    /// write.
    pub fn confirm(&self) {
        let h = &self.read.handle;
        h.shared.with(|state, w| state.confirm(h.slot, w));
    }

    /// Splits into independent read and write halves.
    pub fn into_split(self) -> (MuxStreamRead<W>, MuxStreamWrite<W>) {
        (self.read, self.write)
    }

    /// A byte stream: `futures::AsyncRead + AsyncBufRead + AsyncWrite`.
    pub fn into_async_rw(self) -> MuxStreamAsyncRW<W> {
        MuxStreamAsyncRW {
            stream: self,
            current: Bytes::new(),
        }
    }
}

impl<W> Stream for MuxStream<W> {
    type Item = Result<Bytes, WispError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.read).poll_next(cx)
    }
}

impl<W> Sink<Bytes> for MuxStream<W> {
    type Error = WispError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        Pin::new(&mut self.write).poll_ready(cx)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Bytes) -> Result<(), WispError> {
        Pin::new(&mut self.write).start_send(item)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        Pin::new(&mut self.write).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        Pin::new(&mut self.write).poll_close(cx)
    }
}

/// The read half of a stream.
pub struct MuxStreamRead<W> {
    handle: Handle,
    _transport: PhantomData<fn() -> W>,
}

impl<W> MuxStreamRead<W> {
    /// The stream ID on the wire.
    pub fn get_stream_id(&self) -> u32 {
        self.handle.wire_id
    }

    /// Why the stream closed, once it has.
    pub fn get_close_reason(&self) -> Option<CloseReason> {
        self.handle.close_reason()
    }
}

impl<W> Stream for MuxStreamRead<W> {
    type Item = Result<Bytes, WispError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let h = &self.handle;
        h.shared.with(|state, w| state.poll_read(h.slot, cx, w))
    }
}

impl<W> Drop for MuxStreamRead<W> {
    fn drop(&mut self) {
        let h = &self.handle;
        h.shared.with(|state, w| state.drop_reader(h.slot, w));
    }
}

/// The write half of a stream.
pub struct MuxStreamWrite<W> {
    handle: Handle,
    _transport: PhantomData<fn() -> W>,
}

impl<W> MuxStreamWrite<W> {
    /// The stream ID on the wire.
    pub fn get_stream_id(&self) -> u32 {
        self.handle.wire_id
    }

    /// Why the stream closed, once it has.
    pub fn get_close_reason(&self) -> Option<CloseReason> {
        self.handle.close_reason()
    }

    /// Sends CLOSE with `reason` after the data already written, and refuses further writes.
    pub async fn close(&self, reason: CloseReason) -> Result<(), WispError> {
        self.handle.close(reason)
    }

    /// A cloneable handle that can close the stream from another task.
    pub fn get_close_handle(&self) -> MuxStreamCloser<W> {
        MuxStreamCloser {
            handle: self.handle.clone(),
            _transport: PhantomData,
        }
    }
}

impl<W> Sink<Bytes> for MuxStreamWrite<W> {
    type Error = WispError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        self.handle
            .shared
            .lock()
            .poll_write_ready(self.handle.slot, cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), WispError> {
        self.get_mut().start_send_slice(&item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        self.handle
            .shared
            .lock()
            .poll_write_flush(self.handle.slot, cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        match self.handle.close(CloseReason::Voluntary) {
            Ok(()) | Err(WispError::StreamAlreadyClosed) => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
        self.poll_flush(cx)
    }
}

impl<W> MuxStreamWrite<W> {
    /// Like `SinkExt::feed` for a payload read into a [`DataBuf`]: waits while the stream's
    /// send queue is full, then queues the packet built around the buffer, without copying the
    /// payload (one over [`MAX_DATA_PAYLOAD`](crate::packet::MAX_DATA_PAYLOAD) is copied into
    /// several packets). As with `feed`, the actor sends it without a flush.
    pub async fn feed_buf(&mut self, buf: DataBuf) -> Result<(), WispError> {
        futures::future::poll_fn(|cx| Sink::<Bytes>::poll_ready(Pin::new(&mut *self), cx)).await?;
        self.start_send_buf(buf)
    }

    /// Queues the packet built around `buf` without waiting; the `start_send` of
    /// [`feed_buf`](Self::feed_buf), for callers that polled `poll_ready` themselves.
    pub fn start_send_buf(&mut self, buf: DataBuf) -> Result<(), WispError> {
        let h = &self.handle;
        let packets = DataPackets::framed(h.wire_id, buf, h.datagram)?;
        h.shared.with(|state, w| state.write(h.slot, packets, w))
    }

    /// Queues `payload`, copied once into its packets.
    fn start_send_slice(&mut self, payload: &[u8]) -> Result<(), WispError> {
        let h = &self.handle;
        let packets = DataPackets::copy(h.wire_id, payload, h.datagram)?;
        h.shared.with(|state, w| state.write(h.slot, packets, w))
    }
}

impl<W> Drop for MuxStreamWrite<W> {
    fn drop(&mut self) {
        let h = &self.handle;
        h.shared.with(|state, w| state.drop_writer(h.slot, w));
    }
}

/// A cloneable handle that closes a stream from anywhere.
pub struct MuxStreamCloser<W> {
    handle: Handle,
    _transport: PhantomData<fn() -> W>,
}

impl<W> Clone for MuxStreamCloser<W> {
    fn clone(&self) -> Self {
        Self {
            handle: self.handle.clone(),
            _transport: PhantomData,
        }
    }
}

impl<W> MuxStreamCloser<W> {
    /// Waits until the stream has ended, closed by either side or by the loss of the
    /// connection, and returns its close reason (`None` when the connection was lost). One task
    /// at a time may wait on a stream.
    pub async fn closed(&self) -> Option<CloseReason> {
        let h = &self.handle;
        futures::future::poll_fn(|cx| h.shared.lock().poll_closed(h.slot, cx)).await;
        h.close_reason()
    }

    /// Closes the stream with `reason`, after the data already written.
    pub async fn close(&self, reason: CloseReason) -> Result<(), WispError> {
        self.handle.close(reason)
    }

    /// The stream ID on the wire.
    pub fn get_stream_id(&self) -> u32 {
        self.handle.wire_id
    }

    /// Why the stream closed, once it has.
    pub fn get_close_reason(&self) -> Option<CloseReason> {
        self.handle.close_reason()
    }
}

/// A stream as bytes: `futures::AsyncRead + AsyncBufRead + AsyncWrite`. Closing it (the
/// `AsyncWrite` close) closes the stream with 0x02.
pub struct MuxStreamAsyncRW<W> {
    stream: MuxStream<W>,
    current: Bytes,
}

impl<W> MuxStreamAsyncRW<W> {
    /// The stream ID on the wire.
    pub fn get_stream_id(&self) -> u32 {
        self.stream.get_stream_id()
    }

    /// Why the stream closed, once it has.
    pub fn get_close_reason(&self) -> Option<CloseReason> {
        self.stream.get_close_reason()
    }
}

fn io_error(e: WispError) -> io::Error {
    match e {
        WispError::StreamAlreadyClosed => io::Error::new(io::ErrorKind::BrokenPipe, e),
        WispError::WsImplSocketClosed => io::Error::new(io::ErrorKind::ConnectionAborted, e),
        e => io::Error::other(e),
    }
}

impl<W> AsyncBufRead for MuxStreamAsyncRW<W> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        while this.current.is_empty() {
            match futures::ready!(Pin::new(&mut this.stream.read).poll_next(cx)) {
                Some(Ok(bytes)) => this.current = bytes,
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
                None => break,
            }
        }
        Poll::Ready(Ok(&this.current))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().current.advance(amt);
    }
}

impl<W> AsyncRead for MuxStreamAsyncRW<W> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let available = futures::ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Poll::Ready(Ok(n))
    }
}

impl<W> AsyncWrite for MuxStreamAsyncRW<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let write = Pin::new(&mut self.stream.write);
        futures::ready!(write.poll_ready(cx)).map_err(io_error)?;
        // Straight into the packets: one copy, where `start_send(Bytes)` would make two.
        self.stream.write.start_send_slice(buf).map_err(io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream.write)
            .poll_flush(cx)
            .map_err(io_error)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream.write)
            .poll_close(cx)
            .map_err(io_error)
    }
}
