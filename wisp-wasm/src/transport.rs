//! The browser `WebSocket` as a `wisp-core` transport.
//!
//! [`connect`] opens a `WebSocket` (binary type `arraybuffer`) and returns its two halves:
//! [`WsRead`], a `Stream` of whole binary messages, and [`WsWrite`], a `Sink` of messages.
//!
//! - Receiving: each message is copied once out of its `ArrayBuffer` into a [`Bytes`]; the
//!   multiplexer then hands out slices of it without further copies, and a stream hands its
//!   payload to the page as a view of the original `ArrayBuffer` (`js_chunk`), not as a new
//!   copy. The browser's `WebSocket` has no receive backpressure, so the queue here is drained
//!   by the multiplexer as fast as it runs; the per-stream and per-connection bounds live in the
//!   multiplexer.
//! - Sending: the payload is passed to `WebSocket.send` straight from wasm memory (the browser
//!   copies it once). While `bufferedAmount` is above [`SEND_HIGH_WATER_MARK`] the sink is not
//!   ready; since the browser raises no event when the buffer drains, a short `setTimeout`
//!   re-checks it.
//! - An `error` or `close` event ends the read stream and fails further sends.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures::{Sink, Stream};
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};
use wisp_core::WispError;

use crate::executor;

/// Bytes the browser may hold in `bufferedAmount` before sends wait.
pub const SEND_HIGH_WATER_MARK: u32 = 1024 * 1024;
/// How long to wait before re-checking `bufferedAmount`, in milliseconds.
const SEND_RECHECK_MS: i32 = 2;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;
}

/// An error from the browser, as text (JS values cannot cross threads, Wisp errors must).
#[derive(Debug, Clone)]
pub struct BrowserError(pub String);

impl fmt::Display for BrowserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BrowserError {}

/// How the WebSocket ended.
#[derive(Debug, Clone, Default)]
pub struct WsEnd {
    /// The close code of the `close` event.
    pub code: u16,
    /// The close reason text of the `close` event.
    pub reason: String,
    /// `wasClean` of the `close` event.
    pub was_clean: bool,
    /// Whether an `error` event came first.
    pub error: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Open,
    Closed,
}

struct Inner {
    ws: WebSocket,
    phase: Phase,
    end: Option<WsEnd>,
    saw_error: bool,
    queue: VecDeque<Result<Bytes, WispError>>,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    open_waker: Option<Waker>,
    close_wakers: Vec<Waker>,
    timer_armed: bool,
    callbacks: Option<Callbacks>,
}

struct Callbacks {
    _open: Closure<dyn FnMut(Event)>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _error: Closure<dyn FnMut(Event)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
    timer: Closure<dyn FnMut()>,
}

impl Inner {
    fn detach(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onerror(None);
        self.ws.set_onclose(None);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.detach();
        if self.phase != Phase::Closed {
            let _ = self.ws.close();
        }
    }
}

type Shared = Rc<RefCell<Inner>>;

fn wake(w: Option<Waker>) {
    if let Some(w) = w {
        w.wake();
    }
}

/// A `message` event: queue the message for the multiplexer and wake it. Inside
/// [`executor::callback`], so that the multiplexer handles it at once.
fn on_message(weak: &Weak<RefCell<Inner>>, e: MessageEvent) {
    let Some(s) = weak.upgrade() else { return };
    let item = match e.data().dyn_into::<ArrayBuffer>() {
        Ok(buf) => Ok(received(buf)),
        Err(_) => Err(WispError::WsFrameInvalidType),
    };
    let w = {
        let mut i = s.borrow_mut();
        i.queue.push_back(item);
        i.read_waker.take()
    };
    wake(w);
}

fn install(shared: &Shared) {
    let weak: Weak<RefCell<Inner>> = Rc::downgrade(shared);
    let on_open = {
        let weak = weak.clone();
        Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            let Some(s) = weak.upgrade() else { return };
            let w = {
                let mut i = s.borrow_mut();
                if i.phase == Phase::Connecting {
                    i.phase = Phase::Open;
                }
                i.open_waker.take()
            };
            wake(w);
        })
    };
    let on_message = {
        let weak = weak.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            executor::callback(|| on_message(&weak, e))
        })
    };
    let on_error = {
        let weak = weak.clone();
        Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            let Some(s) = weak.upgrade() else { return };
            // A close event always follows an error event; remember that it was an error.
            s.borrow_mut().saw_error = true;
        })
    };
    let on_close = {
        let weak = weak.clone();
        Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            let Some(s) = weak.upgrade() else { return };
            let wakers = {
                let mut i = s.borrow_mut();
                i.phase = Phase::Closed;
                i.end = Some(WsEnd {
                    code: e.code(),
                    reason: e.reason(),
                    was_clean: e.was_clean(),
                    error: i.saw_error,
                });
                i.detach();
                let mut v: Vec<Waker> = std::mem::take(&mut i.close_wakers);
                v.extend(i.read_waker.take());
                v.extend(i.write_waker.take());
                v.extend(i.open_waker.take());
                v
            };
            for w in wakers {
                w.wake();
            }
        })
    };
    let timer = Closure::<dyn FnMut()>::new(move || {
        let Some(s) = weak.upgrade() else { return };
        let w = {
            let mut i = s.borrow_mut();
            i.timer_armed = false;
            i.write_waker.take()
        };
        wake(w);
    });
    let mut i = shared.borrow_mut();
    i.ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    i.ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    i.ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    i.ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    i.callbacks = Some(Callbacks {
        _open: on_open,
        _message: on_message,
        _error: on_error,
        _close: on_close,
        timer,
    });
}

thread_local! {
    /// The `ArrayBuffer` each live received message arrived in, by the address of its copy in
    /// wasm memory (and that copy's length). See [`js_chunk`].
    static ORIGINALS: RefCell<BTreeMap<usize, (ArrayBuffer, usize)>> =
        const { RefCell::new(BTreeMap::new()) };
}

/// The wasm copy of a received message. It keeps its `ArrayBuffer` in [`ORIGINALS`] while it
/// lives, so that entries never outlive the memory their key points to.
struct Received(Vec<u8>);

impl AsRef<[u8]> for Received {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Received {
    fn drop(&mut self) {
        let key = self.0.as_ptr() as usize;
        ORIGINALS.with(|o| o.borrow_mut().remove(&key));
    }
}

/// A received message as [`Bytes`] for the multiplexer, remembering the `ArrayBuffer` it came in.
fn received(buf: ArrayBuffer) -> Bytes {
    // Copying into wasm memory is cheap (the pages there are reused, and `set` is a memcpy); the
    // multiplexer parses and queues this copy.
    let copy = Uint8Array::new(&buf).to_vec();
    if copy.is_empty() {
        return Bytes::new();
    }
    let key = copy.as_ptr() as usize;
    let len = copy.len();
    ORIGINALS.with(|o| o.borrow_mut().insert(key, (buf, len)));
    Bytes::from_owner(Received(copy))
}

/// `bytes`, a payload the multiplexer handed out, as a JS chunk for the page.
///
/// Where `bytes` lies inside a received message whose `ArrayBuffer` has not been handed out yet,
/// the chunk is a view of that `ArrayBuffer` (its `byteOffset` is past the Wisp header) instead of
/// a new copy. Profiling the download in Chromium showed why this matters: every new 64 KiB
/// `ArrayBuffer` lands on fresh pages (one page fault per 4 KiB, about 256 per MiB), so a copy
/// out of wasm memory cost far more than the copy in, and doubled the page faults of the
/// renderer's main thread. The view costs neither. Each `ArrayBuffer` is handed out at most once
/// (the page may transfer or mutate it); anything else is copied. The price: until the page reads
/// it, a received message is held twice, in wasm memory and as its `ArrayBuffer` (so a stream's
/// `streamBufferBytes` of unread data takes up to twice that much memory).
pub(crate) fn js_chunk(bytes: &Bytes) -> Uint8Array {
    if bytes.is_empty() {
        return Uint8Array::new_with_length(0);
    }
    let at = bytes.as_ptr() as usize;
    let view = ORIGINALS.with(|o| {
        let mut o = o.borrow_mut();
        // Live allocations never overlap, so the message containing `bytes`, if any, is the one
        // starting nearest below it.
        let (&base, (_, len)) = o.range(..=at).next_back()?;
        if at + bytes.len() > base + len {
            return None;
        }
        let (buf, _) = o.remove(&base)?;
        Some(Uint8Array::new_with_byte_offset_and_length(
            &buf,
            (at - base) as u32,
            bytes.len() as u32,
        ))
    });
    view.unwrap_or_else(|| Uint8Array::from(&bytes[..]))
}

/// Opens a WebSocket to `url`, offering `protocol` as `Sec-WebSocket-Protocol` if given, and
/// waits until it is open.
pub async fn connect(url: &str, protocol: Option<&str>) -> Result<(WsRead, WsWrite), WispError> {
    let ws = match protocol {
        Some(p) => WebSocket::new_with_str(url, p),
        None => WebSocket::new(url),
    }
    .map_err(|e| WispError::ws(BrowserError(js_text(&e))))?;
    ws.set_binary_type(BinaryType::Arraybuffer);
    let shared: Shared = Rc::new(RefCell::new(Inner {
        ws,
        phase: Phase::Connecting,
        end: None,
        saw_error: false,
        queue: VecDeque::new(),
        read_waker: None,
        write_waker: None,
        open_waker: None,
        close_wakers: Vec::new(),
        timer_armed: false,
        callbacks: None,
    }));
    install(&shared);
    futures::future::poll_fn(|cx| {
        let mut i = shared.borrow_mut();
        match i.phase {
            Phase::Open => Poll::Ready(Ok(())),
            Phase::Closed => {
                let code = i.end.as_ref().map_or(0, |e| e.code);
                Poll::Ready(Err(WispError::ws(BrowserError(format!(
                    "the WebSocket to {url} could not be opened (close code {code})"
                )))))
            }
            Phase::Connecting => {
                i.open_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await?;
    Ok((
        WsRead {
            shared: shared.clone(),
        },
        WsWrite { shared },
    ))
}

/// The text of a JS exception.
pub(crate) fn js_text(v: &JsValue) -> String {
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}

/// A handle that tells how and when the WebSocket ended.
#[derive(Clone)]
pub struct WsWatch {
    shared: Shared,
}

impl WsWatch {
    /// How the WebSocket ended, if it has.
    pub fn end(&self) -> Option<WsEnd> {
        self.shared.borrow().end.clone()
    }

    /// Waits until the WebSocket has closed.
    pub async fn closed(&self) -> WsEnd {
        futures::future::poll_fn(|cx| {
            let mut i = self.shared.borrow_mut();
            if let Some(end) = &i.end {
                return Poll::Ready(end.clone());
            }
            i.close_wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// The read half: whole binary messages; ends when the WebSocket closes.
pub struct WsRead {
    shared: Shared,
}

impl WsRead {
    /// A handle to watch the WebSocket's end.
    pub fn watch(&self) -> WsWatch {
        WsWatch {
            shared: self.shared.clone(),
        }
    }
}

impl Stream for WsRead {
    type Item = Result<Bytes, WispError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut i = self.shared.borrow_mut();
        if let Some(item) = i.queue.pop_front() {
            return Poll::Ready(Some(item));
        }
        if i.phase == Phase::Closed {
            return Poll::Ready(None);
        }
        i.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The write half: each item is sent as one binary message.
pub struct WsWrite {
    shared: Shared,
}

impl Sink<Bytes> for WsWrite {
    type Error = WispError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        let mut i = self.shared.borrow_mut();
        if i.phase == Phase::Closed || i.ws.ready_state() >= WebSocket::CLOSING {
            return Poll::Ready(Err(WispError::WsImplSocketClosed));
        }
        if i.ws.buffered_amount() <= SEND_HIGH_WATER_MARK {
            return Poll::Ready(Ok(()));
        }
        i.write_waker = Some(cx.waker().clone());
        if !i.timer_armed {
            if let Some(cb) = &i.callbacks {
                set_timeout(cb.timer.as_ref().unchecked_ref(), SEND_RECHECK_MS);
                i.timer_armed = true;
            }
        }
        Poll::Pending
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), WispError> {
        let i = self.shared.borrow();
        if i.phase == Phase::Closed {
            return Err(WispError::WsImplSocketClosed);
        }
        // Passed as a view of wasm memory; the browser copies it into its send buffer.
        i.ws.send_with_u8_array(&item)
            .map_err(|e| WispError::ws(BrowserError(js_text(&e))))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WispError>> {
        let i = self.shared.borrow();
        if i.phase != Phase::Closed {
            let _ = i.ws.close_with_code(1000);
        }
        Poll::Ready(Ok(()))
    }
}
