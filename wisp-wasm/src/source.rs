//! A `ReadableStream` fed from a Rust `Stream` of chunks, pushing each chunk as soon as the page
//! wants one.
//!
//! The source's `pull` only records that the page wants data and wakes one long-lived task (the
//! pump) on the receive path's [executor](crate::executor); the pump moves chunks from the Rust
//! stream into the controller. A message that arrives for a reading page thus reaches its
//! stream within the `message` event, and the page's next `read()` registers for the next chunk
//! within that `pull`. `wasm_streams::ReadableStream::from_stream`, used before, answered each
//! `pull` with a promise from a future spawned with `wasm_bindgen_futures`, which added a
//! promise and two microtask hops per chunk (see the executor's docs for the figures).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::Stream;
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use web_sys::{QueuingStrategy, ReadableStream, ReadableStreamDefaultController};

type Chunks = Pin<Box<dyn Stream<Item = Result<JsValue, JsValue>>>>;

/// Chunks the stream may hold beyond the page's pending reads. Zero: a chunk is taken from the
/// Rust side only for a read the page has made, so data the page does not read stays counted
/// where its bound is (the multiplexer's per-stream receive buffer).
const HIGH_WATER_MARK: f64 = 0.0;

struct Source {
    chunks: RefCell<Option<Chunks>>,
    /// Cleared when the stream has ended or was cancelled, which also ends the cycle between the
    /// controller (a JS object that reaches this source's closures) and this source.
    controller: RefCell<Option<ReadableStreamDefaultController>>,
    /// The page wants a chunk (a `pull` came since the last `enqueue`).
    demand: Cell<bool>,
    /// The task, while it waits for demand.
    idle: RefCell<Option<Waker>>,
}

impl Source {
    fn wake_idle(&self) {
        let w = self.idle.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }

    fn finish(&self) {
        let chunks = self.chunks.borrow_mut().take();
        self.controller.borrow_mut().take();
        // Dropped outside the borrow: dropping a stream half may wake other tasks.
        drop(chunks);
        self.wake_idle();
    }
}

/// The task that moves chunks into the controller while the page wants them.
struct Pump(Rc<Source>);

impl Future for Pump {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let s = &self.0;
        loop {
            let Some(controller) = s.controller.borrow().clone() else {
                return Poll::Ready(());
            };
            if !s.demand.get() {
                *s.idle.borrow_mut() = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let item = {
                let mut chunks = s.chunks.borrow_mut();
                let Some(chunks) = chunks.as_mut() else {
                    return Poll::Ready(());
                };
                chunks.as_mut().poll_next(cx)
            };
            match item {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    // `enqueue` may call `pull` at once (another read is pending); that sets the
                    // demand again.
                    s.demand.set(false);
                    if controller.enqueue_with_chunk(&chunk).is_err() {
                        s.finish();
                        return Poll::Ready(());
                    }
                    if controller.desired_size().is_some_and(|d| d > 0.0) {
                        s.demand.set(true);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    controller.error_with_e(&e);
                    s.finish();
                    return Poll::Ready(());
                }
                Poll::Ready(None) => {
                    let _ = controller.close();
                    s.finish();
                    return Poll::Ready(());
                }
            }
        }
    }
}

/// A `ReadableStream` of the chunks of `chunks`: it closes when `chunks` ends, errors with the
/// first error, and drops `chunks` when the page cancels it.
pub(crate) fn readable_stream(
    chunks: impl Stream<Item = Result<JsValue, JsValue>> + 'static,
) -> ReadableStream {
    let source = Rc::new(Source {
        chunks: RefCell::new(Some(Box::pin(chunks))),
        controller: RefCell::new(None),
        demand: Cell::new(false),
        idle: RefCell::new(None),
    });
    let s = source.clone();
    let start = Closure::<dyn FnMut(ReadableStreamDefaultController)>::new(move |c| {
        *s.controller.borrow_mut() = Some(c);
    });
    let s = source.clone();
    let pull = Closure::<dyn FnMut(JsValue)>::new(move |_| {
        // A browser callback: the pump runs at once.
        crate::executor::callback(|| {
            s.demand.set(true);
            s.wake_idle();
        })
    });
    let s = source.clone();
    let cancel = Closure::<dyn FnMut(JsValue)>::new(move |_| s.finish());
    let object = Object::new();
    // The JS functions own the closures from here on; they are freed when the stream is.
    for (name, f) in [
        ("start", start.into_js_value()),
        ("pull", pull.into_js_value()),
        ("cancel", cancel.into_js_value()),
    ] {
        let _ = Reflect::set(&object, &JsValue::from_str(name), &f);
    }
    let strategy = QueuingStrategy::new();
    strategy.set_high_water_mark(HIGH_WATER_MARK);
    let stream = ReadableStream::new_with_underlying_source_and_strategy(&object, &strategy)
        .expect_throw("ReadableStream with an underlying source");
    // `start` ran synchronously in the constructor, so the controller is there.
    crate::executor::spawn(Pump(source));
    stream
}
