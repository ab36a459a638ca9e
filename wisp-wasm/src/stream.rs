//! [`WispStream`]: one Wisp stream as `{ readable, writable, closed, close() }`.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{SinkExt, Stream};
use js_sys::{ArrayBuffer, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_streams::WritableStream;
use wisp_core::stream::{MuxStreamCloser, MuxStreamRead};
use wisp_core::{CloseReason, WispError};

use crate::client::ClientInner;
use crate::error::{reason_error, to_js, type_error};
use crate::transport::WsWrite;
use crate::{ByteReadable, ByteWritable, Settle, VoidPromise};

struct StreamState {
    closer: MuxStreamCloser<WsWrite>,
    client: Rc<ClientInner>,
    closed: Settle,
    local_close: Cell<bool>,
}

impl StreamState {
    /// The error for a stream that closed with `reason`.
    fn reason_error(&self, reason: CloseReason) -> JsValue {
        if reason == CloseReason::ClientUnexpected && !self.local_close.get() {
            to_js(&WispError::StreamReceiveOverflow, Some(reason))
        } else {
            reason_error(&format!("the stream was closed: {reason}"), reason)
        }
    }

    /// Settles `closed` if the stream has ended; returns whether it has.
    fn check(&self) -> bool {
        if self.closed.is_done() {
            return true;
        }
        match self.closer.get_close_reason() {
            Some(r) if r == CloseReason::Voluntary || self.local_close.get() => {
                self.closed.resolve();
                true
            }
            Some(r) => {
                self.closed.reject(&self.reason_error(r));
                true
            }
            None if self.client.is_ended() => {
                self.closed
                    .reject(&to_js(&WispError::WsImplSocketClosed, None));
                true
            }
            None => false,
        }
    }
}

/// The read side as JS chunks. Pulled only when the page reads.
struct ReadAdapter {
    read: MuxStreamRead<WsWrite>,
    state: Rc<StreamState>,
    done: bool,
}

impl Stream for ReadAdapter {
    type Item = Result<JsValue, JsValue>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match futures::ready!(Pin::new(&mut this.read).poll_next(cx)) {
            // A view of the WebSocket message it arrived in, not a copy (see `js_chunk`).
            Some(Ok(bytes)) => Poll::Ready(Some(Ok(crate::transport::js_chunk(&bytes).into()))),
            Some(Err(e)) => {
                this.done = true;
                let reason = this.read.get_close_reason();
                let err = match e {
                    WispError::StreamReceiveOverflow => {
                        to_js(&e, Some(CloseReason::ClientUnexpected))
                    }
                    e => to_js(&e, reason),
                };
                this.state.closed.reject(&err);
                Poll::Ready(Some(Err(err)))
            }
            None => {
                this.done = true;
                match this.read.get_close_reason() {
                    Some(r) if r != CloseReason::Voluntary && !this.state.local_close.get() => {
                        let err = this.state.reason_error(r);
                        this.state.closed.reject(&err);
                        Poll::Ready(Some(Err(err)))
                    }
                    _ => {
                        this.state.check();
                        Poll::Ready(None)
                    }
                }
            }
        }
    }
}

/// A chunk written by the page, as bytes.
fn chunk_bytes(v: &JsValue) -> Result<Bytes, JsValue> {
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(Bytes::from(a.to_vec()));
    }
    if let Some(b) = v.dyn_ref::<ArrayBuffer>() {
        return Ok(Bytes::from(Uint8Array::new(b).to_vec()));
    }
    if ArrayBuffer::is_view(v) {
        let buffer: ArrayBuffer = Reflect::get(v, &"buffer".into())?.unchecked_into();
        let offset = Reflect::get(v, &"byteOffset".into())?
            .as_f64()
            .unwrap_or(0.0) as u32;
        let len = Reflect::get(v, &"byteLength".into())?
            .as_f64()
            .unwrap_or(0.0) as u32;
        let a = Uint8Array::new_with_byte_offset_and_length(&buffer, offset, len);
        return Ok(Bytes::from(a.to_vec()));
    }
    Err(type_error(
        "chunks written to a Wisp stream must be Uint8Array, ArrayBuffer or ArrayBufferView",
    ))
}

/// One TCP or UDP stream. `readable` yields `Uint8Array` chunks (one per datagram on UDP),
/// `writable` takes `Uint8Array` chunks (one datagram each on UDP).
///
/// Wisp has no half-close: closing `writable` closes the whole stream with reason 0x02 after
/// the data already written.
#[wasm_bindgen]
pub struct WispStream {
    readable: ByteReadable,
    writable: ByteWritable,
    id: u32,
    state: Rc<StreamState>,
}

impl WispStream {
    pub(crate) fn new(
        stream: wisp_core::stream::MuxStream<WsWrite>,
        client: Rc<ClientInner>,
    ) -> Self {
        let id = stream.get_stream_id();
        let closer = stream.get_close_handle();
        let (read, write) = stream.into_split();
        let state = Rc::new(StreamState {
            closer,
            client,
            closed: Settle::new(),
            local_close: Cell::new(false),
        });
        let readable = crate::source::readable_stream(ReadAdapter {
            read,
            state: state.clone(),
            done: false,
        })
        .unchecked_into();
        let st = state.clone();
        let sink = write
            .sink_map_err(move |e| {
                let err = to_js(&e, st.closer.get_close_reason());
                st.check();
                err
            })
            .with(|v: JsValue| futures::future::ready(chunk_bytes(&v)));
        let writable = WritableStream::from_sink(sink).into_raw().unchecked_into();
        let watcher = state.clone();
        // Settles `closed` when the stream ends, even if the page never reads it again.
        wasm_bindgen_futures::spawn_local(async move {
            watcher.closer.closed().await;
            watcher.check();
        });
        Self {
            readable,
            writable,
            id,
            state,
        }
    }
}

#[wasm_bindgen]
impl WispStream {
    /// The received data: `Uint8Array` chunks in order. It ends when the stream closes with
    /// 0x02 and errors with a `WispError` for any other reason.
    #[wasm_bindgen(getter)]
    pub fn readable(&self) -> ByteReadable {
        self.readable.clone().unchecked_into()
    }

    /// Data to send. Writes wait while the stream's send buffer is full.
    #[wasm_bindgen(getter)]
    pub fn writable(&self) -> ByteWritable {
        self.writable.clone().unchecked_into()
    }

    /// Resolves when the stream closed with 0x02 or was closed by this page; rejects with a
    /// `WispError` carrying the reason otherwise (0x81 when the page read too slowly, 0x03 when
    /// the connection was lost).
    #[wasm_bindgen(getter)]
    pub fn closed(&self) -> VoidPromise {
        self.state.closed.promise().unchecked_into()
    }

    /// The stream ID on the wire.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Closes the stream with `reason` (default 0x02) after the data already written.
    pub fn close(&self, reason: Option<u8>) {
        self.state.local_close.set(true);
        let reason = CloseReason(reason.unwrap_or(CloseReason::Voluntary.0));
        let _ = futures::FutureExt::now_or_never(self.state.closer.close(reason));
        self.state.closed.resolve();
    }
}
